# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""export: OCI layouts (resume, idempotence, merged index.json, path safety) and deterministic archives."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._archive import load_image
from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._export import export_images
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import OCI_MANIFEST
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for, digest_of

LAYERS = [b'a' * 3000, b'b' * 5000]


def export(registry, names, dest, fmt='oci-layout', **kwargs):
    ctx = RunContext(**{key: kwargs.pop(key) for key in ('workers', 'check_mode', 'diff_mode') if key in kwargs})
    targets = [(client_for(registry), ImageReference.parse('%s/%s' % (registry.host, name))) for name in names]
    return export_images(targets, str(dest), fmt, ctx, **kwargs).to_result()


def blob_gets(registry):
    return [r['path'] for r in registry.requests if r['method'] == 'GET' and '/blobs/' in r['path']]


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dummy, fs in os.walk(root) for f in fs)


def test_layout_holds_every_blob_and_names_the_image_by_its_tag(registry, tmp_path):
    digest, config, layers = registry.add_image('app', '1', LAYERS)
    dest = tmp_path / 'layout'
    result = export(registry, ['app:1'], dest)
    assert result['changed'] and result['blobs_fetched'] == 3 and result['blobs_present'] == 0
    assert result['bytes_transferred'] == sum(len(registry.blobs[d]) for d in [config] + layers)
    blobs = ['blobs/sha256/' + d[7:] for d in [digest, config] + layers]
    assert files_under(str(dest)) == sorted(['index.json', 'oci-layout'] + blobs)
    index = json.loads((dest / 'index.json').read_text())
    assert index['manifests'] == [{'mediaType': OCI_MANIFEST, 'digest': digest,
                                   'size': len(registry.manifests[('app', digest)][1]),
                                   'annotations': {'io.containerd.image.name': '%s/app:1' % registry.host,
                                                   'org.opencontainers.image.ref.name': '1'}}]
    plan, dummy, kind = load_image(str(dest), str(tmp_path))  # push reads it back with the same digest
    assert kind == 'oci-layout' and plan.digest == digest


def test_second_run_is_unchanged_and_fetches_no_blob(registry, tmp_path):
    registry.add_image('app', '1', LAYERS)
    dest = tmp_path / 'layout'
    export(registry, ['app:1'], dest)
    registry.requests.clear()
    result = export(registry, ['app:1'], dest, diff_mode=True)
    assert not result['changed'] and result['blobs_fetched'] == 0 and result['blobs_present'] == 3
    assert blob_gets(registry) == [] and len(registry.requests) == 1  # the manifest, nothing else
    assert result['diff']['before'] == result['diff']['after'] == {'refs': {'1': result['images'][0]['digest']},
                                                                   'blobs': 4}


def test_rerun_fetches_only_what_is_missing_or_damaged(registry, tmp_path):
    digest, config, layers = registry.add_image('app', '1', LAYERS)
    dest = tmp_path / 'layout'
    export(registry, ['app:1'], dest)
    (dest / 'blobs' / 'sha256' / layers[0][7:]).write_bytes(b'x' * 3000)   # damaged
    (dest / 'blobs' / 'sha256' / layers[1][7:]).unlink()                   # missing (an interrupted run)
    registry.requests.clear()
    result = export(registry, ['app:1'], dest)
    assert result['changed'] and result['blobs_fetched'] == 2 and result['blobs_present'] == 1
    assert result['blobs_replaced'] == [layers[0]]
    assert sorted(p.rsplit('/', 1)[1] for p in blob_gets(registry)) == sorted(layers)
    assert (dest / 'blobs' / 'sha256' / layers[0][7:]).read_bytes() == LAYERS[0]


def test_a_blob_that_does_not_verify_is_never_put_in_place(registry, tmp_path):
    digest, config, layers = registry.add_image('app', '1', LAYERS)
    registry.blobs[layers[1]] = b'c' * 5000
    dest = tmp_path / 'layout'
    with pytest.raises(IntegrityError):
        export(registry, ['app:1'], dest, workers=1)
    names = files_under(str(dest))
    assert 'blobs/sha256/' + layers[1][7:] not in names and 'index.json' not in names
    assert not [n for n in names if n.endswith('.partial')]


def test_check_mode_writes_nothing_and_fetches_no_blob(registry, tmp_path):
    registry.add_image('app', '1', LAYERS)
    dest = tmp_path / 'layout'
    result = export(registry, ['app:1'], dest, check_mode=True, diff_mode=True)
    assert result['changed'] and result['blobs_fetched'] == 3 and not os.path.exists(str(dest))
    assert blob_gets(registry) == []
    assert result['diff']['before'] == {'refs': {}, 'blobs': 0} and result['diff']['after']['blobs'] == 4


def test_index_json_is_merged_other_refs_kept(registry, tmp_path):
    one = registry.add_image('app', '1', LAYERS)[0]
    two = registry.add_image('app', '2', [b'z' * 10])[0]
    dest = tmp_path / 'layout'
    export(registry, ['app:1'], dest)
    export(registry, ['app:2'], dest)
    names = {e['annotations']['org.opencontainers.image.ref.name']: e['digest']
             for e in json.loads((dest / 'index.json').read_text())['manifests']}
    assert names == {'1': one, '2': two}
    by_digest = export(registry, ['app@%s' % one], dest)
    assert by_digest['images'][0]['ref_name'] == one and by_digest['blobs_fetched'] == 0


def test_same_name_with_two_digests_is_refused(registry, other_server, tmp_path):
    registry.add_image('app', '1', LAYERS)
    other_server.add_image('app', '1', [b'other'])
    targets = [(client_for(s), ImageReference.parse('%s/app:1' % s.host)) for s in (registry, other_server)]
    with pytest.raises(InvalidInputError, match='both be named 1'):
        export_images(targets, str(tmp_path / 'd'))


def test_one_tag_of_two_repositories_needs_repository_ref_names(registry, tmp_path):
    app = registry.add_image('team/app', '1.4.2', LAYERS)[0]
    web = registry.add_image('team/web', '1.4.2', [b'web'])[0]
    dest = tmp_path / 'layout'
    with pytest.raises(InvalidInputError, match='set ref_names to repository'):
        export(registry, ['team/app:1.4.2', 'team/web:1.4.2'], dest)
    assert not dest.exists() and blob_gets(registry) == []  # refused before anything was fetched or written
    result = export(registry, ['team/app:1.4.2', 'team/web@%s' % web], dest, naming='repository')
    assert [image['ref_name'] for image in result['images']] == ['team/app:1.4.2', 'team/web@%s' % web]
    names = {e['annotations']['org.opencontainers.image.ref.name']: e['digest']
             for e in json.loads((dest / 'index.json').read_text())['manifests']}
    assert names == {'team/app:1.4.2': app, 'team/web@%s' % web: web}
    plan, dummy, dummy = load_image(str(dest), str(tmp_path), 'team/app:1.4.2')  # push selects it by that name
    assert plan.digest == app


def test_ref_names_must_be_a_known_style(registry, tmp_path):
    registry.add_image('app', '1', LAYERS)
    with pytest.raises(InvalidInputError, match='ref_names must be one of tag, repository'):
        export(registry, ['app:1'], tmp_path / 'layout', naming='path')
    assert registry.requests == []


def test_platform_subset_makes_a_new_index_held_by_the_layout(registry, tmp_path):
    amd = registry.add_image('app', None, [b'amd'], platform=('linux', 'amd64', None))[0]
    arm = registry.add_image('app', None, [b'arm'], platform=('linux', 'arm64', None))[0]
    ppc = registry.add_image('app', None, [b'ppc'], platform=('linux', 'ppc64le', None))[0]
    registry.add_index('app', '1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', None)),
                                    (ppc, ('linux', 'ppc64le', None))])
    dest = tmp_path / 'layout'
    result = export(registry, ['app:1'], dest, platforms=['linux/arm64', 'linux/amd64'])
    image = result['images'][0]
    assert image['platforms'] == ['linux/amd64', 'linux/arm64'] and image['blobs'] == 7
    top = (dest / 'blobs' / 'sha256' / image['digest'][7:]).read_bytes()
    assert digest_of(top) == image['digest'] and ppc not in top.decode()
    plan, dummy, kind = load_image(str(dest), str(tmp_path))
    assert plan.digest == image['digest']


def test_a_single_platform_image_is_checked_against_platforms_from_the_layout_on_a_rerun(registry, tmp_path):
    registry.add_image('app', '1', LAYERS, platform=('linux', 'arm64', None))
    dest = tmp_path / 'layout'
    with pytest.raises(InvalidInputError, match='single-platform image for linux/arm64, not for linux/amd64'):
        export(registry, ['app:1'], dest, platforms=['linux/amd64'])
    assert not os.path.exists(str(dest / 'index.json'))
    assert export(registry, ['app:1'], dest, platforms=['linux/arm64'])['images'][0]['platforms'] == ['linux/arm64']
    registry.requests.clear()
    result = export(registry, ['app:1'], dest, platforms=['linux/arm64'])
    assert not result['changed'] and blob_gets(registry) == []


# -- path safety --------------------------------------------------------------------
def test_a_hostile_digest_cannot_name_a_path_outside_dest(registry, tmp_path):
    config = registry.add_blob(b'{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}')
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                           'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': config,
                                      'size': 79},
                           'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip',
                                       'digest': 'sha256:../../../x', 'size': 1}]}).encode()
    registry.add_manifest('evil', '1', manifest, OCI_MANIFEST)
    dest = tmp_path / 'deep' / 'layout'
    with pytest.raises(RegistryError):
        export(registry, ['evil:1'], dest)
    assert not os.path.exists(str(dest)) and not os.path.exists(str(tmp_path / 'x'))
    assert blob_gets(registry) == []


def test_blobs_linked_out_of_dest_is_refused(registry, tmp_path):
    registry.add_image('app', '1', LAYERS)
    dest = tmp_path / 'layout'
    outside = tmp_path / 'outside'
    outside.mkdir()
    dest.mkdir()
    (dest / 'oci-layout').write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
    os.symlink(str(outside), str(dest / 'blobs'))
    with pytest.raises(InvalidInputError, match='outside of dest'):
        export(registry, ['app:1'], dest)
    assert os.listdir(str(outside)) == [] and blob_gets(registry) == []


def test_a_blob_file_that_is_a_link_is_replaced_not_followed(registry, tmp_path):
    digest, config, layers = registry.add_image('app', '1', LAYERS)
    dest = tmp_path / 'layout'
    export(registry, ['app:1'], dest)
    secret = tmp_path / 'secret'
    secret.write_bytes(LAYERS[0])
    target = dest / 'blobs' / 'sha256' / layers[0][7:]
    target.unlink()
    os.symlink(str(secret), str(target))
    result = export(registry, ['app:1'], dest)
    assert result['blobs_replaced'] == [layers[0]] and not os.path.islink(str(target))
    assert secret.read_bytes() == LAYERS[0]


def test_a_directory_with_other_files_is_refused(registry, tmp_path):
    registry.add_image('app', '1', LAYERS)
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(InvalidInputError, match='no OCI layout'):
        export(registry, ['app:1'], tmp_path)


# -- archives ----------------------------------------------------------------------------
def sha256_file(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.mark.parametrize('fmt', ['oci-archive', 'docker-archive'])
def test_archives_are_byte_identical_and_a_rerun_fetches_nothing(registry, tmp_path, fmt):
    registry.add_image('app', '1', LAYERS)
    first, second = str(tmp_path / 'a.tar'), str(tmp_path / 'b.tar')
    assert export(registry, ['app:1'], first, fmt)['changed']
    assert export(registry, ['app:1'], second, fmt)['blobs_fetched'] == 3
    assert sha256_file(first) == sha256_file(second)
    with tarfile.open(first) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, '', '')}
    registry.requests.clear()
    result = export(registry, ['app:1'], first, fmt)
    assert not result['changed'] and result['blobs_present'] == 3 and blob_gets(registry) == []


def test_a_damaged_archive_is_rewritten(registry, tmp_path):
    registry.add_image('app', '1', LAYERS)
    path = str(tmp_path / 'a.tar')
    export(registry, ['app:1'], path, 'oci-archive')
    good = sha256_file(path)
    with open(path, 'r+b') as handle:
        data = handle.read()
        handle.seek(data.index(b'a' * 100))
        handle.write(b'X')
    result = export(registry, ['app:1'], path, 'oci-archive')
    assert result['changed'] and result['blobs_fetched'] == 3 and sha256_file(path) == good


def test_oci_archive_is_read_back_by_push_with_the_same_digest(registry, tmp_path):
    digest = registry.add_image('app', '1', LAYERS)[0]
    path = str(tmp_path / 'a.tar')
    export(registry, ['app:1'], path, 'oci-archive')
    plan, dummy, kind = load_image(path, str(tmp_path))
    assert kind == 'oci-archive' and plan.digest == digest


def gzip_image(registry, repository, tag, content):
    """A real image: a gzip layer, and a config whose diff_ids name its uncompressed tar."""
    layer = gzip.compress(content, mtime=0)
    config_bytes = json.dumps({'os': 'linux', 'architecture': 'amd64',
                               'rootfs': {'type': 'layers', 'diff_ids': [digest_of(content)]}}).encode()
    config, digest = registry.add_blob(config_bytes), registry.add_blob(layer)
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                           'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': config,
                                      'size': len(config_bytes)},
                           'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': digest,
                                       'size': len(layer)}]}).encode()
    return registry.add_manifest(repository, tag, manifest, OCI_MANIFEST), config, digest


def test_docker_archive_keeps_config_and_layer_digests(registry, tmp_path):
    dummy, config, layer = gzip_image(registry, 'app', '1', b'q' * 1024)
    path = str(tmp_path / 'd.tar')
    export(registry, ['app:1'], path, 'docker-archive')
    with tarfile.open(path) as archive:
        manifest = json.load(archive.extractfile('manifest.json'))
    assert manifest == [{'Config': config[7:] + '.json', 'RepoTags': ['%s/app:1' % registry.host],
                         'Layers': [layer[7:] + '.tar.gz']}]
    plan, dummy, kind = load_image(path, str(tmp_path))  # push reads it: the config and layer keep their digests
    assert kind == 'docker-archive' and [b['digest'] for b in plan.blobs] == [config, layer]


def test_docker_archive_refuses_several_images_and_an_index(registry, tmp_path):
    amd = registry.add_image('app', None, [b'amd'], platform=('linux', 'amd64', None))[0]
    arm = registry.add_image('app', None, [b'arm'], platform=('linux', 'arm64', None))[0]
    registry.add_index('app', '1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', None))])
    path = str(tmp_path / 'd.tar')
    with pytest.raises(InvalidInputError, match='holds one image; 2 were given'):
        export(registry, ['app:1', 'app@%s' % amd], path, 'docker-archive')
    with pytest.raises(InvalidInputError, match='select one platform'):
        export(registry, ['app:1'], path, 'docker-archive')
    result = export(registry, ['app:1'], path, 'docker-archive', platforms=['linux/arm64'])
    assert result['images'][0]['digest'] == arm and not os.path.exists(path + '.partial')
    assert [n for n in os.listdir(str(tmp_path)) if n.endswith('.partial')] == []
