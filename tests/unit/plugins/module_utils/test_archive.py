# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""push: reading OCI layouts, OCI archives and docker-archives into a publishable plan."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zlib

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._archive import load_image
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.archives import (
    assert_outside_untouched,
    docker_archive,
    docker_entries,
    hostile_members,
    layer_tar,
    link_blob_outside,
    member,
    nest,
    oci_layout,
    tar_entries,
    write_tar,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import digest_of as sha


def read_blob(source, descriptor):
    read, close = source.open(descriptor)
    try:
        chunks = []
        while True:
            data = read(65536)
            if not data:
                return b''.join(chunks)
            chunks.append(data)
    finally:
        close()


def test_docker_archive_is_compressed_deterministically(tmp_path):
    path = str(tmp_path / 'd.tar')
    docker_archive(path, [(['app:1'], [b'first layer', b'second layer'])])
    digests = []
    for run in range(2):
        work = tmp_path / ('w%d' % run)
        work.mkdir()
        plan, source, kind = load_image(path, str(work))
        assert kind == 'docker-archive'
        assert plan.top.media_type == 'application/vnd.docker.distribution.manifest.v2+json'
        digests.append(plan.digest)
        layers = [b for b in plan.blobs if b['kind'] == 'layer']
        data = read_blob(source, layers[0])
        assert sha(data) == layers[0]['digest'] and len(data) == layers[0]['size']
        assert data[:2] == b'\x1f\x8b' and data[4:8] == b'\0\0\0\0'  # gzip, mtime 0
        assert data[3] & 0x08 == 0  # no file name
        assert gzip.decompress(data) == layer_tar(b'first layer')
        assert plan.layer_compression == 'gzip level 6, zlib %s' % zlib.ZLIB_RUNTIME_VERSION
    assert digests[0] == digests[1]


def test_docker_archive_layer_that_does_not_match_the_config_fails(tmp_path):
    path = str(tmp_path / 'd.tar')
    docker_archive(path, [(['app:1'], [b'x'])], diff_id_override=sha(b'something else'))
    with pytest.raises(IntegrityError, match='diff_ids|config lists'):
        load_image(path, str(tmp_path))


def test_multi_image_archives_select_by_name_or_index(tmp_path):
    path = str(tmp_path / 'd.tar')
    docker_archive(path, [(['localhost/app:1'], [b'a']), (['docker.io/library/tool:2'], [b'b'])])
    with pytest.raises(InvalidInputError, match='archive_image'):
        load_image(path, str(tmp_path))
    by_name = load_image(path, str(tmp_path), 'tool:2')[0]
    by_index = load_image(path, str(tmp_path), '1')[0]
    first = load_image(path, str(tmp_path), 'app:1')[0]
    assert by_name.digest == by_index.digest != first.digest
    with pytest.raises(InvalidInputError, match='out of range'):
        load_image(path, str(tmp_path), '5')
    with pytest.raises(InvalidInputError, match='no image named'):
        load_image(path, str(tmp_path), 'nope:1')


def test_oci_layout_directory_and_archive_keep_the_digest(tmp_path):
    root = str(tmp_path / 'layout')
    entries = oci_layout(root, ['1.0', '2.0'])
    plan, source, kind = load_image(root, str(tmp_path), '2.0')
    assert kind == 'oci-layout' and plan.digest == entries[1]['digest']
    assert plan.layer_compression is None  # nothing compressed here: the digest is the archive's own
    for blob in plan.blobs:
        assert sha(read_blob(source, blob)) == blob['digest']
    archive = str(tmp_path / 'o.tar')
    with tarfile.open(archive, 'w') as tar:
        tar.add(root, arcname='.')
    plan2, source2, kind2 = load_image(archive, str(tmp_path), '2.0')
    assert kind2 == 'oci-archive' and plan2.digest == plan.digest
    assert [sha(read_blob(source2, b)) for b in plan2.blobs] == [b['digest'] for b in plan2.blobs]
    compressed = str(tmp_path / 'o.tar.gz')
    with tarfile.open(compressed, 'w:gz') as tar:
        tar.add(root, arcname='.')
    assert load_image(compressed, str(tmp_path), '1.0')[0].digest == entries[0]['digest']


def test_a_tampered_manifest_in_a_layout_is_refused(tmp_path):
    root = str(tmp_path / 'layout')
    entries = oci_layout(root, ['1.0'])
    with open(os.path.join(root, 'blobs', 'sha256', entries[0]['digest'][7:]), 'ab') as handle:
        handle.write(b' ')
    with pytest.raises(IntegrityError):
        load_image(root, str(tmp_path))


def test_not_an_archive(tmp_path):
    with pytest.raises(InvalidInputError, match='does not exist'):
        load_image(str(tmp_path / 'missing.tar'), str(tmp_path))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(InvalidInputError, match='neither'):
        load_image(str(empty), str(tmp_path))


# -- crafted archives: nothing is written outside the work directory ----------------------------
class Zeros(io.RawIOBase):
    """``size`` zero bytes, without holding them in memory."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def tree(root):
    """``{relative path: (mode, size)}`` of everything under ``root``."""
    result = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            result[os.path.relpath(path, root)] = (info.st_mode, info.st_size)
    return result


@pytest.mark.parametrize('mode', ['w:gz', 'w:bz2', 'w:xz', 'w'])
def test_hostile_members_of_a_docker_archive_are_never_written(tmp_path, outside, mode):
    path = str(tmp_path / 'evil.tar')
    tar_entries(path, hostile_members(outside) + docker_entries([b'one', b'two']), mode=mode)
    work = tmp_path / 'work'
    work.mkdir()
    plan, source, kind = load_image(path, str(work))
    assert kind == 'docker-archive' and len(plan.blobs) == 3
    assert_outside_untouched(outside)
    # Only files the reader named itself: no directory made from a member name.
    assert all(os.sep not in name for name in tree(str(work))), tree(str(work))


def test_hostile_members_of_an_oci_archive_are_never_written(tmp_path, outside):
    root = str(tmp_path / 'layout')
    entries = oci_layout(root, ['1.0'])
    path = str(tmp_path / 'evil.oci.tar.gz')
    with tarfile.open(path, 'w:gz', format=tarfile.GNU_FORMAT) as archive:
        for info, data in hostile_members(outside):
            archive.addfile(info, None if data is None else io.BytesIO(data))
        archive.add(root, arcname='.')
    work = tmp_path / 'work'
    work.mkdir()
    plan, source, kind = load_image(path, str(work))
    assert kind == 'oci-archive' and plan.digest == entries[0]['digest']
    assert [sha(read_blob(source, b)) for b in plan.blobs] == [b['digest'] for b in plan.blobs]
    assert_outside_untouched(outside)
    assert all(os.sep not in name for name in tree(str(work)))


def test_a_huge_unused_member_is_not_written(tmp_path):
    size = 256 * 1024 * 1024
    info = tarfile.TarInfo('unused/huge.bin')
    info.size = size
    path = str(tmp_path / 'huge.tar.gz')
    tar_entries(path, [(info, Zeros(size))] + docker_entries([b'small']))
    assert os.path.getsize(path) < 2 * 1024 * 1024
    work = tmp_path / 'work'
    work.mkdir()
    plan = load_image(path, str(work))[0]
    assert len(plan.blobs) == 2
    assert sum(size for dummy, size in tree(str(work)).values()) < 64 * 1024


def test_links_inside_a_compressed_archive_are_followed_within_it(tmp_path):
    plain = str(tmp_path / 'd.tar')
    docker_archive(plain, [(['app:1'], [b'first', b'second'])])  # layers are symlinks to other members
    compressed = str(tmp_path / 'd.tar.gz')
    with tarfile.open(plain) as source, tarfile.open(compressed, 'w:gz') as target:
        for info in source:
            target.addfile(info, source.extractfile(info) if info.isfile() else None)
    assert load_image(compressed, str(tmp_path))[0].digest == load_image(plain, str(tmp_path))[0].digest


@pytest.mark.parametrize('mode', ['w:gz', 'w'])
@pytest.mark.parametrize('link', ['/etc/passwd', '../../../../etc/passwd'])
def test_a_layer_linked_out_of_the_archive_is_refused(tmp_path, mode, link):
    entries = docker_entries([b'one'])
    layer_name = entries[2][0].name
    entries[2] = member(layer_name, kind=tarfile.SYMTYPE, linkname=link)
    path = str(tmp_path / 'd.tar')
    tar_entries(path, entries, mode=mode)
    with pytest.raises(InvalidInputError, match='%s.*outside' % layer_name):
        load_image(path, str(tmp_path))


def test_a_member_larger_than_its_descriptor_is_refused_before_reading(tmp_path):
    root = str(tmp_path / 'layout')
    oci_layout(root, ['1.0'])
    plan = load_image(root, str(tmp_path))[0]
    layer = [b for b in plan.blobs if b['kind'] == 'layer'][0]
    with open(os.path.join(root, 'blobs', 'sha256', layer['digest'][7:]), 'ab') as handle:
        handle.write(b'trailing bytes')
    with pytest.raises(IntegrityError, match='%s.*%d bytes' % (layer['digest'], layer['size'])):
        load_image(root, str(tmp_path))
    archive = str(tmp_path / 'o.tar.gz')
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(root, arcname='.')
    with pytest.raises(IntegrityError, match='%s.*%d bytes' % (layer['digest'], layer['size'])):
        load_image(archive, str(tmp_path))


def test_a_blob_read_later_must_still_have_its_size(tmp_path):
    """The size is checked again when the blob is opened: no byte of a changed file is returned."""
    root = str(tmp_path / 'layout')
    oci_layout(root, ['1.0'])
    plan, source, dummy = load_image(root, str(tmp_path))
    layer = [b for b in plan.blobs if b['kind'] == 'layer'][0]
    with open(os.path.join(root, 'blobs', 'sha256', layer['digest'][7:]), 'ab') as handle:
        handle.write(b'grown since')
    with pytest.raises(IntegrityError, match='bytes'):
        source.open(layer)


# -- OCI layouts: links out of the layout ------------------------------------------------------------
@pytest.mark.parametrize('same_bytes', [True, False])
def test_a_layout_blob_linked_outside_the_layout_is_refused(tmp_path, same_bytes):
    root = str(tmp_path / 'layout')
    oci_layout(root, ['1.0'])
    plan = load_image(root, str(tmp_path))[0]
    layer = [b for b in plan.blobs if b['kind'] == 'layer'][0]
    with open(os.path.join(root, 'blobs', 'sha256', layer['digest'][7:]), 'rb') as handle:
        data = handle.read()
    link_blob_outside(root, tmp_path, layer['digest'], data if same_bytes else b'secret ' * 100)
    with pytest.raises(InvalidInputError, match='blobs/sha256/%s.*outside' % layer['digest'][7:]):
        load_image(root, str(tmp_path))


def test_links_within_a_layout_are_followed(tmp_path):
    root = str(tmp_path / 'layout')
    entries = oci_layout(root, ['1.0'])
    plan = load_image(root, str(tmp_path))[0]
    layer = [b for b in plan.blobs if b['kind'] == 'layer'][0]
    blob = os.path.join(root, 'blobs', 'sha256', layer['digest'][7:])
    os.rename(blob, os.path.join(root, 'stored-layer'))
    os.symlink('../../stored-layer', blob)
    plan, source, dummy = load_image(root, str(tmp_path))
    assert plan.digest == entries[0]['digest'] and sha(read_blob(source, layer)) == layer['digest']


def test_an_index_json_linked_outside_the_layout_is_refused(tmp_path):
    root = str(tmp_path / 'layout')
    oci_layout(root, ['1.0'])
    os.rename(os.path.join(root, 'index.json'), str(tmp_path / 'index.json'))
    os.symlink(str(tmp_path / 'index.json'), os.path.join(root, 'index.json'))
    with pytest.raises(InvalidInputError, match='index.json.*outside'):
        load_image(root, str(tmp_path))


# -- nested indexes ------------------------------------------------------------------------------------
def test_a_nested_index_is_walked(tmp_path):
    root = str(tmp_path / 'layout')
    image = oci_layout(root, ['1.0'])[0]
    top = nest(root, 3)  # top index -> index -> index -> image
    plan, source, dummy = load_image(root, str(tmp_path))
    assert plan.digest == top and plan.top.is_index
    order = [m.digest for m in plan.children]
    assert len(order) == 3 and order[0] == image['digest']  # the image first, each index after what it lists
    assert [m.is_index for m in plan.children] == [False, True, True]
    assert plan.images == [dict(plan.images[0], digest=image['digest'], platform='linux/arm64')]
    assert len(plan.blobs) == 2
    archive = str(tmp_path / 'nested.tar.gz')
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(root, arcname='.')
    assert [m.digest for m in load_image(archive, str(tmp_path))[0].children] == order


def test_an_index_nested_deeper_than_the_limit_is_refused(tmp_path):
    from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import MAX_INDEX_DEPTH
    root = str(tmp_path / 'layout')
    oci_layout(root, ['1.0'])
    nest(root, MAX_INDEX_DEPTH)
    assert load_image(root, str(tmp_path))[0].top.is_index
    nest(root, 1)
    with pytest.raises(InvalidInputError, match='deeper than %d' % MAX_INDEX_DEPTH):
        load_image(root, str(tmp_path))


def test_a_hard_link_inside_a_compressed_archive_reads_the_member_it_names(tmp_path):
    entries = docker_entries([b'one'])
    layer_info, layer = entries[2]
    entries[2] = member('stored/layer.tar', layer)
    entries.append(member(layer_info.name, kind=tarfile.LNKTYPE, linkname='stored/layer.tar'))
    plain, compressed = str(tmp_path / 'd.tar'), str(tmp_path / 'd.tar.gz')
    tar_entries(compressed, entries)
    tar_entries(plain, docker_entries([b'one']), mode='w')
    assert load_image(compressed, str(tmp_path))[0].digest == load_image(plain, str(tmp_path))[0].digest


def test_a_zstd_archive_is_refused_with_a_hint(tmp_path):
    path = tmp_path / 'image.tar.zst'
    path.write_bytes(b'\x28\xb5\x2f\xfd' + bytes(64))
    if hasattr(tarfile.TarFile, 'zstopen'):
        pytest.skip('this Python reads zstd tarballs')
    with pytest.raises(InvalidInputError, match='zstd.*decompress it first'):
        load_image(str(path), str(tmp_path))


def deep_json(depth):
    return ('[' * depth + ']' * depth).encode()


@pytest.mark.parametrize('document', [b'{"schemaVersion": 2, "manifests": 5}', deep_json(100000)],
                         ids=['manifests-not-a-list', 'nested-100000-deep'])
def test_a_malformed_layout_index_is_an_integrity_error(tmp_path, document):
    root = str(tmp_path / 'layout')
    oci_layout(root, ['app'])
    with open(os.path.join(root, 'index.json'), 'wb') as handle:
        handle.write(document)
    with pytest.raises(IntegrityError, match='index.json'):
        load_image(root, str(tmp_path / 'work'))


@pytest.mark.parametrize('config', [deep_json(100000), b'{"rootfs": {"diff_ids": 5}}', b'[1]'],
                         ids=['nested-100000-deep', 'diff-ids-not-a-list', 'not-an-object'])
def test_a_malformed_docker_archive_config_is_an_integrity_error(tmp_path, config):
    path = str(tmp_path / 'app.tar')
    write_tar(path, {'cfg.json': config, 'layer.tar': layer_tar(b'x'),
                     'manifest.json': json.dumps([{'Config': 'cfg.json', 'RepoTags': ['app:1'],
                                                   'Layers': ['layer.tar']}]).encode()})
    os.makedirs(str(tmp_path / 'work'))
    with pytest.raises(IntegrityError, match='config'):
        load_image(path, str(tmp_path / 'work'))
