# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sign module end to end against the fake registry: check/real/check/real, secrets, clean failures."""

from __future__ import annotations

import json

from ansible_collections.imagelayers.registry.plugins.module_utils import _keys
from ansible_collections.imagelayers.registry.plugins.modules import sign
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.sigstore import (
    COSIGN_KEY,
    COSIGN_KEY_PASSPHRASE,
    make_key,
    private_pem,
)

PASSPHRASE = 'correct horse battery'
KEY = private_pem(make_key('p256'), passphrase=PASSPHRASE)


def args(registry, **extra):
    values = {'image': '%s/app:v1' % registry.host, 'key': KEY, 'passphrase': PASSPHRASE, '_ansible_diff': True}
    values.update(extra)
    return values


def test_check_real_check_real(registry):
    digest, dummy, dummy = registry.add_image('app', 'v1', [b'layer'])
    repo = registry.repository('app')
    results = []
    for check in (True, False, True, False):
        code, result = run_module(sign, args(registry, _ansible_check_mode=check))
        assert code == 0, result
        results.append(result)
    check1, real1, check2, real2 = results
    tag = 'sha256-%s.sig' % digest.split(':')[1]
    assert [r['changed'] for r in results] == [True, True, False, False]
    assert check1['signature'] == {'digest': None, 'format': 'simplesigning', 'tag': tag}
    assert real1['signature'] == {'digest': repo.tags[tag], 'format': 'simplesigning', 'tag': tag}
    assert check2['signature'] == real2['signature'] == real1['signature']
    assert check1['diff'] == real1['diff'] and check1['diff']['before'] == {'signatures': 0, 'key_fingerprints': []}
    assert check2['diff']['before'] == check2['diff']['after'] == real1['diff']['after']
    assert all(r['digest'] == digest for r in results)


def test_secrets_are_never_in_the_result(registry):
    registry.add_image('app', 'v1', [b'layer'])
    code, result = run_module(sign, args(registry))
    text = json.dumps(result)
    assert code == 0 and PASSPHRASE not in text and 'PRIVATE KEY' not in text


def test_a_wrong_passphrase_is_a_clean_failure_that_writes_nothing(registry):
    registry.add_image('app', 'v1', [b'layer'])
    repo = registry.repository('app')
    code, result = run_module(sign, args(registry, passphrase='not it'))
    assert code == 1 and 'passphrase' in result['msg'] and 'Traceback' not in json.dumps(result)
    assert 'not it' not in json.dumps(result) and PASSPHRASE not in json.dumps(result)
    assert repo.writes() == [] and registry.requests == []


def test_cosign_encrypted_key_and_bundle_format(registry):
    digest, dummy, dummy = registry.add_image('app', 'v1', [b'layer'])
    code, result = run_module(sign, args(registry, key=COSIGN_KEY, passphrase=COSIGN_KEY_PASSPHRASE, format='bundle'))
    assert code == 0 and result['changed'] is True and result['signature']['format'] == 'bundle'
    assert 'tag' not in result['signature']
    code, again = run_module(sign, args(registry, key=COSIGN_KEY, passphrase=COSIGN_KEY_PASSPHRASE, format='bundle'))
    assert again['changed'] is False and again['signature']['digest'] == result['signature']['digest']


def test_without_cryptography_the_module_says_what_to_install(registry, monkeypatch):
    registry.add_image('app', 'v1', [b'layer'])
    monkeypatch.setattr(_keys, 'HAS_CRYPTOGRAPHY', False)
    code, result = run_module(sign, args(registry))
    assert code == 1 and 'Failed to import the required Python library (cryptography)' in result['msg']
    assert result['missing_library'] == 'cryptography' and registry.requests == []
