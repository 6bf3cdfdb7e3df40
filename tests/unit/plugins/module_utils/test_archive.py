# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""push: reading OCI layouts, OCI archives and docker-archives into a publishable plan."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._archive import load_image
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError


def sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def layer_tar(content):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo('hello.txt')
        info.size = len(content)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_tar(path, files):
    with tarfile.open(path, 'w') as archive:
        for name, data in files.items():
            if isinstance(data, tuple):  # ('link', target)
                info = tarfile.TarInfo(name)
                info.type = tarfile.SYMTYPE
                info.linkname = data[1]
                archive.addfile(info)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def docker_archive(path, images, diff_id_override=None):
    """images: [(repo_tags, [layer contents])]."""
    files = {}
    manifest = []
    for number, (tags, contents) in enumerate(images):
        layers = [layer_tar(c) for c in contents]
        diff_ids = [sha(layer) for layer in layers]
        if diff_id_override:
            diff_ids[0] = diff_id_override
        config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'n': number,
                             'rootfs': {'type': 'layers', 'diff_ids': diff_ids}}).encode()
        config_name = sha(config)[7:] + '.json'
        files[config_name] = config
        names = []
        for layer in layers:
            real = sha(layer)[7:] + '.tar'
            files[real] = layer
            link = 'id%d-%s/layer.tar' % (number, real[:8])
            files[link] = ('link', '../' + real)
            names.append(link)
        manifest.append({'Config': config_name, 'RepoTags': tags, 'Layers': names})
    files['manifest.json'] = json.dumps(manifest).encode()
    write_tar(path, files)


def oci_layout(root, names):
    os.makedirs(os.path.join(root, 'blobs', 'sha256'))
    entries = []
    for name in names:
        blobs = {}
        config = json.dumps({'architecture': 'arm64', 'os': 'linux', 'name': name}).encode()
        layer = gzip.compress(layer_tar(name.encode()), mtime=0)
        for data in (config, layer):
            blobs[sha(data)] = data
        manifest = json.dumps({
            'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
            'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': sha(config),
                       'size': len(config)},
            'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': sha(layer),
                        'size': len(layer)}]}).encode()
        blobs[sha(manifest)] = manifest
        for digest, data in blobs.items():
            with open(os.path.join(root, 'blobs', 'sha256', digest[7:]), 'wb') as handle:
                handle.write(data)
        entries.append({'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': sha(manifest),
                        'size': len(manifest), 'annotations': {'org.opencontainers.image.ref.name': name}})
    with open(os.path.join(root, 'index.json'), 'w') as handle:
        json.dump({'schemaVersion': 2, 'manifests': entries}, handle)
    with open(os.path.join(root, 'oci-layout'), 'w') as handle:
        handle.write('{"imageLayoutVersion": "1.0.0"}')
    return entries


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
