# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signing material for the tests: key pairs, a CA standing in for Fulcio, a Rekor key and its SETs.

Everything is made with ``cryptography`` in the test, offline. ``FakeFulcio`` issues short-lived
code-signing leaf certificates with Fulcio's OIDC issuer extensions (the v2 DER UTF8String and
the v1 raw form); ``FakeRekor`` signs SignedEntryTimestamps over hashedrekord and dsse entries
exactly as Rekor canonicalises them. ``keyless_simplesigning`` and ``keyless_bundle`` put the
two together into what cosign stores in a registry.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os

import nacl.secret
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    BUNDLE_V03,
    IN_TOTO,
    canonical_json,
    in_toto_statement,
    pae,
    simplesigning_payload,
)

IDENTITY = 'https://ci.example.com/release/app'
ISSUER = 'https://issuer.example.com'
OID_ISSUER_V2 = ObjectIdentifier('1.3.6.1.4.1.57264.1.8')
OID_ISSUER_V1 = ObjectIdentifier('1.3.6.1.4.1.57264.1.1')
EPOCH = datetime.datetime(2026, 1, 15, 12, 0, 0, tzinfo=datetime.timezone.utc)

# Real keys in cosign's encrypted format, from sigstore-rs tests/data/keys (Apache-2.0):
# ecdsa_encrypted_private.key (passphrase "123", scrypt N=32768) and
# cosign_generated_encrypted_empty_private.key (made by `cosign generate-key-pair` with an
# empty password, N=65536, the "ENCRYPTED SIGSTORE PRIVATE KEY" label of cosign 2+).
COSIGN_KEY = """-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiIrRFJrTXNRZmNUNTNKNCs1Y3VkUnlnWTUyWUMrK0RW
TmxaSTN4VnlwWFlvPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJnNTFORnBqQUxlemhvbGVWTWVjUFJUNUErMVhMcDAxeiJ9LCJj
aXBoZXJ0ZXh0Ijoib0YvN09mOGlQRDlkNlc2Mk5SWGVibEszWXZmNFFucTZORm16
Q0VyV2FTVUJOZTNXSFJiRVNYK2dJOCszejg4TDBDVXlWdm9LTHhuR0xhVnhnczVD
YUdyekcrMWxFTEI1cGRMVmZXd1VlQzlLelNab0hxZHZLaUsvUmNodVhpS0VqYmdv
ajNGd2pMcmhEYkY5a2lVWk93REpuT01kUkoxNnI3emxjRHdwT3htOXFrbWFDWDlB
VjQ4b1RXVG0rQXExOHlDZE50MDYybGdudVE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
"""
COSIGN_KEY_PASSPHRASE = '123'
COSIGN_KEY_PUBLIC = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI3sxu+p/GFrJyfgmSWr4qMzwbnd/
pRAShSG6tHcrlhBSoRCAiVYOoQR7514Uz6ft2tQlnoJLHmHcFqqy0/ERJA==
-----END PUBLIC KEY-----
"""
COSIGN_EMPTY_KEY = """-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJFY3pJR3Z0bnpFcCsxaEpudERnbGI1UnoxN3gwQVMy
YklvWGRNcDQrU1NJPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJtSVVKbG1OMzNINExvZ0dhaG5MamdmK3R4SmJwci93MCJ9LCJj
aXBoZXJ0ZXh0IjoiM3FtS2FidXRuYm1WT1IvTkZGM2NDaUErTXp1WWQ5L0VERDVI
MVlUSGhQVzZsSzAvdjVqdDZCQzlsME12NGV5am9qZkl0d3B6a2JJOXQrZGx5VXZ3
VUgvMWZjbkFZT2dEdXRLQzkvSkNiOE02SVY2VHpVaDF5c0ZFWDFzeG9xb1FzeUpL
bjM0UVlldFNlaVdDaGtmUHUyZXByQjFEV0pwekdzTGZIakxNVTkzOEdmNk1xM1A0
N0ZSd2syZzY1cFZnSGMwVWV1L1N1OUs0Zmc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
"""
COSIGN_EMPTY_KEY_PUBLIC = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7
T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==
-----END PUBLIC KEY-----
"""

KEY_KINDS = ('p256', 'p384', 'rsa', 'ed25519')


def make_key(kind='p256'):
    """A fresh private key: p256, p384, rsa (2048 bits) or ed25519."""
    if kind == 'p256':
        return ec.generate_private_key(ec.SECP256R1())
    if kind == 'p384':
        return ec.generate_private_key(ec.SECP384R1())
    if kind == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == 'ed25519':
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def private_pem(key, passphrase=None, traditional=False):
    """PKCS#8 PEM (encrypted when ``passphrase``), or the traditional EC/RSA form."""
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    form = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, form, encryption).decode()


def public_pem(key):
    public = key.public_key() if hasattr(key, 'private_bytes') else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def cosign_encrypt(key, passphrase, n=1024, label='ENCRYPTED SIGSTORE PRIVATE KEY'):
    """``key`` in cosign's encrypted format; a small scrypt N keeps the tests fast."""
    salt, nonce = os.urandom(32), os.urandom(24)
    secret = hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    ciphertext = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
    document = {'kdf': {'name': 'scrypt', 'params': {'N': n, 'r': 8, 'p': 1},
                        'salt': base64.b64encode(salt).decode()},
                'cipher': {'name': 'nacl/secretbox', 'nonce': base64.b64encode(nonce).decode()},
                'ciphertext': base64.b64encode(ciphertext).decode()}
    body = base64.b64encode(json.dumps(document).encode()).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return '-----BEGIN %s-----\n%s\n-----END %s-----\n' % (label, '\n'.join(lines), label)


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'sigstore.test'),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(subject, key, issuer_name, issuer_key, path_length, ca=True):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH - datetime.timedelta(days=365))
            .not_valid_after(EPOCH + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(issuer_key, hashes.SHA384()))


class FakeFulcio:
    """A root CA and an intermediate standing in for Fulcio; ``issue`` makes leaf certificates.

    ``intermediate_ca=False`` makes the intermediate a non-CA certificate: a chain no verifier may accept.
    """

    def __init__(self, name='fake-fulcio', intermediate=True, intermediate_ca=True):
        self.root_key = make_key('p384')
        self.root = _ca(_name(name + ' root'), self.root_key, _name(name + ' root'), self.root_key, 1)
        self.intermediate = None
        self.signing_key, self.signing_cert = self.root_key, self.root
        if intermediate:
            self.signing_key = make_key('p384')
            self.intermediate = _ca(_name(name + ' intermediate'), self.signing_key, self.root.subject,
                                    self.root_key, 0, ca=intermediate_ca)
            self.signing_cert = self.intermediate

    @property
    def root_pem(self):
        return cert_pem(self.root)

    @property
    def chain_pem(self):
        """The intermediates cosign puts in ``dev.sigstore.cosign/chain`` (with the root, as cosign does)."""
        return (cert_pem(self.intermediate) if self.intermediate else '') + self.root_pem

    def issue(self, public_key, identity=IDENTITY, issuer=ISSUER, oid='v2', not_before=EPOCH, minutes=10,
              code_signing=True):
        """A leaf valid ``minutes`` from ``not_before``; ``identity`` with an ``@`` becomes an email SAN."""
        san = x509.RFC822Name(identity) if '@' in identity else x509.UniformResourceIdentifier(identity)
        usage = [ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH]
        builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.signing_cert.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_before + datetime.timedelta(minutes=minutes))
                   .add_extension(x509.SubjectAlternativeName([san]), critical=True)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False))
        if oid in ('v2', 'both'):
            encoded = issuer.encode()
            builder = builder.add_extension(x509.UnrecognizedExtension(
                OID_ISSUER_V2, b'\x0c' + bytes([len(encoded)]) + encoded), critical=False)
        if oid in ('v1', 'both'):
            builder = builder.add_extension(x509.UnrecognizedExtension(OID_ISSUER_V1, issuer.encode()), critical=False)
        return builder.sign(self.signing_key, hashes.SHA256())


class FakeRekor:
    """A transparency log key; ``entry`` signs a SET over a hashedrekord or dsse body."""

    def __init__(self):
        self.key = make_key('p256')
        spki = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        self.log_id = hashlib.sha256(spki).hexdigest()
        self.public_pem = public_pem(self.key)

    @staticmethod
    def hashedrekord(sha256_hex, signature, leaf):
        return {'apiVersion': '0.0.1', 'kind': 'hashedrekord', 'spec': {
            'data': {'hash': {'algorithm': 'sha256', 'value': sha256_hex}},
            'signature': {'content': base64.b64encode(signature).decode(),
                          'publicKey': {'content': base64.b64encode(cert_pem(leaf).encode()).decode()}}}}

    @staticmethod
    def dsse(payload, signature, leaf):
        return {'apiVersion': '0.0.1', 'kind': 'dsse', 'spec': {
            'payloadHash': {'algorithm': 'sha256', 'value': hashlib.sha256(payload).hexdigest()},
            'signatures': [{'signature': base64.b64encode(signature).decode(),
                            'verifier': base64.b64encode(cert_pem(leaf).encode()).decode()}]}}

    def entry(self, body, integrated_time, log_index=4711):
        """``(Payload, SET bytes)``: the SET is over Payload's canonical JSON, as Rekor signs it."""
        payload = {'body': base64.b64encode(json.dumps(body).encode()).decode(),
                   'integratedTime': integrated_time, 'logIndex': log_index, 'logID': self.log_id}
        return payload, self.key.sign(canonical_json(payload), ec.ECDSA(hashes.SHA256()))

    def annotation(self, body, integrated_time, log_index=4711):
        """The ``dev.sigstore.cosign/bundle`` annotation value."""
        payload, signed = self.entry(body, integrated_time, log_index)
        return json.dumps({'SignedEntryTimestamp': base64.b64encode(signed).decode(), 'Payload': payload})

    def tlog_entry(self, body, integrated_time, log_index=4711):
        """A bundle's ``tlogEntries[0]``, protobuf JSON (int64 as strings, keyId base64)."""
        payload, signed = self.entry(body, integrated_time, log_index)
        return {'logIndex': str(log_index), 'logId': {'keyId': base64.b64encode(bytes.fromhex(self.log_id)).decode()},
                'kindVersion': {'kind': body['kind'], 'version': '0.0.1'}, 'integratedTime': str(integrated_time),
                'inclusionPromise': {'signedEntryTimestamp': base64.b64encode(signed).decode()},
                'canonicalizedBody': payload['body']}


def signed_at(minutes=1):
    return int((EPOCH + datetime.timedelta(minutes=minutes)).timestamp())


def keyless_simplesigning(fulcio, rekor, digest, reference='registry.example.com/app', integrated_time=None,
                          with_set=True, **issue):
    """``(payload, annotations)`` of a keyless cosign signature: leaf, chain and Rekor SET."""
    key = make_key('p256')
    leaf = fulcio.issue(key.public_key(), **issue)
    payload = simplesigning_payload(reference, digest)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    annotations = {ANNOTATION_SIGNATURE: base64.b64encode(signature).decode(),
                   ANNOTATION_CERTIFICATE: cert_pem(leaf), ANNOTATION_CHAIN: fulcio.chain_pem}
    if with_set:
        body = rekor.hashedrekord(hashlib.sha256(payload).hexdigest(), signature, leaf)
        annotations[ANNOTATION_BUNDLE] = rekor.annotation(body, integrated_time or signed_at())
    return payload, annotations


def keyless_bundle(fulcio, rekor, digest, content='dsse', integrated_time=None, **issue):
    """A bundle v0.3 with a Fulcio certificate, a Rekor entry and a DSSE envelope or a message signature."""
    key = make_key('p256')
    leaf = fulcio.issue(key.public_key(), **issue)
    encoded = digest.split(':', 1)[1]
    bundle = {'mediaType': BUNDLE_V03}
    if content == 'dsse':
        payload = in_toto_statement(digest)
        signature = key.sign(pae(IN_TOTO, payload), ec.ECDSA(hashes.SHA256()))
        body = rekor.dsse(payload, signature, leaf)
        bundle['dsseEnvelope'] = {'payload': base64.b64encode(payload).decode(), 'payloadType': IN_TOTO,
                                  'signatures': [{'sig': base64.b64encode(signature).decode(), 'keyid': ''}]}
    else:
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
        signature = key.sign(bytes.fromhex(encoded), ec.ECDSA(Prehashed(hashes.SHA256())))
        body = rekor.hashedrekord(encoded, signature, leaf)
        bundle['messageSignature'] = {
            'messageDigest': {'algorithm': 'SHA2_256', 'digest': base64.b64encode(bytes.fromhex(encoded)).decode()},
            'signature': base64.b64encode(signature).decode()}
    der = leaf.public_bytes(serialization.Encoding.DER)
    bundle['verificationMaterial'] = {'certificate': {'rawBytes': base64.b64encode(der).decode()},
                                      'tlogEntries': [rekor.tlog_entry(body, integrated_time or signed_at())]}
    return json.dumps(bundle).encode()


def keyless_options(fulcio, rekor, **overrides):
    """The Verifier's ``keyless`` dict for ``fulcio`` and ``rekor`` (identity and issuer exact)."""
    options = {'certificate_identity': IDENTITY, 'certificate_oidc_issuer': ISSUER,
               'trusted_roots': fulcio.root_pem, 'rekor_public_key': rekor.public_pem}
    options.update(overrides)
    return {k: v for k, v in options.items() if v is not None}
