# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    Platform,
    history,
    layers_with_diff_ids,
    schema1_details,
)


def d(n):
    return 'sha256:' + ('%x' % n) * 64


def test_accept_lists_every_manifest_type():
    for media_type in (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED,
                       'application/vnd.docker.distribution.manifest.v1+json'):
        assert media_type in ACCEPT


def test_digest_is_of_the_exact_bytes():
    raw = b'{"schemaVersion": 2,  "mediaType": "%s", "config": {}, "layers": []}' % OCI_MANIFEST.encode()
    manifest = Manifest(raw, None)
    assert manifest.digest == 'sha256:' + hashlib.sha256(raw).hexdigest()
    assert manifest.size == len(raw)
    assert manifest.is_image and not manifest.is_index


@pytest.mark.parametrize('document, header, expected', [
    ({'schemaVersion': 2, 'manifests': []}, None, OCI_INDEX),
    ({'schemaVersion': 2, 'config': {}, 'layers': []}, None, OCI_MANIFEST),
    ({'schemaVersion': 2, 'config': {}, 'layers': []}, DOCKER_MANIFEST + '; charset=utf-8', DOCKER_MANIFEST),
    ({'schemaVersion': 2, 'mediaType': DOCKER_LIST, 'manifests': []}, 'text/plain', DOCKER_LIST),
])
def test_media_type(document, header, expected):
    assert Manifest(json.dumps(document).encode(), header).media_type == expected


def test_not_json_is_an_integrity_error():
    with pytest.raises(IntegrityError):
        Manifest(b'<html>', None)


def test_platform_parse_and_match():
    wanted = Platform.parse('linux/arm64')
    assert wanted.matches(Platform('linux', 'arm64', 'v8'))
    assert Platform.parse('linux/arm64/v8').matches(Platform('linux', 'arm64'))
    assert not Platform.parse('linux/arm/v7').matches(Platform('linux', 'arm', 'v6'))
    assert not wanted.matches(Platform('windows', 'arm64'))
    assert str(Platform.parse('LINUX/AMD64')) == 'linux/amd64'
    for bad in ('linux', 'linux/', '/amd64', 'linux/amd64/v1/x', '', None):
        with pytest.raises(InvalidInputError):
            Platform.parse(bad)


def test_select_platform_lists_what_exists():
    index = Manifest(json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
        {'digest': d(1), 'mediaType': OCI_MANIFEST, 'size': 1, 'platform': {'os': 'linux', 'architecture': 'amd64'}},
        {'digest': d(2), 'mediaType': OCI_MANIFEST, 'size': 1,
         'platform': {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'}},
    ]}).encode(), None)
    assert index.select_platform(Platform.parse('linux/arm64'))['digest'] == d(2)
    with pytest.raises(InvalidInputError) as excinfo:
        index.select_platform(Platform.parse('linux/s390x'))
    assert 'linux/amd64, linux/arm64/v8' in excinfo.value.msg


def test_history_pairs_layers_and_skips_empty_layers():
    manifest = Manifest(json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                                    'config': {'digest': d(9), 'size': 10, 'mediaType': 'x'},
                                    'layers': [{'digest': d(1), 'size': 100, 'mediaType': 'l'},
                                               {'digest': d(2), 'size': 200, 'mediaType': 'l'}]}).encode(), None)
    config = {'rootfs': {'diff_ids': [d(3), d(4)]}, 'history': [
        {'created_by': 'ARG SUFFIX', 'empty_layer': True},
        {'created_by': 'RUN one'},
        {'created_by': 'ENV X=1', 'empty_layer': True},
        {'created_by': 'RUN two'},
        {'created_by': 'CMD ["sh"]', 'empty_layer': True},
    ]}
    layers = layers_with_diff_ids(manifest, config)
    assert [layer['diff_id'] for layer in layers] == [d(3), d(4)]
    entries = history(config, layers)
    assert [(e['created_by'], e['layer_digest'], e['size'], e['empty_layer']) for e in entries] == [
        ('ARG SUFFIX', None, 0, True), ('RUN one', d(1), 100, False), ('ENV X=1', None, 0, True),
        ('RUN two', d(2), 200, False), ('CMD ["sh"]', None, 0, True)]


def test_blob_descriptors_validate_digests():
    manifest = Manifest(json.dumps({'schemaVersion': 2, 'config': {'digest': 'sha256:short', 'size': 1},
                                    'layers': []}).encode(), None)
    with pytest.raises(InvalidInputError):
        manifest.blob_descriptors()


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip('=')


def test_signed_schema1_digest_is_of_the_payload_without_signatures():
    payload = json.dumps({
        'schemaVersion': 1, 'name': 'a/b', 'tag': 'v1', 'architecture': 'amd64',
        'fsLayers': [{'blobSum': d(2)}, {'blobSum': d(1)}],
        'history': [{'v1Compatibility': json.dumps({'id': 'top', 'container_config': {'Cmd': ['/bin/sh', '-c', 'echo top']},
                                                    'Size': 20, 'os': 'linux'})},
                    {'v1Compatibility': json.dumps({'id': 'base', 'Size': 10, 'created': '2020-01-01T00:00:00Z'})}],
    }, indent=3).encode()
    # libtrust keeps the payload up to formatLength and replaces the tail with the signatures.
    format_length = len(payload) - 2
    tail = payload[format_length:]
    protected = _b64(json.dumps({'formatLength': format_length, 'formatTail': _b64(tail)}).encode())
    signed = payload[:format_length] + b',\n   "signatures": [{"protected": "%s", "signature": "x"}]\n}' % (
        protected.encode())
    manifest = Manifest(signed, DOCKER_SCHEMA1_SIGNED)
    assert manifest.is_schema1
    assert manifest.digest == 'sha256:' + hashlib.sha256(payload).hexdigest()
    layers, entries, platform = schema1_details(manifest)
    assert [layer['digest'] for layer in layers] == [d(1), d(2)]
    assert [e['created_by'] for e in entries] == [None, '/bin/sh -c echo top']
    assert str(platform) == 'linux/amd64'
