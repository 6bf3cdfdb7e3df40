# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError
from ansible_collections.imagelayers.registry.plugins.module_utils._inspect import inspect_image
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import OCI_MANIFEST
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    Registry,
    client_for,
    digest_of,
)

CONFIG = json.dumps({'os': 'linux', 'architecture': 'amd64', 'rootfs': {'diff_ids': []}, 'history': []}).encode()
CONFIG_DIGEST = digest_of(CONFIG)
MANIFEST = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                       'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': CONFIG_DIGEST,
                                  'size': len(CONFIG)}, 'layers': []}).encode()
MANIFEST_DIGEST = digest_of(MANIFEST)
OTHER = 'sha256:' + 'f' * 64


def test_header_that_lies_about_the_digest_is_caught(server):
    server.handler = lambda r: (200, {'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': OTHER}, MANIFEST)
    with pytest.raises(IntegrityError) as excinfo:
        client_for(server).get_manifest('app', 'latest')
    assert OTHER in excinfo.value.msg and MANIFEST_DIGEST in excinfo.value.msg


def test_by_digest_fetch_must_hash_to_the_digest(server):
    server.handler = lambda r: (200, {'Content-Type': OCI_MANIFEST}, MANIFEST)
    client = client_for(server)
    assert client.get_manifest('app', MANIFEST_DIGEST).digest == MANIFEST_DIGEST
    with pytest.raises(IntegrityError) as excinfo:
        client.get_manifest('app', OTHER)
    assert excinfo.value.details['actual_digest'] == MANIFEST_DIGEST


def test_missing_digest_header_is_computed(server):
    server.handler = lambda r: (200, {'Content-Type': OCI_MANIFEST}, MANIFEST)
    assert client_for(server).get_manifest('app', 'latest').digest == MANIFEST_DIGEST


def test_resolve_falls_back_to_get_without_digest_header(server):
    server.handler = lambda r: (200, {'Content-Type': OCI_MANIFEST}, MANIFEST)
    resolved = client_for(server).resolve('app', 'latest')
    assert resolved['digest'] == MANIFEST_DIGEST
    assert [r['method'] for r in server.requests] == ['HEAD', 'GET']


def test_every_manifest_request_sends_the_full_accept_list(server):
    server.handler = lambda r: (200, {'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': MANIFEST_DIGEST}, MANIFEST)
    client = client_for(server)
    client.head_manifest('app', 'latest')
    client.get_manifest('app', 'latest')
    for request in server.requests:
        assert 'application/vnd.docker.distribution.manifest.v1+prettyjws' in request['headers']['Accept']
        assert 'application/vnd.oci.image.index.v1+json' in request['headers']['Accept']


def test_corrupted_config_is_caught(server):
    def handler(request):
        if '/blobs/' in request['path']:
            return 200, {}, CONFIG.replace(b'amd64', b'arm64')
        return 200, {'Content-Type': OCI_MANIFEST}, MANIFEST
    server.handler = handler
    with pytest.raises(IntegrityError) as excinfo:
        inspect_image(client_for(server), ImageReference.parse('%s/app:latest' % server.host))
    assert CONFIG_DIGEST in excinfo.value.msg


def test_inspect_missing_tag_is_not_a_failure(server):
    server.handler = lambda r: (404, {'Content-Type': 'application/json'},
                                b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    result = inspect_image(client_for(server), ImageReference.parse('%s/app:nope' % server.host)).to_result()
    assert result['exists'] is False and result['digest'] is None


def test_a_config_nested_absurdly_deep_is_an_integrity_error():
    registry = Registry()
    try:
        data = b'[' * 100000 + b']' * 100000
        digest = registry.add_blob(data)
        with pytest.raises(IntegrityError, match='nested'):
            client_for(registry).get_json_blob('app', {'digest': digest, 'size': len(data)}, what='image config')
    finally:
        registry.close()
