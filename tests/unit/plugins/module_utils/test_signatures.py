# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding, verifying and making signatures (_signatures) against the fake registry, requests counted."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import OCI_MANIFEST
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._signatures import (
    PAYLOAD_LIMIT,
    SignatureVerificationError,
    find_signatures,
    pem_or_file,
    sig_tag,
    sign_image,
    verifier_from_params,
    verify_gate,
    verify_image,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import (
    ANNOTATION_SIGNATURE,
    BUNDLE_V03,
    SIMPLESIGNING,
    Signer,
    Verifier,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for, digest_of
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.sigstore import (
    FakeFulcio,
    FakeRekor,
    keyless_bundle,
    keyless_options,
    keyless_simplesigning,
    make_key,
    private_pem,
    public_pem,
)

LAYER = b'layer bytes' * 100
KEY = make_key('p256')
OTHER = make_key('p256')


@pytest.fixture
def image(registry):
    """The repository 'app' with one image tagged v1: ``(digest, repository view)``."""
    digest, dummy, dummy = registry.add_image('app', 'v1', [LAYER])
    return digest, registry.repository('app')


def signer(key=KEY):
    return Signer(private_pem(key))


def sign(registry, digest, key=KEY, fmt='simplesigning', **ctx):
    return sign_image(client_for(registry), 'app', digest, '%s/app' % registry.host, signer(key), fmt,
                      RunContext(**ctx))


def sig_manifest(registry, digest):
    return json.loads(registry.manifests[('app', sig_tag(digest))][1])


def push_signature(registry, digest, payload, annotations, tag=None):
    """A simple signing manifest made outside the collection, under the .sig tag of ``digest``."""
    layer = {'mediaType': SIMPLESIGNING, 'digest': registry.add_blob(payload, 'app'), 'size': len(payload),
             'annotations': annotations}
    config = registry.add_blob(b'{}', 'app')
    raw = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'layers': [layer],
                      'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': config,
                                 'size': 2}}).encode()
    return registry.add_manifest('app', tag or sig_tag(digest), raw, OCI_MANIFEST)


# -- signing ---------------------------------------------------------------------
def test_sign_writes_a_cosign_simple_signing_layer_under_the_sig_tag(registry, image):
    digest, repo = image
    outcome = sign(registry, digest, diff_mode=True)
    result = outcome.to_result()
    manifest = sig_manifest(registry, digest)
    layer = manifest['layers'][0]
    payload = registry.blobs[layer['digest']]
    assert result['changed'] is True and result['digest'] == digest
    assert result['signature'] == {'digest': repo.tags[sig_tag(digest)], 'format': 'simplesigning',
                                   'tag': sig_tag(digest)}
    assert json.loads(payload)['critical']['image']['docker-manifest-digest'] == digest
    assert json.loads(payload)['critical']['identity']['docker-reference'] == '%s/app' % registry.host
    assert Verifier(keys=[public_pem(KEY)]).verify_simplesigning(digest, payload, layer['annotations'])['verified']
    assert manifest['config'] == {'mediaType': 'application/vnd.oci.empty.v1+json', 'size': 2,
                                  'digest': 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'}
    assert registry.blobs[manifest['config']['digest']] == b'{}'
    assert result['diff'] == {'before': {'signatures': 0, 'key_fingerprints': []},
                              'after': {'signatures': 1, 'key_fingerprints': [signer().key_fingerprint]}}


def test_sign_again_with_the_same_key_reads_two_documents_and_writes_nothing(registry, image):
    digest, repo = image
    first = sign(registry, digest).to_result()
    registry.requests.clear()
    again = sign(registry, digest, diff_mode=True).to_result()
    assert again['changed'] is False and again['signature'] == first['signature']
    assert again['diff']['before'] == again['diff']['after']
    assert repo.log == ['GET /v2/app/manifests/%s' % sig_tag(digest),
                        'GET /v2/app/blobs/%s' % sig_manifest(registry, digest)['layers'][0]['digest']]


def test_a_second_key_appends_its_layer_and_keeps_the_first(registry, image):
    digest, dummy = image
    sign(registry, digest)
    first_layer = sig_manifest(registry, digest)['layers'][0]
    result = sign(registry, digest, key=OTHER, diff_mode=True).to_result()
    layers = sig_manifest(registry, digest)['layers']
    assert result['changed'] is True and len(layers) == 2 and layers[0] == first_layer
    assert result['diff']['before']['signatures'] == 1 and result['diff']['after']['signatures'] == 2
    entries = find_signatures(client_for(registry), 'app', digest, Verifier(keys=[public_pem(OTHER)]))
    assert [e['verified'] for e in entries] == [False, True]


def test_check_mode_writes_nothing_and_does_not_know_the_signature_digest(registry, image):
    digest, repo = image
    result = sign(registry, digest, check_mode=True, diff_mode=True).to_result()
    assert result['changed'] is True and result['signature']['digest'] is None
    assert result['diff']['after']['signatures'] == 1
    assert repo.writes() == [] and sig_tag(digest) not in repo.tags


def test_signing_with_a_payload_blob_already_there_uploads_only_what_is_missing(registry, image):
    digest, repo = image
    sign(registry, digest)
    registry.requests.clear()
    sign(registry, digest, key=OTHER)
    # The payload (same reference, same digest) and the empty config are there: no upload, one manifest PUT.
    assert repo.writes() == ['PUT /v2/app/manifests/%s' % sig_tag(digest)]


def test_a_first_signature_uploads_the_payload_and_once_per_repository_the_empty_config(registry, image):
    digest, repo = image
    sign(registry, digest)
    assert [line for line in repo.writes() if line.startswith('POST')] == ['POST /v2/app/blobs/uploads/'] * 2
    other = registry.add_image('app', 'v2', [b'another layer'])[0]
    registry.requests.clear()
    sign(registry, other)
    assert [line for line in repo.writes() if line.startswith('POST')] == ['POST /v2/app/blobs/uploads/']
    assert repo.writes()[-1] == 'PUT /v2/app/manifests/%s' % sig_tag(other)


def test_sign_refuses_to_replace_an_index_under_the_sig_tag(registry, image):
    digest, repo = image
    registry.add_manifest('app', sig_tag(digest), json.dumps(
        {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': []}).encode(),
        'application/vnd.oci.image.index.v1+json')
    with pytest.raises(IntegrityError) as failure:
        sign(registry, digest)
    assert 'refusing to replace it' in str(failure.value) and repo.writes() == []


@pytest.mark.parametrize('api', [False, True])
def test_bundle_is_a_referrer_found_through_the_api_or_the_fallback_index(registry, image, api):
    digest, repo = image
    registry.configure(referrers_api=api)
    result = sign(registry, digest, fmt='bundle').to_result()
    written = repo.manifests[result['signature']['digest']][1]
    document = json.loads(written)
    assert result['changed'] is True and 'tag' not in result['signature']
    assert document['artifactType'] == BUNDLE_V03 and document['subject']['digest'] == digest
    assert document['config']['mediaType'] == 'application/vnd.oci.empty.v1+json'
    assert (digest.replace(':', '-') in repo.tags) is (not api)  # the fallback index only without the API
    entries = find_signatures(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert [(e['format'], e['found_in'], e['verified']) for e in entries] == [
        ('bundle', 'api' if api else 'fallback', True)]
    registry.requests.clear()
    again = sign(registry, digest, fmt='bundle', diff_mode=True).to_result()
    assert again['changed'] is False and again['signature']['digest'] == result['signature']['digest']
    assert again['diff']['before'] == again['diff']['after'] and repo.writes() == []


def test_sign_rejects_an_unknown_format(registry, image):
    with pytest.raises(InvalidInputError):
        sign(registry, image[0], fmt='gpg')


# -- the gate --------------------------------------------------------------------
def test_gate_passes_on_one_key_signature_in_two_requests(registry, image):
    digest, repo = image
    sign(registry, digest)
    registry.requests.clear()
    entries = verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert len(repo.log) <= 3 and repo.writes() == []
    assert [(e['format'], e['found_in'], e['tag'], e['verified']) for e in entries] == [
        ('simplesigning', 'tag', sig_tag(digest), True)]
    assert entries[0]['key_fingerprint'] == signer().key_fingerprint


def test_gate_stops_at_the_first_layer_that_verifies(registry, image):
    digest, repo = image
    sign(registry, digest)
    sign(registry, digest, key=OTHER)
    registry.requests.clear()
    entries = verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert len(entries) == 1 and len(repo.log) == 2


def test_gate_refuses_an_unsigned_image(registry, image):
    digest, repo = image
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert 'has no signature' in failure.value.msg and 'Nothing was written' in failure.value.msg
    assert failure.value.to_result()['signatures'] == [] and repo.writes() == []


def test_gate_refuses_a_signature_by_another_key(registry, image):
    digest, dummy = image
    sign(registry, digest, key=OTHER)
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert 'No signature of' in failure.value.msg and 'no key verifies the signature' in failure.value.msg
    assert [e['verified'] for e in failure.value.details['signatures']] == [False]


def test_gate_refuses_a_payload_for_another_digest(registry, image):
    digest, dummy = image
    other, dummy, dummy = registry.add_image('app', 'v2', [b'other'])
    payload, annotations = signer().simplesigning('%s/app' % registry.host, other)
    push_signature(registry, digest, payload, annotations)
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert 'the payload is for %s, not %s' % (other, digest) in failure.value.msg


def test_gate_refuses_a_tampered_payload_and_a_tampered_annotation(registry, image):
    digest, dummy = image
    payload, annotations = signer().simplesigning('%s/app' % registry.host, digest)
    push_signature(registry, digest, payload.replace(b'"optional":null', b'"optional":{"a":"b"}'), annotations)
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert 'no key verifies the signature' in failure.value.msg
    signature = bytearray(base64.b64decode(annotations[ANNOTATION_SIGNATURE]))
    signature[-1] ^= 1
    push_signature(registry, digest, payload, {ANNOTATION_SIGNATURE: base64.b64encode(bytes(signature)).decode()})
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert 'no key verifies the signature' in failure.value.msg


def test_payload_bytes_that_do_not_match_their_digest_are_refused(registry, image):
    digest, dummy = image
    payload, annotations = signer().simplesigning('%s/app' % registry.host, digest)
    push_signature(registry, digest, payload, annotations)
    registry.blobs[digest_of(payload)] = payload.replace(b'cosign', b'COSIGN')  # the registry serves other bytes
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert 'The signature payload %s in app does not match its digest' % digest_of(payload) in failure.value.msg


def test_an_oversized_payload_is_not_downloaded(registry, image):
    digest, repo = image
    layer = {'mediaType': SIMPLESIGNING, 'digest': digest_of(b'x'), 'size': PAYLOAD_LIMIT + 1,
             'annotations': {ANNOTATION_SIGNATURE: 'AAAA'}}
    raw = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'layers': [layer],
                      'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                                 'digest': digest_of(b'{}'), 'size': 2}}).encode()
    registry.add_manifest('app', sig_tag(digest), raw, OCI_MANIFEST)
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert 'more than the %d bytes a signature may take' % PAYLOAD_LIMIT in failure.value.msg
    assert not [line for line in repo.log if '/blobs/' in line]


def test_gate_falls_back_to_a_bundle_referrer(registry, image):
    digest, dummy = image
    registry.configure(referrers_api=True)
    sign(registry, digest, fmt='bundle')
    entries = verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]))
    assert [(e['format'], e['found_in'], e['verified']) for e in entries] == [('bundle', 'api', True)]


def test_gate_requires_the_artifact_types_asked_for(registry, image):
    digest, repo = image
    registry.configure(referrers_api=True)
    sign(registry, digest)
    with pytest.raises(SignatureVerificationError) as failure:
        verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]),
                    require_artifact_types=['application/spdx+json'])
    assert 'A signature of' in failure.value.msg and 'no referrer of type application/spdx+json' in failure.value.msg
    assert failure.value.details['missing_artifact_types'] == ['application/spdx+json']
    sign(registry, digest, fmt='bundle')
    entries = verify_gate(client_for(registry), 'app', digest, Verifier(keys=[public_pem(KEY)]),
                          require_artifact_types=[BUNDLE_V03])
    assert entries[0]['verified']


# -- keyless -----------------------------------------------------------------------
@pytest.fixture(scope='module')
def sigstore():
    return FakeFulcio(), FakeRekor()


def test_keyless_simple_signing_and_bundle_are_both_listed(registry, image, sigstore):
    digest, dummy = image
    fulcio, rekor = sigstore
    payload, annotations = keyless_simplesigning(fulcio, rekor, digest)
    push_signature(registry, digest, payload, annotations)
    registry.configure(referrers_api=True)
    bundle = keyless_bundle(fulcio, rekor, digest)
    _push_bundle(registry, digest, bundle)
    # A bundle carries the leaf only: the intermediate comes from the trusted roots, as with cosign 3.
    verifier = Verifier(keyless=keyless_options(fulcio, rekor, trusted_roots=fulcio.chain_pem))
    entries = find_signatures(client_for(registry), 'app', digest, verifier)
    assert sorted((e['format'], e['found_in'], e['verified'], e['identity'], e['issuer']) for e in entries) == [
        ('bundle', 'api', True, 'https://ci.example.com/release/app', 'https://issuer.example.com'),
        ('simplesigning', 'tag', True, 'https://ci.example.com/release/app', 'https://issuer.example.com')]


def test_keyless_identity_mismatch_is_refused_with_its_reason(registry, image, sigstore):
    digest, dummy = image
    fulcio, rekor = sigstore
    payload, annotations = keyless_simplesigning(fulcio, rekor, digest)
    push_signature(registry, digest, payload, annotations)
    verifier = Verifier(keyless=keyless_options(fulcio, rekor, certificate_identity='https://ci.example.com/other'))
    with pytest.raises(SignatureVerificationError) as failure:
        verify_image(client_for(registry), ImageReference.parse('%s/app:v1' % registry.host), verifier)
    assert 'does not match' in failure.value.msg


def _push_bundle(registry, digest, bundle):
    media_type, data = registry.manifests[('app', digest)]
    layer = {'mediaType': BUNDLE_V03, 'digest': registry.add_blob(bundle, 'app'), 'size': len(bundle)}
    raw = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'artifactType': BUNDLE_V03,
                      'config': {'mediaType': 'application/vnd.oci.empty.v1+json',
                                 'digest': registry.add_blob(b'{}', 'app'), 'size': 2},
                      'layers': [layer],
                      'subject': {'mediaType': media_type, 'digest': digest, 'size': len(data)}}).encode()
    client_for(registry).put_manifest('app', digest_of(raw), raw, OCI_MANIFEST)


# -- options ---------------------------------------------------------------------------
def test_verifier_options_name_what_keyless_misses(sigstore):
    with pytest.raises(InvalidInputError) as failure:
        verifier_from_params({'certificate_identity': 'x'})
    assert 'certificate_oidc_issuer or certificate_oidc_issuer_regexp' in failure.value.msg
    assert 'trusted_roots' in failure.value.msg and 'rekor_public_key' in failure.value.msg
    with pytest.raises(InvalidInputError) as failure:
        verifier_from_params({})
    assert 'Give keys' in failure.value.msg


def test_roots_and_rekor_key_may_be_files(tmp_path, sigstore):
    fulcio, rekor = sigstore
    roots = tmp_path / 'roots.pem'
    roots.write_text(fulcio.root_pem)
    assert pem_or_file(str(roots), 'trusted_roots') == fulcio.root_pem
    assert pem_or_file(rekor.public_pem, 'rekor_public_key') == rekor.public_pem
    with pytest.raises(InvalidInputError) as failure:
        pem_or_file(str(tmp_path / 'missing.pem'), 'trusted_roots')
    assert 'trusted_roots is neither PEM text nor a readable file' in failure.value.msg
    verifier = verifier_from_params(dict(keyless_options(fulcio, rekor), trusted_roots=str(roots)))
    assert verifier.keyless is not None
