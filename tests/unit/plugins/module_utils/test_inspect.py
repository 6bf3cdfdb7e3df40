# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""manifest_info's inspection against an in-process registry: platform picks, malformed content, schema1."""

from __future__ import annotations

import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._inspect import inspect_image
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    DOCKER_SCHEMA1,
    OCI_INDEX,
    OCI_MANIFEST,
    Platform,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    client_for,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    digest_of as sha,
)

EMPTY_TAR = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8c7c22955b46d4'


def inspect(registry, image, platform=None, warnings=None):
    return inspect_image(client_for(registry), ImageReference.parse('%s/%s' % (registry.host, image)),
                         platform=Platform.parse(platform) if platform else None,
                         ctx=RunContext(warn=(warnings.append if warnings is not None else None))).to_result()


def arm_index(registry, repository, variants):
    """An index with one arm image per variant (None: no variant), in that order; digests by variant."""
    children = []
    digests = {}
    for variant in variants:
        digest = registry.add_image(repository, None, [('arm %s' % variant).encode() * 100],
                                    platform=('linux', 'arm', variant))[0]
        children.append((digest, ('linux', 'arm', variant)))
        digests[variant] = digest
    registry.add_index(repository, 'v1', children)
    return digests


@pytest.mark.parametrize('variants, wanted, expected', [
    (('v5', 'v6', 'v7'), 'linux/arm/v8', 'v7'),
    (('v5', 'v6', 'v7'), 'linux/arm', 'v7'),
    (('v6', 'v7', None), 'linux/arm', None),
    (('v5', 'v6'), 'linux/arm/v7', 'v6'),
    (('v5', 'v6'), 'linux/arm/v8', 'v6'),
    (('v5',), 'linux/arm/v8', 'v5'),
])
def test_index_platform_pick_falls_back_like_container_runtimes(registry, variants, wanted, expected):
    digests = arm_index(registry, 'arm', variants)
    result = inspect(registry, 'arm:v1', wanted)
    assert result['image_digest'] == digests[expected]
    assert result['platform'].get('variant') == expected


def test_no_fallback_to_a_newer_variant(registry):
    arm_index(registry, 'arm', ('v6', 'v7'))
    with pytest.raises(InvalidInputError) as excinfo:
        inspect(registry, 'arm:v1', 'linux/arm/v5')
    assert 'linux/arm/v6, linux/arm/v7' in excinfo.value.msg


def test_single_image_platform_accepts_a_compatible_variant(registry):
    registry.add_image('solo', 'v1', [b'x' * 100], platform=('linux', 'arm', 'v6'))
    assert inspect(registry, 'solo:v1', 'linux/arm/v7')['platform']['variant'] == 'v6'
    with pytest.raises(InvalidInputError):
        inspect(registry, 'solo:v1', 'linux/arm/v5')


def add_raw(registry, repository, tag, document, media_type=OCI_MANIFEST):
    raw = json.dumps(document).encode()
    registry.add_manifest(repository, tag, raw, media_type)
    return raw, sha(raw)


@pytest.mark.parametrize('document, media_type, field', [
    ({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': {'digest': sha(b'{}'), 'size': 2}, 'layers': 5},
     OCI_MANIFEST, 'layers'),
    ({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': {'digest': sha(b'{}'), 'size': 2},
      'layers': [{'digest': sha(b'x'), 'size': 'abc'}]}, OCI_MANIFEST, 'layers[0].size'),
    ({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': {'digest': sha(b'{}'), 'size': 2 ** 41},
      'layers': []}, OCI_MANIFEST, 'config.size'),
    ({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': 5}, OCI_INDEX, 'manifests'),
    ({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
        {'mediaType': OCI_MANIFEST, 'digest': sha(b'a'), 'size': 10, 'platform': 'linux/amd64'}]},
     OCI_INDEX, 'manifests[0].platform'),
])
def test_malformed_manifest_is_an_integrity_error(registry, document, media_type, field):
    raw, digest = add_raw(registry, 'bad', 'v1', document, media_type)
    with pytest.raises(IntegrityError) as excinfo:
        inspect(registry, 'bad:v1', 'linux/amd64' if media_type == OCI_INDEX else None)
    assert excinfo.value.details['field'] == field
    assert field in excinfo.value.msg and digest in excinfo.value.msg


def test_deeply_nested_manifest_is_an_integrity_error(registry):
    registry.add_manifest('deep', 'v1', b'{"manifests": ' + b'[' * 100000 + b']' * 100000 + b'}', OCI_INDEX)
    with pytest.raises(IntegrityError) as excinfo:
        inspect(registry, 'deep:v1')
    assert 'nested' in excinfo.value.msg


def test_malformed_child_is_an_integrity_error(registry):
    child_raw, child = add_raw(registry, 'bad', None, {
        'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': {'digest': sha(b'{}'), 'size': True}, 'layers': []})
    add_raw(registry, 'bad', 'v1', {'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
        {'mediaType': OCI_MANIFEST, 'digest': child, 'size': len(child_raw),
         'platform': {'os': 'linux', 'architecture': 'amd64'}}]}, OCI_INDEX)
    with pytest.raises(IntegrityError) as excinfo:
        inspect(registry, 'bad:v1', 'linux/amd64')
    assert excinfo.value.details['field'] == 'config.size' and child in excinfo.value.msg


@pytest.mark.parametrize('config, field', [
    ([1, 2], None),
    ({'os': 'linux', 'architecture': 'amd64', 'rootfs': 'layers'}, 'rootfs'),
    ({'os': 'linux', 'architecture': 'amd64', 'rootfs': {'diff_ids': 5}}, 'rootfs.diff_ids'),
    ({'os': 'linux', 'architecture': 'amd64', 'history': {'a': 1}}, 'history'),
    ({'os': 'linux', 'architecture': 'amd64', 'history': [5]}, 'history[0]'),
    ({'os': 7, 'architecture': 'amd64'}, 'os'),
])
def test_malformed_config_is_an_integrity_error(registry, config, field):
    config_raw = json.dumps(config).encode()
    config_digest = registry.add_blob(config_raw)
    add_raw(registry, 'cfg', 'v1', {'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                                    'config': {'digest': config_digest, 'size': len(config_raw)}, 'layers': []})
    with pytest.raises(IntegrityError) as excinfo:
        inspect(registry, 'cfg:v1')
    assert excinfo.value.details.get('field') == field
    assert config_digest in excinfo.value.msg


def schema1(steps):
    fs_layers = []
    history = []
    for number, (digest, size, throwaway) in enumerate(steps):
        v1 = {'id': 'l%d' % number, 'os': 'linux', 'container_config': {'Cmd': ['/bin/sh', '-c', 'step %d' % number]}}
        if throwaway:
            v1['throwaway'] = True
        v1['Size'] = size
        fs_layers.insert(0, {'blobSum': digest})
        history.insert(0, {'v1Compatibility': json.dumps(v1)})
    return {'schemaVersion': 1, 'name': 'old', 'tag': 'v1', 'architecture': 'amd64', 'fsLayers': fs_layers,
            'history': history}


def test_schema1_layers_list_every_fs_layer(registry):
    steps = []
    for number in range(15):
        throwaway = number % 3 == 2
        steps.append((EMPTY_TAR, 0, True) if throwaway else (sha(b'%d' % number), 100 * (number + 1), False))
    add_raw(registry, 'old', 'v1', schema1(steps), DOCKER_SCHEMA1)
    warnings = []
    result = inspect(registry, 'old:v1', warnings=warnings)
    assert [entry['digest'] for entry in result['layers']] == [s[0] for s in steps]
    assert [entry['empty_layer'] for entry in result['layers']] == [s[2] for s in steps]
    assert sum(1 for entry in result['layers'] if entry['empty_layer']) == 5
    assert result['total_size'] == sum(s[1] for s in steps if not s[2])
    assert len(result['history']) == 15 and warnings


def test_schema1_with_only_a_throwaway_layer(registry):
    add_raw(registry, 'old', 'v1', schema1([(EMPTY_TAR, 0, True)]), DOCKER_SCHEMA1)
    result = inspect(registry, 'old:v1')
    assert result['layers'] == [{'digest': EMPTY_TAR, 'size': 0, 'media_type': None, 'diff_id': None,
                                 'empty_layer': True}]
    assert result['total_size'] == 0
