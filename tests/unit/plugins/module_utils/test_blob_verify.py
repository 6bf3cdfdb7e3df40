# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""blob_verify's walk and report: whole images, selections, failures, dest and check mode."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._blob_verify import verify_blobs
from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._inspect import inspect_image
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import DOCKER_MANIFEST, Platform
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for

SHARED = b'shared base layer' * 1000
AMD = b'amd64 layer' * 3000
ARM = b'arm64 layer' * 2000


@pytest.fixture
def index(registry):
    amd, amd_config, amd_layers = registry.add_image('app', None, [SHARED, AMD])
    arm, arm_config, arm_layers = registry.add_image('app', None, [SHARED, ARM], platform=('linux', 'arm64', 'v8'))
    top = registry.add_index('app', 'v1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', 'v8'))])
    return {'top': top, 'amd': amd, 'arm': arm, 'amd_config': amd_config, 'arm_config': arm_config,
            'shared': amd_layers[0], 'amd_layer': amd_layers[1], 'arm_layer': arm_layers[1]}


def run(registry, image, **kwargs):
    ctx = RunContext(**{key: kwargs.pop(key) for key in ('workers', 'check_mode') if key in kwargs})
    return verify_blobs(client_for(registry, retries=kwargs.pop('retries', 0)),
                        ImageReference.parse('%s/%s' % (registry.host, image)), ctx, sleep=lambda s: None, **kwargs)


def by_digest(result):
    return dict((b['digest'], b) for b in result['blobs'])


def blob_gets(registry):
    return [r['path'].rsplit('/', 1)[1] for r in registry.requests if '/blobs/' in r['path'] and r['method'] == 'GET']


@pytest.mark.parametrize('workers', [1, 4])
def test_whole_index_verifies_every_manifest_and_blob_once(registry, index, workers):
    result = run(registry, 'app:v1', workers=workers)
    blobs = by_digest(result)
    assert result['changed'] is False and result['failed_count'] == 0
    assert result['digest'] == index['top']
    # 3 manifests + 2 configs + 3 distinct layers; the shared layer once, for both platforms.
    assert len(blobs) == 8 and result['verified_count'] == 8
    assert blobs[index['shared']]['platforms'] == ['linux/amd64', 'linux/arm64/v8']
    assert blobs[index['arm_layer']]['platform'] == 'linux/arm64/v8'
    assert [b['kind'] for b in result['blobs']].count('manifest') == 3
    assert blobs[index['top']]['platform'] is None
    assert sorted(blob_gets(registry)) == sorted([index['amd_config'], index['arm_config'], index['shared'],
                                                  index['amd_layer'], index['arm_layer']])
    assert result['bytes_downloaded'] == sum(b['size'] for b in result['blobs'] if b['kind'] != 'manifest')
    assert all(b['status'] == 'ok' and b['verified'] for b in result['blobs'])


def test_platform_limits_an_index(registry, index):
    result = run(registry, 'app:v1', platform=Platform.parse('linux/arm64'))
    assert set(by_digest(result)) == set([index['top'], index['arm'], index['arm_config'], index['shared'],
                                          index['arm_layer']])


def test_single_image_platform_comes_from_its_config(registry):
    registry.add_image('solo', 'v1', [AMD], platform=('linux', 's390x', None))
    result = run(registry, 'solo:v1')
    assert set(b['platform'] for b in result['blobs']) == set(['linux/s390x'])
    with pytest.raises(InvalidInputError) as excinfo:
        run(registry, 'solo:v1', platform=Platform.parse('linux/amd64'))
    assert 'linux/s390x' in excinfo.value.msg


def test_selected_digests_of_a_repository(registry, index):
    result = run(registry, 'app', digests=[index['amd_layer']])
    assert [b['digest'] for b in result['blobs']] == [index['amd_layer']]
    assert result['blobs'][0]['size'] == len(AMD) and result['blobs'][0]['kind'] == 'blob'
    assert result['digest'] is None


def test_selected_digests_of_an_image_carry_their_descriptors(registry, index):
    result = run(registry, 'app:v1', digests=[index['arm_layer']])
    assert result['blobs'][0]['kind'] == 'layer' and result['blobs'][0]['platform'] == 'linux/arm64/v8'
    with pytest.raises(InvalidInputError) as excinfo:
        run(registry, 'app:v1', digests=['sha256:' + 'e' * 64])
    assert 'sha256:' + 'e' * 64 in excinfo.value.msg


def test_a_corrupt_blob_fails_naming_it_and_still_reports_everything(registry, index):
    registry.fault = lambda r: {'corrupt': 7} if r['path'].endswith(index['arm_layer']) else None
    with pytest.raises(IntegrityError) as excinfo:
        run(registry, 'app:v1')
    error = excinfo.value
    assert index['arm_layer'] in error.msg and '1 of 8 items' in error.msg
    blobs = by_digest(error.details)
    bad = blobs[index['arm_layer']]
    assert bad['status'] == 'mismatch' and not bad['verified']
    assert bad['actual_size'] == len(ARM) and bad['actual_digest'] not in (None, index['arm_layer'])
    assert bad['actual_digest'] in error.msg
    assert error.details['verified_count'] == 7 and error.details['failed_count'] == 1


def test_a_missing_blob_is_blob_unknown(registry, index):
    del registry.blobs[index['amd_layer']]
    with pytest.raises(NotFoundError) as excinfo:
        run(registry, 'app:v1')
    assert 'BLOB_UNKNOWN' in excinfo.value.msg and index['amd_layer'] in excinfo.value.msg
    assert by_digest(excinfo.value.details)[index['amd_layer']]['status'] == 'missing'


def test_a_child_manifest_that_does_not_match_the_index(registry, index):
    media_type, data = registry.manifests[('app', index['arm'])]
    registry.manifests[('app', index['arm'])] = (media_type, data + b' ')
    with pytest.raises(IntegrityError) as excinfo:
        run(registry, 'app:v1')
    assert by_digest(excinfo.value.details)[index['arm']]['status'] == 'mismatch'
    # The amd64 side is still verified.
    assert by_digest(excinfo.value.details)[index['amd_layer']]['status'] == 'ok'


def test_exists_only_heads(registry, index):
    result = run(registry, 'app:v1', check='exists')
    assert result['verified_count'] == 8 and result['bytes_verified'] == sum(
        b['size'] for b in result['blobs'] if b['kind'] == 'manifest')
    assert blob_gets(registry) == []
    registry.fault = lambda r: {'content_length': 5} if r['path'].endswith(index['shared']) else None
    with pytest.raises(IntegrityError) as excinfo:
        run(registry, 'app:v1', check='exists')
    assert by_digest(excinfo.value.details)[index['shared']]['actual_size'] == 5


def test_truncated_transfer_is_resumed(registry, index):
    registry.fault = lambda r: ({'truncate': 100} if r['path'].endswith(index['amd_layer']) and 'Range' not in r['headers']
                                else None)
    result = run(registry, 'app:v1', retries=1)
    assert result['failed_count'] == 0
    ranges = [r['headers'].get('Range') for r in registry.requests if r['path'].endswith(index['amd_layer'])]
    assert ranges == [None, 'bytes=100-']


def test_dest_is_idempotent_repairs_and_check_mode_writes_nothing(registry, index, tmp_path):
    dest = str(tmp_path / 'mirror')
    first_check = run(registry, 'app:v1', dest=dest, check_mode=True)
    assert first_check['changed'] is True and not os.path.exists(dest)
    assert first_check['diff']['before'] == {'blobs': []} and len(first_check['diff']['after']['blobs']) == 8

    first = run(registry, 'app:v1', dest=dest)
    assert first['changed'] is True and first['diff'] == first_check['diff']
    for entry in first['blobs']:
        with open(entry['path'], 'rb') as handle:
            assert len(handle.read()) == entry['size']
        assert entry['path'] == os.path.join(dest, 'blobs', 'sha256', entry['digest'][7:])

    gets = len(blob_gets(registry))
    again = run(registry, 'app:v1', dest=dest)
    assert again['changed'] is False and again['diff']['before'] == again['diff']['after']
    assert len(blob_gets(registry)) == gets  # nothing downloaded again
    assert again['bytes_downloaded'] == 0 and again['verified_count'] == 8

    broken = os.path.join(dest, 'blobs', 'sha256', index['arm_layer'][7:])
    with open(broken, 'r+b') as handle:
        handle.write(b'X')
    repair_check = run(registry, 'app:v1', dest=dest, check_mode=True)
    assert repair_check['changed'] is True
    assert [b['digest'] for b in repair_check['blobs'] if b['changed']] == [index['arm_layer']]
    with open(broken, 'rb') as handle:
        assert handle.read(1) == b'X'  # check mode did not touch it
    repaired = run(registry, 'app:v1', dest=dest)
    assert repaired['changed'] is True
    assert 'blobs/sha256/%s (does not verify)' % index['arm_layer'][7:] in repaired['diff']['before']['blobs']
    with open(broken, 'rb') as handle:
        assert handle.read() == ARM
    assert run(registry, 'app:v1', dest=dest)['changed'] is False
    leftovers = [n for n in os.listdir(os.path.join(dest, 'blobs', 'sha256')) if n.startswith('.')]
    assert leftovers == []


def test_bad_blob_is_not_kept(registry, index, tmp_path):
    dest = str(tmp_path / 'mirror')
    registry.fault = lambda r: {'corrupt': 0} if r['path'].endswith(index['amd_layer']) else None
    with pytest.raises(IntegrityError) as excinfo:
        run(registry, 'app:v1', dest=dest)
    assert excinfo.value.details['changed'] is True  # the good blobs were kept
    names = os.listdir(os.path.join(dest, 'blobs', 'sha256'))
    assert index['amd_layer'][7:] not in names and index['shared'][7:] in names
    assert not [n for n in names if n.startswith('.')]


@pytest.mark.parametrize('kwargs, message', [
    ({'dest': '/tmp/x', 'check': 'exists'}, 'check=full'),
    ({'workers': 0}, 'workers'),
    ({'digests': []}, 'digests is empty'),
    ({'digests': ['sha256:abc']}, 'Invalid digest'),
])
def test_bad_options(registry, index, kwargs, message):
    with pytest.raises(InvalidInputError) as excinfo:
        run(registry, 'app:v1', **kwargs)
    assert message in excinfo.value.msg


def test_repository_without_tag_needs_digests(registry):
    with pytest.raises(InvalidInputError) as excinfo:
        run(registry, 'app')
    assert 'digests' in excinfo.value.msg


def test_schema1_layers_are_verified_by_digest_once(registry):
    layer = registry.add_blob(AMD)
    empty = registry.add_blob(b'')
    manifest = json.dumps({'schemaVersion': 1, 'name': 'old', 'tag': 'v1', 'architecture': 'amd64',
                           'fsLayers': [{'blobSum': empty}, {'blobSum': layer}, {'blobSum': empty}],
                           'history': [{'v1Compatibility': '{}'}] * 3}).encode()
    registry.add_manifest('old', 'v1', manifest, 'application/vnd.docker.distribution.manifest.v1+json')
    warnings = []
    result = verify_blobs(client_for(registry), ImageReference.parse('%s/old:v1' % registry.host),
                          RunContext(warn=warnings.append))
    layers = [b for b in result['blobs'] if b['kind'] == 'layer']
    assert [b['digest'] for b in layers] == [empty, layer]  # base layer first, the empty one once
    assert [b['size'] for b in layers] == [0, len(AMD)] and all(b['verified'] for b in layers)
    assert 'schema1' in warnings[0]


def test_foreign_layer_the_registry_does_not_have_is_skipped(registry):
    config_bytes = json.dumps({'os': 'windows', 'architecture': 'amd64'}).encode()
    config = registry.add_blob(config_bytes)
    local = registry.add_blob(AMD)
    foreign = 'sha256:' + 'c' * 64
    manifest = json.dumps({
        'schemaVersion': 2, 'mediaType': DOCKER_MANIFEST,
        'config': {'mediaType': 'application/vnd.docker.container.image.v1+json', 'digest': config,
                   'size': len(config_bytes)},
        'layers': [{'mediaType': 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'digest': foreign,
                    'size': 1000, 'urls': ['https://example.invalid/base.tar.gz']},
                   {'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip', 'digest': local,
                    'size': len(AMD)}]}).encode()
    registry.add_manifest('win', 'v1', manifest, DOCKER_MANIFEST)
    result = run(registry, 'win:v1')
    blobs = by_digest(result)
    assert blobs[foreign]['status'] == 'skipped' and not blobs[foreign]['verified']
    assert blobs[local]['status'] == 'ok' and blobs[local]['platform'] == 'windows/amd64'
    assert result['failed_count'] == 0 and result['verified_count'] == 3
    # Not foreign, the same missing layer fails.
    registry.add_manifest('win', 'v2', manifest.replace(b'foreign.diff', b'diff'), DOCKER_MANIFEST)
    with pytest.raises(NotFoundError):
        run(registry, 'win:v2')


# -- platform picks and malformed manifests --------------------------------------------------------------
def arm_index(registry, variants):
    digests = {}
    children = []
    for variant in variants:
        digest, config, layers = registry.add_image('arm', None, [('arm %s' % variant).encode() * 500],
                                                    platform=('linux', 'arm', variant))
        digests[variant] = (digest, config, layers[0])
        children.append((digest, ('linux', 'arm', variant)))
    top = registry.add_index('arm', 'v1', children)
    return top, digests


@pytest.mark.parametrize('wanted, expected', [('linux/arm/v8', 'v7'), ('linux/arm', 'v7'), ('linux/arm/v6', 'v6')])
def test_platform_falls_back_like_container_runtimes(registry, wanted, expected):
    top, digests = arm_index(registry, ('v5', 'v6', 'v7'))
    result = run(registry, 'arm:v1', platform=Platform.parse(wanted))
    assert set(by_digest(result)) == set((top,) + digests[expected])
    assert by_digest(result)[digests[expected][2]]['platform'] == 'linux/arm/%s' % expected


def test_single_image_accepts_a_compatible_platform(registry):
    registry.add_image('solo', 'v1', [AMD], platform=('linux', 'arm', 'v6'))
    assert run(registry, 'solo:v1', platform=Platform.parse('linux/arm/v8'))['failed_count'] == 0
    with pytest.raises(InvalidInputError):
        run(registry, 'solo:v1', platform=Platform.parse('linux/arm/v5'))


def test_malformed_top_manifest_is_an_integrity_error(registry):
    raw = json.dumps({'schemaVersion': 2, 'mediaType': DOCKER_MANIFEST,
                      'config': {'digest': registry.add_blob(b'{}'), 'size': 2},
                      'layers': [{'digest': registry.add_blob(AMD), 'size': -5}]}).encode()
    top = registry.add_manifest('bad', 'v1', raw, DOCKER_MANIFEST)
    with pytest.raises(IntegrityError) as excinfo:
        run(registry, 'bad:v1')
    assert excinfo.value.details['field'] == 'layers[0].size' and top in excinfo.value.msg
    assert blob_gets(registry) == []


def test_malformed_child_manifest_is_reported_with_the_field(registry, index):
    child = json.dumps({'schemaVersion': 2, 'mediaType': DOCKER_MANIFEST,
                        'config': {'digest': registry.add_blob(b'{}'), 'size': 2}, 'layers': 5}).encode()
    child_digest = registry.add_manifest('app', None, child, DOCKER_MANIFEST)
    registry.add_index('app', 'v2', [(index['amd'], ('linux', 'amd64', None)), (child_digest, ('linux', 'arm64', None))])
    with pytest.raises(IntegrityError) as excinfo:
        run(registry, 'app:v2')
    assert 'layers' in excinfo.value.msg and child_digest in excinfo.value.msg
    entry = by_digest(excinfo.value.details)[child_digest]
    assert entry['status'] == 'mismatch' and 'layers is a number' in entry['message']
    assert by_digest(excinfo.value.details)[index['amd_layer']]['status'] == 'ok'


def test_deeply_nested_config_does_not_crash(registry):
    config_bytes = b'{"os": "linux", "architecture": "amd64", "x": ' + b'[' * 100000 + b']' * 100000 + b'}'
    config = registry.add_blob(config_bytes)
    raw = json.dumps({'schemaVersion': 2, 'mediaType': DOCKER_MANIFEST,
                      'config': {'digest': config, 'size': len(config_bytes)}, 'layers': []}).encode()
    registry.add_manifest('deep', 'v1', raw, DOCKER_MANIFEST)
    result = run(registry, 'deep:v1')
    assert result['failed_count'] == 0
    with pytest.raises(InvalidInputError):
        run(registry, 'deep:v1', platform=Platform.parse('linux/amd64'))


def test_schema1_throwaway_layers_match_manifest_info(registry):
    empty = registry.add_blob(b'')
    layer = registry.add_blob(AMD)
    v1 = [json.dumps({'throwaway': True}), json.dumps({'Size': len(AMD)}), json.dumps({'throwaway': True})]
    manifest = json.dumps({'schemaVersion': 1, 'name': 'old', 'tag': 'v1', 'architecture': 'amd64',
                           'fsLayers': [{'blobSum': empty}, {'blobSum': layer}, {'blobSum': empty}],
                           'history': [{'v1Compatibility': text} for text in v1]}).encode()
    registry.add_manifest('old', 'v1', manifest, 'application/vnd.docker.distribution.manifest.v1+json')
    verified = run(registry, 'old:v1')
    described = inspect_image(client_for(registry), ImageReference.parse('%s/old:v1' % registry.host)).to_result()
    assert set(b['digest'] for b in verified['blobs'] if b['kind'] == 'layer') == set(
        entry['digest'] for entry in described['layers'])
