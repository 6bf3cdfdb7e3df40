# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""cosign signatures: the simple signing and sigstore bundle v0.3 formats, verified and made offline.

No registry I/O here: the caller fetches the payload, annotations or bundle (size-capped)
and hands over bytes. Verification never raises for a bad signature: it answers with
``verified`` and a readable ``reason``, so a module can list every signature it found.

Keyless verification checks what cosign checks without a network: the Fulcio leaf
certificate chains to ``trusted_roots``, the Rekor SignedEntryTimestamp verifies with
``rekor_public_key`` and names this signature, the log's integration time lies inside
the leaf's validity, and the leaf's SAN and OIDC issuer match what the task asked for.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
from typing import Any, Optional

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._keys import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    HAS_NACL,
    NACL_IMPORT_ERROR,
    MissingLibraryError,
    fingerprint_of,
    key_fingerprint,
    load_private_key,
    load_public_key,
    pem_blocks,
    public_pem_of,
    require_cryptography,
    sign_raw,
    verify_issued_by,
    verify_raw,
    x509,
)

if HAS_CRYPTOGRAPHY:
    from cryptography.hazmat.primitives import serialization

# The contract the modules and operations code against (the guards and key helpers live in _keys).
__all__ = [
    'ANNOTATION_BUNDLE', 'ANNOTATION_CERTIFICATE', 'ANNOTATION_CHAIN', 'ANNOTATION_SIGNATURE', 'BUNDLE_V03',
    'CRYPTOGRAPHY_IMPORT_ERROR', 'HAS_CRYPTOGRAPHY', 'HAS_NACL', 'NACL_IMPORT_ERROR', 'SIMPLESIGNING',
    'MissingLibraryError', 'Signer', 'Verifier', 'key_fingerprint',
]

SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json'
ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature'
ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate'
ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain'
ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle'

COSIGN_SIGNATURE_TYPE = 'cosign container image signature'
IN_TOTO = 'application/vnd.in-toto+json'
IN_TOTO_STATEMENTS = ('https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1')
SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1'
# Fulcio's OIDC issuer extensions: v2 (DER UTF8String) and v1 (raw bytes).
OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8'
OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1'
# What a signature document may be; the caller caps the bytes, this caps the shape.
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_CHAIN = 8
KEYLESS_OPTIONS = ('certificate_identity', 'certificate_identity_regexp', 'certificate_oidc_issuer',
                   'certificate_oidc_issuer_regexp', 'trusted_roots', 'rekor_public_key')
# Wrong shapes of hostile or broken documents: reported as a reason, never as a traceback.
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, binascii.Error, UnicodeError,
              RecursionError, OverflowError)


class Refused(Exception):
    """A signature that does not verify, with the sentence saying why."""


def _result(verified: bool, reason: Optional[str] = None, fingerprint: Optional[str] = None,
            identity: Optional[str] = None, issuer: Optional[str] = None) -> dict[str, Any]:
    return {'verified': verified, 'reason': reason, 'key_fingerprint': fingerprint,
            'identity': identity, 'issuer': issuer}


def parse_json(data: Any, what: str) -> Any:
    """JSON of bounded size and nesting, else :class:`Refused` naming ``what``."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_JSON_BYTES:
        raise Refused('the %s is missing or larger than %d bytes' % (what, MAX_JSON_BYTES))
    try:
        value = json.loads(bytes(data).decode('utf-8'))
    except _MALFORMED:
        raise Refused('the %s is not valid JSON' % what)
    if _depth(value) > MAX_JSON_DEPTH:
        raise Refused('the %s nests deeper than %d levels' % (what, MAX_JSON_DEPTH))
    return value


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max([_depth(child, level + 1) for child in children] or [level])


def b64decode(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except _MALFORMED:
        raise Refused('the %s is not valid base64' % what)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces: the bytes Rekor signs for a SignedEntryTimestamp."""
    return json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what a DSSE signature is over."""
    kind = payload_type.encode('utf-8')
    return b'DSSEv1 %d %s %d %s' % (len(kind), kind, len(payload), payload)


def simplesigning_payload(docker_reference: str, digest: str) -> bytes:
    """cosign's simple signing JSON for ``digest``, in cosign's own key order."""
    document = {'critical': {'identity': {'docker-reference': docker_reference},
                             'image': {'docker-manifest-digest': digest},
                             'type': COSIGN_SIGNATURE_TYPE},
                'optional': None}
    return json.dumps(document, separators=(',', ':')).encode('utf-8')


def in_toto_statement(digest: str) -> bytes:
    _algorithm, encoded = validate_digest(digest)
    statement = {'_type': IN_TOTO_STATEMENTS[0], 'subject': [{'name': '', 'digest': {'sha256': encoded}}],
                 'predicateType': SIGN_PREDICATE, 'predicate': {}}
    return json.dumps(statement, separators=(',', ':')).encode('utf-8')


# --- the task's trust policy ----------------------------------------------------------------


class KeylessPolicy:
    """Who may have signed without a key: Fulcio roots, the Rekor key, identity and issuer."""

    def __init__(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(KEYLESS_OPTIONS))
        if unknown:
            raise InvalidInputError('Unknown keyless option(s): %s' % ', '.join(unknown))
        self.identity = self._matcher(options, 'certificate_identity')
        self.issuer = self._matcher(options, 'certificate_oidc_issuer')
        self.roots = self._roots(options.get('trusted_roots'))
        self.rekor_key = load_public_key(options.get('rekor_public_key'), 'rekor_public_key')

    @staticmethod
    def _matcher(options: dict[str, Any], name: str) -> tuple[str, Any]:
        exact, pattern = options.get(name), options.get(name + '_regexp')
        if bool(exact) == bool(pattern):
            raise InvalidInputError('keyless verification needs exactly one of %s and %s_regexp' % (name, name))
        if exact:
            return ('exact', str(exact))
        try:
            return ('regexp', re.compile(str(pattern)))
        except re.error as exc:
            raise InvalidInputError('%s_regexp %r is not a valid regular expression: %s' % (name, pattern, exc))

    @staticmethod
    def _roots(text: Any) -> list[Any]:
        try:
            roots = [x509().load_der_x509_certificate(der) for label, der in pem_blocks(text or '')
                     if label == 'CERTIFICATE']
        except _MALFORMED:
            raise InvalidInputError('trusted_roots holds a PEM certificate that does not parse')
        if not roots:
            raise InvalidInputError('keyless verification needs trusted_roots: one or more PEM certificates')
        return roots

    def describe(self, which: str) -> str:
        kind, value = getattr(self, which)
        return repr(value) if kind == 'exact' else 'the pattern %r' % value.pattern

    def matches(self, which: str, value: Optional[str]) -> bool:
        kind, expected = getattr(self, which)
        if value is None:
            return False
        return value == expected if kind == 'exact' else expected.fullmatch(value) is not None


def _issuer_of(cert: Any) -> Optional[str]:
    """The OIDC issuer Fulcio wrote: the v2 extension (DER UTF8String) first, then v1 (raw)."""
    for ext in cert.extensions:
        if ext.oid.dotted_string == OID_ISSUER_V2:
            return _der_utf8(ext.value.value)
    for ext in cert.extensions:
        if ext.oid.dotted_string == OID_ISSUER_V1:
            return bytes(ext.value.value).decode('utf-8', 'replace')
    return None


def _der_utf8(der: bytes) -> Optional[str]:
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, start = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[2:2 + count], 'big'), 2 + count
    return der[start:start + length].decode('utf-8', 'replace')


def _sans_of(cert: Any) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509().SubjectAlternativeName).value
    except x509().ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509().UniformResourceIdentifier)] + \
        [str(v) for v in san.get_values_for_type(x509().RFC822Name)]


def _validity(cert: Any) -> tuple[datetime.datetime, datetime.datetime]:
    if hasattr(cert, 'not_valid_before_utc'):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return (cert.not_valid_before.replace(tzinfo=datetime.timezone.utc),
            cert.not_valid_after.replace(tzinfo=datetime.timezone.utc))


def _is_ca(cert: Any) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509().BasicConstraints).value.ca)
    except x509().ExtensionNotFound:
        return False


class SignedEntry:
    """A Rekor log entry as the signature carries it: body, time, index, log id and SET."""

    def __init__(self, body: str, integrated_time: int, log_index: int, log_id: str, set_bytes: bytes) -> None:
        self.body, self.integrated_time, self.log_index = body, integrated_time, log_index
        self.log_id, self.set_bytes = log_id, set_bytes

    def signed_bytes(self) -> bytes:
        return canonical_json({'body': self.body, 'integratedTime': self.integrated_time,
                               'logIndex': self.log_index, 'logID': self.log_id})

    def decoded_body(self) -> dict[str, Any]:
        body = parse_json(b64decode(self.body, 'Rekor entry body'), 'Rekor entry body')
        if not isinstance(body, dict):
            raise Refused('the Rekor entry body is not a JSON object')
        return body


def _check_keyless(policy: KeylessPolicy, certs: list[Any], signature: bytes, message: bytes,
                   entry: Optional[SignedEntry], content: dict[str, Any], prehashed: bool = False) -> dict[str, Any]:
    """Everything keyless verification checks, in the order a reader would ask; Refused on the first miss."""
    leaf = certs[0]
    if not verify_raw(leaf.public_key(), signature, message, prehashed):
        raise Refused("the certificate's key does not verify the signature")
    _check_leaf_usage(leaf)
    if entry is None:
        raise Refused('no Rekor SET (%s)' % ANNOTATION_BUNDLE)
    if not verify_raw(policy.rekor_key, entry.set_bytes, entry.signed_bytes()):
        raise Refused('the Rekor SET does not verify')
    _check_body(entry.decoded_body(), content, signature, leaf)
    signed_at = datetime.datetime.fromtimestamp(entry.integrated_time, datetime.timezone.utc)
    _check_time(leaf, signed_at)
    _check_chain(policy, certs, signed_at)
    identities = _sans_of(leaf)
    identity = next((i for i in identities if policy.matches('identity', i)), None)
    if identity is None:
        raise Refused('the certificate identity %s does not match %s'
                      % (', '.join(identities) or '(none)', policy.describe('identity')))
    issuer = _issuer_of(leaf)
    if not policy.matches('issuer', issuer):
        raise Refused('the certificate issuer %r does not match %s' % (issuer, policy.describe('issuer')))
    return _result(True, identity=identity, issuer=issuer)


def _check_leaf_usage(leaf: Any) -> None:
    try:
        usages = leaf.extensions.get_extension_for_class(x509().ExtendedKeyUsage).value
    except x509().ExtensionNotFound:
        usages = []
    if x509().oid.ExtendedKeyUsageOID.CODE_SIGNING not in usages:
        raise Refused('the certificate is not for code signing (no codeSigning extended key usage)')


def _check_time(leaf: Any, signed_at: datetime.datetime) -> None:
    not_before, not_after = _validity(leaf)
    if signed_at > not_after:
        raise Refused('the certificate expired before the signing time %s (valid until %s)'
                      % (signed_at.isoformat(), not_after.isoformat()))
    if signed_at < not_before:
        raise Refused('the certificate was not yet valid at the signing time %s (valid from %s)'
                      % (signed_at.isoformat(), not_before.isoformat()))


def _check_chain(policy: KeylessPolicy, certs: list[Any], signed_at: datetime.datetime) -> None:
    """Leaf -> intermediates -> one of the roots, each link signed by a CA valid at the signing time."""
    current, pool = certs[0], certs[1:]
    for _step in range(MAX_CHAIN):
        root = next((r for r in policy.roots if verify_issued_by(current, r)), None)
        issuer = root or next((c for c in pool if verify_issued_by(current, c)), None)
        if issuer is None or not _is_ca(issuer):
            break
        not_before, not_after = _validity(issuer)
        if not not_before <= signed_at <= not_after:
            raise Refused('the certificate chain was not valid at the signing time %s' % signed_at.isoformat())
        if root is not None:
            return
        current, pool = issuer, [c for c in pool if c is not issuer]
    raise Refused('the certificate does not chain to trusted_roots')


def _check_body(body: dict[str, Any], content: dict[str, Any], signature: bytes, leaf: Any) -> None:
    """The log entry is for this signature: the artifact's hash and the signature itself."""
    kind, spec = body.get('kind'), body.get('spec') or {}
    if kind == 'hashedrekord':
        logged = spec['data']['hash']
        logged_signature = b64decode(spec['signature']['content'], 'Rekor entry signature')
        if logged.get('algorithm') != 'sha256' or logged.get('value') != content['sha256']:
            raise Refused('the Rekor entry is for another artifact (hash %s)' % logged.get('value'))
        if logged_signature != signature:
            raise Refused('the Rekor entry is for another signature')
        _check_logged_certificate(spec['signature'].get('publicKey', {}).get('content'), leaf)
    elif kind == 'dsse':
        if spec['payloadHash'].get('value') != content.get('payload_sha256'):
            raise Refused('the Rekor entry is for another DSSE payload')
        logged = dict((b64decode(s['signature'], 'Rekor entry signature'), s.get('verifier'))
                      for s in spec.get('signatures') or [])
        if signature not in logged:
            raise Refused('the Rekor entry is for another signature')
        _check_logged_certificate(logged[signature], leaf)
    else:
        raise Refused('the Rekor entry kind %r is not supported' % kind)


def _check_logged_certificate(logged: Optional[str], leaf: Any) -> None:
    """When the entry logs a certificate (it does for keyless), it is this leaf."""
    if not logged:
        return
    text = b64decode(logged, 'Rekor entry verifier').decode('utf-8')
    logged_certs = [der for label, der in pem_blocks(text) if label == 'CERTIFICATE']
    if logged_certs and leaf.public_bytes(serialization.Encoding.DER) not in logged_certs:
        raise Refused('the Rekor entry names another certificate')


# --- the two formats ------------------------------------------------------------------------


class Verifier:
    """Built once per task from the module options; verifies signatures of one image digest."""

    def __init__(self, keys: Optional[list[str]] = None, keyless: Optional[dict[str, Any]] = None) -> None:
        require_cryptography('verify signatures')
        if not keys and not keyless:
            raise InvalidInputError('Signature verification needs keys, or the keyless options'
                                    ' (certificate identity and issuer, trusted_roots, rekor_public_key)')
        self.keys = [load_public_key(pem, 'keys[%d]' % index) for index, pem in enumerate(keys or [])]
        self.keyless = KeylessPolicy(keyless) if keyless else None

    def verify_simplesigning(self, digest: str, payload: bytes, annotations: dict[str, str]) -> dict[str, Any]:
        """A cosign simple signing layer: its payload bytes and the layer's annotations."""
        try:
            return self._simplesigning(digest, payload, annotations or {})
        except Refused as refusal:
            return _result(False, str(refusal))
        except _MALFORMED:
            return _result(False, 'the signature data is malformed')

    def verify_bundle(self, digest: str, bundle: bytes) -> dict[str, Any]:
        """A sigstore bundle v0.3 (cosign 3's referrer), with a DSSE envelope or a message signature."""
        try:
            return self._bundle(digest, parse_json(bundle, 'sigstore bundle'))
        except Refused as refusal:
            return _result(False, str(refusal))
        except _MALFORMED:
            return _result(False, 'the sigstore bundle is malformed')

    # simple signing

    def _simplesigning(self, digest: str, payload: bytes, annotations: dict[str, str]) -> dict[str, Any]:
        document = parse_json(payload, 'payload')
        critical = document.get('critical') if isinstance(document, dict) else None
        if not isinstance(critical, dict) or critical.get('type') != COSIGN_SIGNATURE_TYPE:
            raise Refused('the payload is not valid simple signing JSON')
        signed = (critical.get('image') or {}).get('docker-manifest-digest')
        if signed != digest:
            raise Refused('the payload is for %s, not %s' % (signed, digest))
        if ANNOTATION_SIGNATURE not in annotations:
            raise Refused('the layer has no signature annotation (%s)' % ANNOTATION_SIGNATURE)
        signature = b64decode(annotations[ANNOTATION_SIGNATURE], 'signature annotation')
        content = {'sha256': hashlib.sha256(payload).hexdigest()}
        return self._either(signature, payload, content, lambda: self._annotation_material(annotations))

    @staticmethod
    def _annotation_material(annotations: dict[str, str]) -> tuple[list[Any], Optional[SignedEntry]]:
        if ANNOTATION_CERTIFICATE not in annotations:
            raise Refused('the signature has no certificate (%s)' % ANNOTATION_CERTIFICATE)
        certs = _load_certs(annotations[ANNOTATION_CERTIFICATE] + '\n' + annotations.get(ANNOTATION_CHAIN, ''))
        entry = None
        if annotations.get(ANNOTATION_BUNDLE):
            bundle = parse_json(annotations[ANNOTATION_BUNDLE], 'Rekor bundle annotation')
            body = bundle['Payload']
            entry = SignedEntry(body['body'], int(body['integratedTime']), int(body['logIndex']),
                                str(body['logID']), b64decode(bundle['SignedEntryTimestamp'], 'Rekor SET'))
        return certs, entry

    def _either(self, signature: bytes, message: bytes, content: dict[str, Any], material: Any,
                prehashed: bool = False) -> dict[str, Any]:
        """The keys first, then keyless: the first that verifies wins, else the most telling reason."""
        for key in self.keys:
            if verify_raw(key, signature, message, prehashed):
                return _result(True, fingerprint=fingerprint_of(key))
        if self.keyless is None:
            raise Refused('no key verifies the signature')
        certs, entry = material()
        return _check_keyless(self.keyless, certs, signature, message, entry, content, prehashed)

    # bundle v0.3

    def _bundle(self, digest: str, bundle: Any) -> dict[str, Any]:
        if not isinstance(bundle, dict) or not str(bundle.get('mediaType', '')).startswith(
                'application/vnd.dev.sigstore.bundle'):
            raise Refused('the document is not a sigstore bundle')
        _algorithm, encoded = validate_digest(digest)
        material = bundle.get('verificationMaterial') or {}
        if 'dsseEnvelope' in bundle:
            signature, message, content, prehashed = self._dsse(encoded, bundle['dsseEnvelope'])
        elif 'messageSignature' in bundle:
            signature, message, content, prehashed = self._message_signature(encoded, bundle['messageSignature'])
        else:
            raise Refused('the bundle has neither a DSSE envelope nor a message signature')
        return self._either(signature, message, content, lambda: _bundle_material(material), prehashed)

    @staticmethod
    def _dsse(encoded: str, envelope: dict[str, Any]) -> tuple[bytes, bytes, dict[str, Any], bool]:
        payload = b64decode(envelope['payload'], 'DSSE payload')
        if envelope.get('payloadType') != IN_TOTO:
            raise Refused('the DSSE payload type %r is not %s' % (envelope.get('payloadType'), IN_TOTO))
        statement = parse_json(payload, 'in-toto statement')
        if not isinstance(statement, dict) or statement.get('_type') not in IN_TOTO_STATEMENTS:
            raise Refused('the DSSE payload is not an in-toto statement')
        subjects = [(s.get('digest') or {}).get('sha256') for s in statement.get('subject') or []]
        if encoded not in subjects:
            raise Refused('the in-toto statement is for %s, not sha256:%s'
                          % (', '.join('sha256:%s' % s for s in subjects) or 'no subject', encoded))
        signatures = envelope.get('signatures') or []
        if len(signatures) != 1:
            raise Refused('the DSSE envelope has %d signatures: exactly one is expected' % len(signatures))
        signature = b64decode(signatures[0]['sig'], 'DSSE signature')
        content = {'payload_sha256': hashlib.sha256(payload).hexdigest()}
        return signature, pae(IN_TOTO, payload), content, False

    @staticmethod
    def _message_signature(encoded: str, message: dict[str, Any]) -> tuple[bytes, bytes, dict[str, Any], bool]:
        digest = message.get('messageDigest') or {}
        value = b64decode(digest.get('digest', ''), 'message digest')
        if digest.get('algorithm') != 'SHA2_256' or value.hex() != encoded:
            raise Refused('the message signature is for %s:%s, not sha256:%s'
                          % (digest.get('algorithm'), value.hex(), encoded))
        signature = b64decode(message['signature'], 'message signature')
        return signature, value, {'sha256': encoded}, True


def _load_certs(text: str) -> list[Any]:
    try:
        certs = [x509().load_der_x509_certificate(der) for label, der in pem_blocks(text) if label == 'CERTIFICATE']
    except _MALFORMED:
        raise Refused('a certificate of the signature does not parse')
    if not certs:
        raise Refused('the signature has no certificate')
    return certs


def _bundle_material(material: dict[str, Any]) -> tuple[list[Any], Optional[SignedEntry]]:
    """The certificates and the first log entry of a bundle's verificationMaterial."""
    if 'certificate' in material:
        raw = [material['certificate']['rawBytes']]
    elif 'x509CertificateChain' in material:
        raw = [c['rawBytes'] for c in material['x509CertificateChain'].get('certificates') or []]
    else:
        raise Refused('no key verifies the signature')
    try:
        certs = [x509().load_der_x509_certificate(b64decode(r, 'certificate')) for r in raw]
    except _MALFORMED:
        raise Refused('a certificate of the bundle does not parse')
    if not certs:
        raise Refused('the bundle has no certificate')
    entries = material.get('tlogEntries') or []
    promise = (entries[0].get('inclusionPromise') or {}) if entries else {}
    if not promise.get('signedEntryTimestamp'):
        return certs, None
    entry = entries[0]
    log_id = b64decode(entry['logId']['keyId'], 'log id').hex()
    return certs, SignedEntry(entry['canonicalizedBody'], int(entry['integratedTime']), int(entry['logIndex']),
                              log_id, b64decode(promise['signedEntryTimestamp'], 'Rekor SET'))


class Signer:
    """A private key that signs image digests in cosign's formats."""

    def __init__(self, key: str, passphrase: Optional[str] = None) -> None:
        self._key = load_private_key(key, passphrase)
        self.public_pem: str = public_pem_of(self._key)
        self.key_fingerprint: str = fingerprint_of(self._key.public_key())

    def simplesigning(self, docker_reference: str, digest: str) -> tuple[bytes, dict[str, str]]:
        """The payload layer's bytes and its annotations (the base64 signature)."""
        validate_digest(digest)
        payload = simplesigning_payload(docker_reference, digest)
        signature = base64.b64encode(sign_raw(self._key, payload)).decode('ascii')
        return payload, {ANNOTATION_SIGNATURE: signature}

    def bundle(self, digest: str, manifest_size: int, media_type: str) -> bytes:
        """A bundle v0.3 with a DSSE in-toto statement naming ``digest``, signed by this key.

        ``manifest_size`` and ``media_type`` describe the signed manifest; the statement names it
        by digest only (as cosign does), so they are checked here and used by the caller for the
        referrer's ``subject``.
        """
        if not isinstance(manifest_size, int) or manifest_size < 0 or not media_type:
            raise InvalidInputError('bundle() needs the signed manifest size and media type')
        payload = in_toto_statement(digest)
        signature = sign_raw(self._key, pae(IN_TOTO, payload))
        bundle = {
            'mediaType': BUNDLE_V03,
            'verificationMaterial': {'publicKey': {'hint': self.key_fingerprint}, 'tlogEntries': []},
            'dsseEnvelope': {'payload': base64.b64encode(payload).decode('ascii'), 'payloadType': IN_TOTO,
                             'signatures': [{'sig': base64.b64encode(signature).decode('ascii'), 'keyid': ''}]},
        }
        return json.dumps(bundle, separators=(',', ':')).encode('utf-8')
