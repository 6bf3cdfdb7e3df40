# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy's trust gate (verify_signatures, require_artifact_types) and its signing (sign), end to end."""

from __future__ import annotations

import json

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._signatures import sig_tag, sign_image
from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import Signer, Verifier
from ansible_collections.imagelayers.registry.plugins.modules import copy
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.sigstore import (
    make_key,
    private_pem,
    public_pem,
)

CI_KEY = make_key('p256')
PROMOTE_KEY = make_key('p256')
PASSPHRASE = 'promote me'


def source_image(registry, signed_with=None):
    digest = registry.add_image('app', 'v1', [b'layer one', b'layer two'])[0]
    if signed_with is not None:
        sign_image(client_for(registry), 'app', digest, '%s/app' % registry.host, Signer(private_pem(signed_with)),
                   'simplesigning', RunContext())
    registry.requests.clear()
    return digest


def copy_args(registry, **extra):
    values = {'src': '%s/app:v1' % registry.host, 'dest': '%s/prod/app:v1' % registry.host, '_ansible_diff': True}
    values.update(extra)
    return values


def prod_writes(registry):
    return [r for r in registry.requests if r['method'] in ('PUT', 'POST', 'PATCH', 'DELETE')]


def test_an_unsigned_image_is_not_copied(registry):
    source_image(registry)
    code, result = run_module(copy, copy_args(registry, verify_signatures={'keys': [public_pem(CI_KEY)]}))
    assert code == 1 and 'has no signature' in result['msg'] and 'Nothing was written' in result['msg']
    assert prod_writes(registry) == [] and ('prod/app', 'v1') not in registry.manifests


def test_an_image_signed_by_another_key_is_not_copied(registry):
    source_image(registry, signed_with=make_key('p256'))
    code, result = run_module(copy, copy_args(registry, verify_signatures={'keys': [public_pem(CI_KEY)]}))
    assert code == 1 and 'no key verifies the signature' in result['msg']
    assert [entry['verified'] for entry in result['signatures']] == [False]
    assert prod_writes(registry) == []


def test_a_signed_image_is_copied_and_the_gate_costs_two_reads(registry):
    digest = source_image(registry, signed_with=CI_KEY)
    code, plain = run_module(copy, copy_args(registry, dest='%s/plain/app:v1' % registry.host))
    plain_reads = [r for r in registry.requests if r['path'].startswith('/v2/app/')]
    registry.requests.clear()
    code, result = run_module(copy, copy_args(registry, verify_signatures={'keys': [public_pem(CI_KEY)]}))
    gated_reads = [r for r in registry.requests if r['path'].startswith('/v2/app/')]
    assert code == 0 and result['changed'] is True and result['source_digest'] == digest
    [entry] = result['signatures']
    assert entry['verified'] is True and entry['found_in'] == 'tag' and entry['tag'] == sig_tag(digest)
    # The .sig manifest and its payload: at most 3 more requests than the same copy without the gate.
    assert len(gated_reads) - len(plain_reads) == 2
    assert registry.manifests[('prod/app', 'v1')] == registry.manifests[('app', digest)]


def test_a_missing_kind_of_referrer_stops_the_copy(registry):
    source_image(registry, signed_with=CI_KEY)
    code, result = run_module(copy, copy_args(registry, verify_signatures={'keys': [public_pem(CI_KEY)]},
                                              require_artifact_types=['application/spdx+json']))
    assert code == 1 and 'no referrer of type application/spdx+json' in result['msg']
    assert result['missing_artifact_types'] == ['application/spdx+json'] and prod_writes(registry) == []
    code, result = run_module(copy, copy_args(registry, require_artifact_types=['application/spdx+json']))
    assert code == 1 and 'has no signature' not in result['msg'] and prod_writes(registry) == []


def test_sign_check_real_check_real(registry):
    source_image(registry)
    sign = {'key': private_pem(PROMOTE_KEY, passphrase=PASSPHRASE), 'passphrase': PASSPHRASE}
    results = []
    for check in (True, False, True, False):
        writes_before = len(prod_writes(registry))
        code, result = run_module(copy, copy_args(registry, sign=sign, _ansible_check_mode=check))
        assert code == 0, result
        results.append((result, len(prod_writes(registry)) - writes_before))
    (check1, w1), (real1, w2), (check2, w3), (real2, w4) = results
    assert [r['changed'] for r, dummy in results] == [True, True, False, False]
    assert w1 == 0 and w2 > 0 and w3 == 0 and w4 == 0
    digest = real1['digest']
    assert check1['signature'] == {'digest': None, 'format': 'simplesigning', 'tag': sig_tag(digest)}
    assert real2['signature'] == check2['signature'] == real1['signature']
    assert check1['diff']['after']['signatures']['signatures'] == 1
    # The destination's signature verifies with the promotion key's public half.
    manifest = json.loads(registry.manifests[('prod/app', sig_tag(digest))][1])
    [layer] = manifest['layers']
    payload = registry.blobs[layer['digest']]
    verdict = Verifier(keys=[public_pem(PROMOTE_KEY)]).verify_simplesigning(digest, payload, layer['annotations'])
    assert verdict['verified'] is True
    text = json.dumps([r for r, dummy in results])
    assert PASSPHRASE not in text and 'PRIVATE KEY' not in text


def test_a_wrong_passphrase_fails_before_any_request(registry):
    source_image(registry)
    sign = {'key': private_pem(PROMOTE_KEY, passphrase=PASSPHRASE), 'passphrase': 'not it'}
    code, result = run_module(copy, copy_args(registry, sign=sign))
    assert code == 1 and 'passphrase' in result['msg'] and registry.requests == []
    assert 'not it' not in json.dumps(result)
