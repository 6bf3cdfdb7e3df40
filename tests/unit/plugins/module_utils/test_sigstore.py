# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cosign formats and their cryptography: round trips, every refusal the issue lists, and openssl both ways."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ansible_collections.imagelayers.registry.plugins.module_utils import _keys, _sigstore
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError, RegistryError
from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    BUNDLE_V03,
    MissingLibraryError,
    Signer,
    Verifier,
    key_fingerprint,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.sigstore import (
    COSIGN_EMPTY_KEY,
    COSIGN_EMPTY_KEY_PUBLIC,
    COSIGN_KEY,
    COSIGN_KEY_PASSPHRASE,
    COSIGN_KEY_PUBLIC,
    EPOCH,
    IDENTITY,
    ISSUER,
    KEY_KINDS,
    FakeFulcio,
    FakeRekor,
    cosign_encrypt,
    keyless_bundle,
    keyless_options,
    keyless_simplesigning,
    make_key,
    private_pem,
    public_pem,
    signed_at,
)

DIGEST = 'sha256:' + hashlib.sha256(b'the image manifest').hexdigest()
OTHER = 'sha256:' + hashlib.sha256(b'another manifest').hexdigest()
REFERENCE = 'registry.example.com/app'


@pytest.fixture(scope='module')
def keys():
    return {kind: make_key(kind) for kind in KEY_KINDS}


@pytest.fixture(scope='module')
def fulcio():
    return FakeFulcio()


@pytest.fixture(scope='module')
def rekor():
    return FakeRekor()


def signer_for(key):
    return Signer(private_pem(key))


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize('kind', KEY_KINDS)
def test_simplesigning_round_trip_for_each_key_type(keys, kind):
    signer = signer_for(keys[kind])
    payload, annotations = signer.simplesigning(REFERENCE, DIGEST)
    other = make_key('p256')
    result = Verifier(keys=[public_pem(other), signer.public_pem]).verify_simplesigning(DIGEST, payload, annotations)
    assert result == {'verified': True, 'reason': None, 'key_fingerprint': signer.key_fingerprint,
                      'identity': None, 'issuer': None}
    document = json.loads(payload)
    assert document['critical'] == {'identity': {'docker-reference': REFERENCE},
                                    'image': {'docker-manifest-digest': DIGEST},
                                    'type': 'cosign container image signature'}
    assert document['optional'] is None


def test_fingerprint_is_sha256_of_the_spki_and_ignores_pem_wrapping(keys):
    pem = public_pem(keys['p256'])
    der = base64.b64decode(''.join(pem.splitlines()[1:-1]))
    expected = 'SHA256:' + hashlib.sha256(der).hexdigest()
    assert key_fingerprint(pem) == expected
    assert key_fingerprint('\n' + pem.replace('\n', '\r\n') + '\n') == expected
    assert signer_for(keys['p256']).key_fingerprint == expected


def test_wrong_key_is_refused(keys):
    payload, annotations = signer_for(keys['p256']).simplesigning(REFERENCE, DIGEST)
    result = Verifier(keys=[public_pem(keys['p384']), public_pem(keys['rsa'])]).verify_simplesigning(
        DIGEST, payload, annotations)
    assert result['verified'] is False
    assert result['reason'] == 'no key verifies the signature'
    assert result['key_fingerprint'] is None


def test_payload_for_another_digest_names_both(keys):
    signer = signer_for(keys['p256'])
    payload, annotations = signer.simplesigning(REFERENCE, OTHER)
    result = Verifier(keys=[signer.public_pem]).verify_simplesigning(DIGEST, payload, annotations)
    assert result['verified'] is False
    assert result['reason'] == 'the payload is for %s, not %s' % (OTHER, DIGEST)


def test_tampered_payload_and_annotation_are_refused(keys):
    signer = signer_for(keys['ed25519'])
    payload, annotations = signer.simplesigning(REFERENCE, DIGEST)
    verifier = Verifier(keys=[signer.public_pem])
    tampered = payload.replace(REFERENCE.encode(), b'evil.example.com/app')
    assert verifier.verify_simplesigning(DIGEST, tampered, annotations)['reason'] == 'no key verifies the signature'
    signature = bytearray(base64.b64decode(annotations[ANNOTATION_SIGNATURE]))
    signature[10] ^= 1
    bad = {ANNOTATION_SIGNATURE: base64.b64encode(bytes(signature)).decode()}
    assert verifier.verify_simplesigning(DIGEST, payload, bad)['reason'] == 'no key verifies the signature'
    garbled = verifier.verify_simplesigning(DIGEST, payload, {ANNOTATION_SIGNATURE: 'not base64!'})
    assert garbled['verified'] is False and 'not valid base64' in garbled['reason']
    assert verifier.verify_simplesigning(DIGEST, payload, {})['reason'] == \
        'the layer has no signature annotation (dev.cosignproject.cosign/signature)'


@pytest.mark.parametrize('payload', [
    b'not json', b'[]', b'{"critical": {"image": {}}}', b'{"critical": {"type": "other"}}',
    b'[' * 5000 + b']' * 5000, b'{"a":' * 40 + b'1' + b'}' * 40, b'\xff\xfe',
])
def test_malformed_payload_is_a_reason_not_a_traceback(keys, payload):
    signer = signer_for(keys['p256'])
    annotations = {ANNOTATION_SIGNATURE: base64.b64encode(b'x' * 64).decode()}
    result = Verifier(keys=[signer.public_pem]).verify_simplesigning(DIGEST, payload, annotations)
    assert result['verified'] is False
    assert result['reason'].startswith('the payload ')


def test_ecdsa_p384_signature_with_sha384_verifies(keys):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    payload, _annotations = signer_for(keys['p384']).simplesigning(REFERENCE, DIGEST)
    signature = keys['p384'].sign(payload, ec.ECDSA(hashes.SHA384()))
    result = Verifier(keys=[public_pem(keys['p384'])]).verify_simplesigning(
        DIGEST, payload, {ANNOTATION_SIGNATURE: base64.b64encode(signature).decode()})
    assert result['verified'] is True


def test_rsa_pss_signature_verifies(keys):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    payload, _annotations = signer_for(keys['rsa']).simplesigning(REFERENCE, DIGEST)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = keys['rsa'].sign(payload, pss, hashes.SHA256())
    result = Verifier(keys=[public_pem(keys['rsa'])]).verify_simplesigning(
        DIGEST, payload, {ANNOTATION_SIGNATURE: base64.b64encode(signature).decode()})
    assert result['verified'] is True


def test_bad_public_key_names_its_index(keys):
    with pytest.raises(InvalidInputError, match=r'keys\[1\] is not a valid PEM public key'):
        Verifier(keys=[public_pem(keys['p256']), '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'])
    with pytest.raises(InvalidInputError, match=r'keys\[0\] is not a PEM public key'):
        Verifier(keys=[private_pem(keys['p256'])])
    with pytest.raises(InvalidInputError, match='needs keys, or the keyless options'):
        Verifier()


# --- private keys ---------------------------------------------------------------------------


@pytest.mark.parametrize('kind', ['p256', 'rsa'])
def test_traditional_pem_keys_sign(keys, kind):
    signer = Signer(private_pem(keys[kind], traditional=True))
    assert signer.key_fingerprint == key_fingerprint(public_pem(keys[kind]))


def test_encrypted_pkcs8_right_and_wrong_passphrase(keys):
    pem = private_pem(keys['p256'], passphrase='correct horse')
    assert 'ENCRYPTED PRIVATE KEY' in pem
    assert Signer(pem, 'correct horse').public_pem == public_pem(keys['p256'])
    with pytest.raises(InvalidInputError) as excinfo:
        Signer(pem, 'battery staple')
    assert excinfo.value.msg == 'the passphrase does not decrypt key'
    with pytest.raises(InvalidInputError, match='passphrase is required'):
        Signer(pem)


def test_plain_key_ignores_a_passphrase(keys):
    assert Signer(private_pem(keys['ed25519']), 'unused').public_pem == public_pem(keys['ed25519'])


def test_real_cosign_key_right_and_wrong_passphrase():
    signer = Signer(COSIGN_KEY, COSIGN_KEY_PASSPHRASE)
    assert signer.public_pem == COSIGN_KEY_PUBLIC
    payload, annotations = signer.simplesigning(REFERENCE, DIGEST)
    assert Verifier(keys=[COSIGN_KEY_PUBLIC]).verify_simplesigning(DIGEST, payload, annotations)['verified']
    with pytest.raises(InvalidInputError) as excinfo:
        Signer(COSIGN_KEY, '1234')
    assert str(excinfo.value) == 'the passphrase does not decrypt key'


def test_real_cosign_key_with_empty_password():
    assert Signer(COSIGN_EMPTY_KEY).public_pem == COSIGN_EMPTY_KEY_PUBLIC


@pytest.mark.parametrize('label', ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY'])
def test_self_made_cosign_key(keys, label):
    pem = cosign_encrypt(keys['p384'], 's3cret', label=label)
    assert Signer(pem, 's3cret').public_pem == public_pem(keys['p384'])
    with pytest.raises(InvalidInputError) as excinfo:
        Signer(pem, 'wrong')
    assert 's3cret' not in excinfo.value.msg and 'PRIVATE' not in excinfo.value.msg


def test_cosign_key_with_absurd_scrypt_parameters_is_refused(keys):
    pem = cosign_encrypt(keys['p256'], 'x')
    body = ''.join(pem.splitlines()[1:-1])
    document = json.loads(base64.b64decode(body))
    document['kdf']['params']['N'] = 2 ** 30
    forged = base64.b64encode(json.dumps(document).encode()).decode()
    with pytest.raises(InvalidInputError, match='scrypt parameters out of range'):
        Signer('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n%s\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n'
               % forged, 'x')


def test_not_a_key_is_refused():
    with pytest.raises(InvalidInputError, match='not a PEM private key'):
        Signer('hello')
    with pytest.raises(InvalidInputError, match='not a valid PEM private key'):
        Signer('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')


def test_missing_libraries_raise_a_registry_error(monkeypatch, keys):
    monkeypatch.setattr(_keys, 'HAS_NACL', False)
    with pytest.raises(MissingLibraryError) as excinfo:
        Signer(cosign_encrypt(keys['p256'], 'x'), 'x')
    assert isinstance(excinfo.value, RegistryError)
    assert (excinfo.value.library, excinfo.value.reason) == ('PyNaCl', 'use a cosign encrypted private key')
    monkeypatch.setattr(_keys, 'HAS_CRYPTOGRAPHY', False)
    for call in (lambda: Verifier(keys=[public_pem(keys['p256'])]), lambda: Signer(private_pem(keys['p256'])),
                 lambda: key_fingerprint(public_pem(keys['p256']))):
        with pytest.raises(MissingLibraryError) as excinfo:
            call()
        assert excinfo.value.library == 'cryptography'
    assert _sigstore.HAS_CRYPTOGRAPHY is True and _sigstore.CRYPTOGRAPHY_IMPORT_ERROR is None


_WITHOUT_LIBRARIES = '''
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('cryptography', 'nacl'):
            raise ImportError('not installed: ' + name)
sys.meta_path.insert(0, Block())
from ansible_collections.imagelayers.registry.plugins.module_utils import _sigstore
assert not _sigstore.HAS_CRYPTOGRAPHY and not _sigstore.HAS_NACL
assert 'not installed: cryptography' in _sigstore.CRYPTOGRAPHY_IMPORT_ERROR
assert 'not installed: nacl' in _sigstore.NACL_IMPORT_ERROR
try:
    _sigstore.Verifier(keys=['-----BEGIN PUBLIC KEY-----'])
except _sigstore.MissingLibraryError as error:
    print(error.library, error.reason)
'''


def test_module_imports_without_the_libraries():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, '-c', _WITHOUT_LIBRARIES], env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == 'cryptography verify signatures'


# --- openssl both ways ----------------------------------------------------------------------


@pytest.mark.parametrize('kind', ['p256', 'rsa'])
def test_openssl_verifies_what_signer_makes(tmp_path, keys, kind):
    signer = signer_for(keys[kind])
    payload, annotations = signer.simplesigning(REFERENCE, DIGEST)
    (tmp_path / 'payload.json').write_bytes(payload)
    (tmp_path / 'sig.bin').write_bytes(base64.b64decode(annotations[ANNOTATION_SIGNATURE]))
    (tmp_path / 'pub.pem').write_text(signer.public_pem)
    done = subprocess.run(['openssl', 'dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'sig.bin',
                           'payload.json'], cwd=tmp_path, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert b'Verified OK' in done.stdout


def test_verifier_accepts_an_openssl_signature(tmp_path):
    subprocess.run(['openssl', 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'key.pem'],
                   cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(['openssl', 'pkey', '-in', 'key.pem', '-pubout', '-out', 'pub.pem'],
                   cwd=tmp_path, check=True, capture_output=True)
    payload = _sigstore.simplesigning_payload(REFERENCE, DIGEST)
    (tmp_path / 'payload.json').write_bytes(payload)
    subprocess.run(['openssl', 'dgst', '-sha256', '-sign', 'key.pem', '-out', 'sig.bin', 'payload.json'],
                   cwd=tmp_path, check=True, capture_output=True)
    annotations = {ANNOTATION_SIGNATURE: base64.b64encode((tmp_path / 'sig.bin').read_bytes()).decode()}
    verifier = Verifier(keys=[(tmp_path / 'pub.pem').read_text()])
    assert verifier.verify_simplesigning(DIGEST, payload, annotations)['verified'] is True
    assert verifier.verify_simplesigning(DIGEST, payload + b' ', annotations)['verified'] is False


# --- keyless --------------------------------------------------------------------------------


def test_keyless_round_trip(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result == {'verified': True, 'reason': None, 'key_fingerprint': None,
                      'identity': IDENTITY, 'issuer': ISSUER}


def test_keyless_identity_regexp_and_email(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST, identity='release@ci.example.com')
    options = keyless_options(fulcio, rekor, certificate_identity=None,
                              certificate_identity_regexp=r'.*@ci\.example\.com',
                              certificate_oidc_issuer=None, certificate_oidc_issuer_regexp=r'https://issuer\..*')
    result = Verifier(keyless=options).verify_simplesigning(DIGEST, payload, annotations)
    assert result['verified'] is True
    assert result['identity'] == 'release@ci.example.com'


def test_keyless_identity_mismatch_exact_and_regexp(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST, identity='https://ci.example.com/dev/app')
    exact = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert exact['verified'] is False
    assert exact['reason'] == ("the certificate identity https://ci.example.com/dev/app does not match %r"
                               % IDENTITY)
    # fullmatch: a pattern that matches only a prefix does not pass.
    options = keyless_options(fulcio, rekor, certificate_identity=None,
                              certificate_identity_regexp=r'https://ci\.example\.com/dev')
    regexp = Verifier(keyless=options).verify_simplesigning(DIGEST, payload, annotations)
    assert regexp['verified'] is False
    assert "does not match the pattern 'https://ci\\\\.example\\\\.com/dev'" in regexp['reason']


@pytest.mark.parametrize('oid', ['v1', 'v2'])
def test_keyless_issuer_from_both_oids_and_mismatch(fulcio, rekor, oid):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST, oid=oid)
    good = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert good['verified'] is True and good['issuer'] == ISSUER
    other = keyless_options(fulcio, rekor, certificate_oidc_issuer='https://token.actions.githubusercontent.com')
    bad = Verifier(keyless=other).verify_simplesigning(DIGEST, payload, annotations)
    assert bad['verified'] is False
    assert bad['reason'] == ("the certificate issuer %r does not match 'https://token.actions.githubusercontent.com'"
                             % ISSUER)


def test_keyless_expired_certificate(fulcio, rekor):
    late = signed_at(minutes=11)  # the leaf is valid for 10 minutes from EPOCH
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST, integrated_time=late)
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['verified'] is False
    assert result['reason'].startswith('the certificate expired before the signing time 2026-01-15T12:11:00')


def test_keyless_untrusted_root(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    stranger = FakeFulcio(name='stranger')
    options = keyless_options(fulcio, rekor, trusted_roots=stranger.root_pem)
    result = Verifier(keyless=options).verify_simplesigning(DIGEST, payload, annotations)
    assert result == {'verified': False, 'reason': 'the certificate does not chain to trusted_roots',
                      'key_fingerprint': None, 'identity': None, 'issuer': None}
    # A chain annotation from another CA does not help either.
    annotations[ANNOTATION_CHAIN] = stranger.chain_pem
    assert Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(
        DIGEST, payload, annotations)['reason'] == 'the certificate does not chain to trusted_roots'


def test_keyless_issuer_in_the_chain_must_be_a_ca(rekor):
    rogue = FakeFulcio(name='rogue', intermediate_ca=False)
    payload, annotations = keyless_simplesigning(rogue, rekor, DIGEST)
    result = Verifier(keyless=keyless_options(rogue, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['reason'] == 'the certificate does not chain to trusted_roots'


def test_keyless_set_logging_another_certificate_is_refused(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    _payload, other = keyless_simplesigning(fulcio, rekor, DIGEST)
    leaf = x509.load_pem_x509_certificate(other[ANNOTATION_CERTIFICATE].encode())
    signature = base64.b64decode(annotations[ANNOTATION_SIGNATURE])
    body = rekor.hashedrekord(hashlib.sha256(payload).hexdigest(), signature, leaf)
    annotations[ANNOTATION_BUNDLE] = rekor.annotation(body, signed_at())
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['reason'] == 'the Rekor entry names another certificate'


def test_keyless_chain_must_be_valid_at_the_signing_time(fulcio, rekor):
    early = EPOCH - datetime.timedelta(days=400)  # before the fake Fulcio CAs were valid
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST, not_before=early,
                                                 integrated_time=int(early.timestamp()) + 60)
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['reason'] == 'the certificate chain was not valid at the signing time 2024-12-11T12:01:00+00:00'


def test_certificate_signature_fallback_for_old_cryptography(fulcio):
    leaf = fulcio.issue(make_key('p256').public_key())
    _keys.verify_certificate_signature(leaf, fulcio.intermediate.public_key())
    _keys.verify_certificate_signature(fulcio.intermediate, fulcio.root.public_key())
    with pytest.raises(InvalidSignature):
        _keys.verify_certificate_signature(leaf, fulcio.root.public_key())


def test_keyless_leaf_must_be_for_code_signing(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST, code_signing=False)
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['reason'] == 'the certificate is not for code signing (no codeSigning extended key usage)'


def test_keyless_missing_and_tampered_set(fulcio, rekor):
    verifier = Verifier(keyless=keyless_options(fulcio, rekor))
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST, with_set=False)
    assert verifier.verify_simplesigning(DIGEST, payload, annotations)['reason'] == \
        'no Rekor SET (dev.sigstore.cosign/bundle)'
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    bundle = json.loads(annotations[ANNOTATION_BUNDLE])
    bundle['Payload']['integratedTime'] += 1
    annotations[ANNOTATION_BUNDLE] = json.dumps(bundle)
    assert verifier.verify_simplesigning(DIGEST, payload, annotations)['reason'] == 'the Rekor SET does not verify'


def test_keyless_set_from_another_rekor_does_not_verify(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, FakeRekor(), DIGEST)
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['reason'] == 'the Rekor SET does not verify'


def test_keyless_set_for_another_signature_is_refused(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    _other_payload, other = keyless_simplesigning(fulcio, rekor, DIGEST, reference='registry.example.com/other')
    annotations[ANNOTATION_BUNDLE] = other[ANNOTATION_BUNDLE]
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['verified'] is False
    assert result['reason'].startswith('the Rekor entry is for another artifact')


def test_keyless_tampered_certificate_annotation(fulcio, rekor):
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    _payload, other = keyless_simplesigning(fulcio, rekor, DIGEST)
    annotations[ANNOTATION_CERTIFICATE] = other[ANNOTATION_CERTIFICATE]
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['reason'] == "the certificate's key does not verify the signature"
    del annotations[ANNOTATION_CERTIFICATE]
    result = Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(DIGEST, payload, annotations)
    assert result['reason'] == 'the signature has no certificate (dev.sigstore.cosign/certificate)'


def test_keyless_options_are_checked(fulcio, rekor):
    with pytest.raises(InvalidInputError, match='exactly one of certificate_identity'):
        Verifier(keyless=keyless_options(fulcio, rekor, certificate_identity=None))
    with pytest.raises(InvalidInputError, match='exactly one of certificate_oidc_issuer'):
        Verifier(keyless=keyless_options(fulcio, rekor, certificate_oidc_issuer_regexp='x'))
    with pytest.raises(InvalidInputError, match='not a valid regular expression'):
        Verifier(keyless=keyless_options(fulcio, rekor, certificate_identity=None, certificate_identity_regexp='('))
    with pytest.raises(InvalidInputError, match='needs trusted_roots'):
        Verifier(keyless=keyless_options(fulcio, rekor, trusted_roots='no certificate here'))
    with pytest.raises(InvalidInputError, match='rekor_public_key is not a PEM public key'):
        Verifier(keyless=keyless_options(fulcio, rekor, rekor_public_key=None))


def test_keys_and_keyless_together(keys, fulcio, rekor):
    verifier = Verifier(keys=[public_pem(keys['p256'])], keyless=keyless_options(fulcio, rekor))
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    assert verifier.verify_simplesigning(DIGEST, payload, annotations)['identity'] == IDENTITY
    payload, annotations = signer_for(keys['p256']).simplesigning(REFERENCE, DIGEST)
    assert verifier.verify_simplesigning(DIGEST, payload, annotations)['key_fingerprint'] is not None


# --- bundles --------------------------------------------------------------------------------


@pytest.mark.parametrize('kind', KEY_KINDS)
def test_bundle_round_trip_with_a_key(keys, kind):
    signer = signer_for(keys[kind])
    bundle = signer.bundle(DIGEST, 527, 'application/vnd.oci.image.manifest.v1+json')
    document = json.loads(bundle)
    assert document['mediaType'] == BUNDLE_V03
    assert document['verificationMaterial']['publicKey'] == {'hint': signer.key_fingerprint}
    statement = json.loads(base64.b64decode(document['dsseEnvelope']['payload']))
    assert statement['subject'][0]['digest'] == {'sha256': DIGEST.split(':')[1]}
    assert statement['predicateType'] == 'https://sigstore.dev/cosign/sign/v1'
    verifier = Verifier(keys=[signer.public_pem])
    assert verifier.verify_bundle(DIGEST, bundle)['key_fingerprint'] == signer.key_fingerprint
    assert verifier.verify_bundle(OTHER, bundle)['reason'] == 'the in-toto statement is for %s, not %s' % (DIGEST, OTHER)
    wrong = Verifier(keys=[public_pem(make_key(kind))]).verify_bundle(DIGEST, bundle)
    assert wrong['reason'] == 'no key verifies the signature'


def test_bundle_with_two_dsse_signatures_is_refused(keys):
    signer = signer_for(keys['p256'])
    document = json.loads(signer.bundle(DIGEST, 527, 'application/vnd.oci.image.manifest.v1+json'))
    document['dsseEnvelope']['signatures'] *= 2
    result = Verifier(keys=[signer.public_pem]).verify_bundle(DIGEST, json.dumps(document).encode())
    assert result['reason'] == 'the DSSE envelope has 2 signatures: exactly one is expected'


def test_bundle_tampered_statement_is_refused(keys):
    signer = signer_for(keys['p256'])
    document = json.loads(signer.bundle(DIGEST, 527, 'application/vnd.oci.image.manifest.v1+json'))
    statement = json.loads(base64.b64decode(document['dsseEnvelope']['payload']))
    statement['predicate'] = {'evil': True}
    document['dsseEnvelope']['payload'] = base64.b64encode(json.dumps(statement).encode()).decode()
    result = Verifier(keys=[signer.public_pem]).verify_bundle(DIGEST, json.dumps(document).encode())
    assert result['reason'] == 'no key verifies the signature'


@pytest.mark.parametrize('content', ['dsse', 'message'])
def test_keyless_bundle_round_trip(fulcio, rekor, content):
    bundle = keyless_bundle(fulcio, rekor, DIGEST, content=content)
    options = keyless_options(fulcio, rekor, trusted_roots=fulcio.chain_pem)
    result = Verifier(keyless=options).verify_bundle(DIGEST, bundle)
    assert result == {'verified': True, 'reason': None, 'key_fingerprint': None, 'identity': IDENTITY,
                      'issuer': ISSUER}


def test_keyless_bundle_refusals(fulcio, rekor):
    options = keyless_options(fulcio, rekor, trusted_roots=fulcio.chain_pem)
    message = keyless_bundle(fulcio, rekor, DIGEST, content='message')
    assert Verifier(keyless=options).verify_bundle(OTHER, message)['reason'].startswith(
        'the message signature is for SHA2_256:%s' % DIGEST.split(':')[1])
    expired = keyless_bundle(fulcio, rekor, DIGEST, integrated_time=signed_at(minutes=30))
    assert 'expired before the signing time' in Verifier(keyless=options).verify_bundle(DIGEST, expired)['reason']
    document = json.loads(keyless_bundle(fulcio, rekor, DIGEST))
    document['verificationMaterial']['tlogEntries'][0]['integratedTime'] = str(signed_at(minutes=2))
    assert Verifier(keyless=options).verify_bundle(DIGEST, json.dumps(document).encode())['reason'] == \
        'the Rekor SET does not verify'
    del document['verificationMaterial']['tlogEntries']
    assert Verifier(keyless=options).verify_bundle(DIGEST, json.dumps(document).encode())['reason'] == \
        'no Rekor SET (dev.sigstore.cosign/bundle)'
    roots_only = keyless_options(fulcio, rekor)  # the bundle carries no intermediate
    assert Verifier(keyless=roots_only).verify_bundle(DIGEST, keyless_bundle(fulcio, rekor, DIGEST))['reason'] == \
        'the certificate does not chain to trusted_roots'


@pytest.mark.parametrize('bundle', [b'', b'{}', b'[1]', b'{"mediaType": "%s"}' % BUNDLE_V03.encode(),
                                    b'{"mediaType": "%s", "dsseEnvelope": {}}' % BUNDLE_V03.encode(),
                                    b'{"mediaType": "%s", "messageSignature": 3}' % BUNDLE_V03.encode(),
                                    b'{' * 100000])
def test_malformed_bundles_are_reasons(keys, bundle):
    result = Verifier(keys=[public_pem(keys['p256'])]).verify_bundle(DIGEST, bundle)
    assert result['verified'] is False
    assert result['reason']


def test_the_leaf_time_check_uses_the_log_time_not_the_clock(fulcio, rekor):
    # EPOCH lies in the past of any real clock running these tests beyond 2026-01-15 12:10; the
    # short-lived leaf is long expired by wall clock, and still verifies at its logged time.
    assert datetime.datetime.now(datetime.timezone.utc) > EPOCH + datetime.timedelta(minutes=10)
    payload, annotations = keyless_simplesigning(fulcio, rekor, DIGEST)
    assert Verifier(keyless=keyless_options(fulcio, rekor)).verify_simplesigning(
        DIGEST, payload, annotations)['verified'] is True
