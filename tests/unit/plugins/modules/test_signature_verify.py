# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The signature_verify module end to end against the fake registry: a gate that fails readably."""

from __future__ import annotations

import json

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._signatures import sign_image
from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import Signer
from ansible_collections.imagelayers.registry.plugins.modules import signature_verify
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.sigstore import (
    FakeFulcio,
    FakeRekor,
    keyless_bundle,
    make_key,
    private_pem,
    public_pem,
)

KEY = make_key('p256')


def signed_image(registry, fmt='simplesigning', key=KEY):
    digest, dummy, dummy = registry.add_image('app', 'v1', [b'layer'])
    sign_image(client_for(registry), 'app', digest, '%s/app' % registry.host, Signer(private_pem(key)), fmt,
               RunContext())
    registry.requests.clear()
    return digest


def test_verifies_by_tag_and_returns_the_digest_and_every_signature(registry):
    digest = signed_image(registry)
    code, result = run_module(signature_verify, {'image': '%s/app:v1' % registry.host, 'keys': [public_pem(KEY)]})
    assert code == 0 and result['changed'] is False and result['verified'] is True
    assert result['digest'] == digest and result['image'] == '%s/app:v1' % registry.host
    [entry] = result['signatures']
    assert entry['format'] == 'simplesigning' and entry['found_in'] == 'tag' and entry['verified'] is True
    assert entry['key_fingerprint'].startswith('SHA256:') and entry['reason'] is None
    assert registry.repository('app').writes() == []
    # The .sig manifest is read once, under its tag (discovery), not again by digest to verify it.
    assert [r['path'] for r in registry.requests].count('/v2/app/manifests/%s' % entry['tag']) == 1
    assert not any(r['path'] == '/v2/app/manifests/%s' % entry['digest'] for r in registry.requests)


def test_a_wrong_key_fails_with_the_signatures_and_their_reasons(registry):
    digest = signed_image(registry)
    other = public_pem(make_key('p256'))
    code, result = run_module(signature_verify, {'image': '%s/app:v1' % registry.host, 'keys': [other]})
    assert code == 1 and result['failed'] is True
    assert result['msg'].startswith('No signature of %s/app@%s verifies; 1 found' % (registry.host, digest))
    assert 'no key verifies the signature' in result['msg']
    assert [e['verified'] for e in result['signatures']] == [False] and result['digest'] == digest
    assert 'Traceback' not in json.dumps(result)


def test_an_unsigned_image_fails(registry):
    registry.add_image('app', 'v1', [b'layer'])
    code, result = run_module(signature_verify, {'image': '%s/app:v1' % registry.host, 'keys': [public_pem(KEY)]})
    assert code == 1 and 'has no signature' in result['msg'] and result['signatures'] == []


def test_keyless_bundle_with_roots_and_rekor_key_from_files(registry, tmp_path):
    fulcio, rekor = FakeFulcio(), FakeRekor()
    registry.configure(referrers_api=True)
    digest = signed_image(registry, fmt='bundle')  # a key-based bundle the keyless policy must refuse
    bundle = keyless_bundle(fulcio, rekor, digest)
    media_type, data = registry.manifests[('app', digest)]
    raw = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                      'artifactType': 'application/vnd.dev.sigstore.bundle.v0.3+json',
                      'config': {'mediaType': 'application/vnd.oci.empty.v1+json',
                                 'digest': registry.add_blob(b'{}', 'app'), 'size': 2},
                      'layers': [{'mediaType': 'application/vnd.dev.sigstore.bundle.v0.3+json',
                                  'digest': registry.add_blob(bundle, 'app'), 'size': len(bundle)}],
                      'subject': {'mediaType': media_type, 'digest': digest, 'size': len(data)}}).encode()
    client_for(registry).put_manifest('app', 'bundle', raw, 'application/vnd.oci.image.manifest.v1+json')
    roots, rekor_key = tmp_path / 'roots.pem', tmp_path / 'rekor.pub'
    roots.write_text(fulcio.chain_pem)
    rekor_key.write_text(rekor.public_pem)
    options = {'image': '%s/app@%s' % (registry.host, digest), 'trusted_roots': str(roots),
               'rekor_public_key': str(rekor_key), 'certificate_identity_regexp': r'https://ci\.example\.com/.*',
               'certificate_oidc_issuer': 'https://issuer.example.com'}
    code, result = run_module(signature_verify, options)
    assert code == 0, result
    assert sorted((e['verified'], e['identity']) for e in result['signatures']) == [
        (False, None), (True, 'https://ci.example.com/release/app')]
    code, result = run_module(signature_verify, dict(options, certificate_oidc_issuer='https://other.example.com'))
    assert code == 1 and "the certificate issuer 'https://issuer.example.com' does not match" in result['msg']


def test_incomplete_keyless_options_fail_before_any_request(registry):
    code, result = run_module(signature_verify, {'image': '%s/app:v1' % registry.host,
                                                 'certificate_identity': 'https://ci.example.com/x'})
    assert code == 1 and 'Keyless verification needs' in result['msg'] and registry.requests == []


def test_identity_and_its_regexp_are_mutually_exclusive(registry):
    code, result = run_module(signature_verify, {'image': '%s/app:v1' % registry.host,
                                                 'certificate_identity': 'a', 'certificate_identity_regexp': 'b'})
    assert code == 1 and 'mutually exclusive' in result['msg']
