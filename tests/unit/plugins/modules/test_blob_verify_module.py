# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blob_verify module end to end against an in-process registry: exit, failure and check mode."""

from __future__ import annotations

import json
import os

from ansible_collections.imagelayers.registry.plugins.modules import blob_verify
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module

LAYER = b'layer bytes' * 5000


def test_verifies_an_image(registry):
    digest, config, layers = registry.add_image('app', 'v1', [LAYER])
    code, result = run_module(blob_verify, {'image': '%s/app:v1' % registry.host})
    assert code == 0 and not result.get('failed')
    assert result['changed'] is False and result['digest'] == digest
    assert [(b['kind'], b['status']) for b in result['blobs']] == [('manifest', 'ok'), ('config', 'ok'), ('layer', 'ok')]
    assert result['verified_count'] == 3 and result['elapsed'] >= 0


def test_failure_lists_the_bad_blob_and_returns_blobs(registry):
    digest, config, layers = registry.add_image('app', 'v1', [LAYER])
    registry.fault = lambda r: {'corrupt': 3} if r['path'].endswith(layers[0]) else None
    code, result = run_module(blob_verify, {'image': '%s/app:v1' % registry.host, 'retries': 0})
    assert code == 1 and result['failed'] is True
    assert layers[0] in result['msg'] and 'expected %s, %d bytes' % (layers[0], len(LAYER)) in result['msg']
    assert [b['status'] for b in result['blobs']] == ['ok', 'ok', 'mismatch']
    assert 'Traceback' not in json.dumps(result)


def test_check_mode_with_dest_writes_nothing(registry, tmp_path):
    registry.add_image('app', 'v1', [LAYER])
    dest = str(tmp_path / 'd')
    code, result = run_module(blob_verify, {'image': '%s/app:v1' % registry.host, 'dest': dest,
                                            '_ansible_check_mode': True, '_ansible_diff': True})
    assert code == 0 and result['changed'] is True and not os.path.exists(dest)
    code, result = run_module(blob_verify, {'image': '%s/app:v1' % registry.host, 'dest': dest})
    assert result['changed'] is True and len(os.listdir(os.path.join(dest, 'blobs', 'sha256'))) == 3


def test_user_mistake_is_a_clean_failure(registry):
    code, result = run_module(blob_verify, {'image': '%s/app:v1' % registry.host, 'check': 'exists', 'dest': '/tmp/x'})
    assert code == 1 and 'check=full' in result['msg'] and 'exception' not in result


def test_malformed_manifest_is_a_clean_failure_naming_the_field(registry):
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                           'config': {'digest': registry.add_blob(b'{}'), 'size': 2},
                           'layers': [{'digest': registry.add_blob(LAYER), 'size': 'abc'}]}).encode()
    registry.add_manifest('bad', 'v1', manifest, 'application/vnd.oci.image.manifest.v1+json')
    code, result = run_module(blob_verify, {'image': '%s/bad:v1' % registry.host})
    assert code == 1 and 'layers[0].size' in result['msg'] and 'exception' not in result
    assert 'Traceback' not in json.dumps(result)
