# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Keys for signing and verifying: loading, fingerprints, and the raw sign/verify operations.

``cryptography`` (and, for cosign's own encrypted key format, ``PyNaCl``) are optional:
this module imports without them, and whatever needs one raises
:class:`MissingLibraryError`, which the module turns into ``missing_required_lib``.
Nothing here puts key material or a passphrase into a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import json
import re
import traceback
from typing import TYPE_CHECKING, Any, Optional, Union

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    InvalidInputError,
    MissingLibraryError,
)

HAS_CRYPTOGRAPHY: bool
CRYPTOGRAPHY_IMPORT_ERROR: Optional[str]
try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError:  # the module reports missing_required_lib('cryptography')
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

HAS_NACL: bool
NACL_IMPORT_ERROR: Optional[str]
# PyNaCl is looked for here and imported only to decrypt a cosign key; cryptography's x509 only for
# certificates (keyless). A key-based gate in copy is spared the 25 ms the two imports take.
try:
    HAS_NACL = importlib.util.find_spec('nacl') is not None
    NACL_IMPORT_ERROR = None if HAS_NACL else 'No module named nacl'
except ImportError:  # the module reports missing_required_lib('PyNaCl')
    HAS_NACL = False
    NACL_IMPORT_ERROR = traceback.format_exc()

if TYPE_CHECKING:
    from cryptography import x509 as x509_types


def x509() -> Any:
    """cryptography's ``x509``, imported on first use."""
    require_cryptography('verify certificates')
    from cryptography import x509 as module  # pylint: disable=import-outside-toplevel
    return module


def _secretbox() -> Any:
    from nacl import exceptions, secret  # pylint: disable=import-outside-toplevel
    return secret.SecretBox, exceptions.CryptoError


# PEM labels of cosign's own encrypted private key (the second is what cosign 2+ writes).
COSIGN_KEY_LABELS = ('ENCRYPTED COSIGN PRIVATE KEY', 'ENCRYPTED SIGSTORE PRIVATE KEY')
# scrypt work a key file may ask for: cosign uses N=32768 or 65536 with r=8 (32/64 MiB).
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
_PEM_BLOCK = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.S)
WRONG_PASSPHRASE = 'the passphrase does not decrypt key'

if HAS_CRYPTOGRAPHY:
    PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey]
    PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]
else:  # pragma: no cover - only the names are needed
    PublicKey = Any  # type: ignore[misc]
    PrivateKey = Any  # type: ignore[misc]


def require_cryptography(reason: str) -> None:
    """Raise :class:`MissingLibraryError` unless ``cryptography`` imported."""
    if not HAS_CRYPTOGRAPHY:
        raise MissingLibraryError('cryptography', reason, CRYPTOGRAPHY_IMPORT_ERROR)


def pem_blocks(text: str) -> list[tuple[str, bytes]]:
    """``(label, DER)`` of every PEM block in ``text``; undecodable base64 raises ValueError."""
    blocks = []
    for label, body in _PEM_BLOCK.findall(text):
        lines = [line.strip() for line in body.strip().splitlines()]
        # An encrypted traditional key has RFC 1421 headers ("Proc-Type: ...") before the base64.
        payload = ''.join(line for line in lines if line and ':' not in line)
        blocks.append((label, base64.b64decode(payload, validate=True)))
    return blocks


# --- public keys ----------------------------------------------------------------------------


def load_public_key(pem: Any, what: str) -> PublicKey:
    """One PEM public key (ECDSA P-256/P-384/P-521, RSA, Ed25519), else InvalidInputError naming ``what``."""
    require_cryptography('verify signatures')
    if not isinstance(pem, str) or 'PUBLIC KEY-----' not in pem:
        raise InvalidInputError('%s is not a PEM public key ("-----BEGIN PUBLIC KEY-----")' % what)
    try:
        key = serialization.load_pem_public_key(pem.strip().encode('ascii'))
    except (ValueError, UnicodeError, UnsupportedAlgorithm):
        raise InvalidInputError('%s is not a valid PEM public key' % what)
    return check_key_type(key, what)


def check_key_type(key: Any, what: str) -> Any:
    """``key`` when it is a kind cosign signs with, else InvalidInputError."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        if key.curve.name not in ('secp256r1', 'secp384r1', 'secp521r1'):
            raise InvalidInputError('%s uses the curve %s: use P-256, P-384 or P-521' % (what, key.curve.name))
        return key
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey, ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return key
    raise InvalidInputError('%s is neither an ECDSA, an RSA nor an Ed25519 key' % what)


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint_of(key: PublicKey) -> str:
    """``SHA256:<hex>`` of the DER SubjectPublicKeyInfo: stable across PEM line wrapping."""
    return 'SHA256:' + hashlib.sha256(spki_der(key)).hexdigest()


def key_fingerprint(public_pem: str) -> str:
    """The fingerprint :class:`Verifier` reports for the key in ``public_pem``."""
    return fingerprint_of(load_public_key(public_pem, 'the public key'))


# --- raw verification -----------------------------------------------------------------------


def _ec_hashes(key: ec.EllipticCurvePublicKey) -> list[hashes.HashAlgorithm]:
    """SHA-256 first (cosign's default for every curve), then the curve's own size."""
    own = {'secp384r1': hashes.SHA384(), 'secp521r1': hashes.SHA512()}.get(key.curve.name)
    return [hashes.SHA256()] + ([own] if own else [])


def verify_raw(key: PublicKey, signature: bytes, message: bytes, prehashed: bool = False) -> bool:
    """Whether ``signature`` over ``message`` verifies with ``key``; never raises for a bad signature.

    ``prehashed``: ``message`` is already the SHA-256 of the signed content (a sigstore
    message signature names only the digest); Ed25519 cannot verify that.
    """
    for attempt in _verifications(key, prehashed):
        try:
            attempt(signature, message)
            return True
        except (InvalidSignature, ValueError, TypeError):
            continue
    return False


def _verifications(key: PublicKey, prehashed: bool) -> list[Any]:
    """The ways ``key`` may have signed: one callable ``(signature, message)`` per scheme."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return [] if prehashed else [key.verify]
    if isinstance(key, ec.EllipticCurvePublicKey):
        if prehashed:
            return [lambda s, m: key.verify(s, m, ec.ECDSA(Prehashed(hashes.SHA256())))]
        return [lambda s, m, h=h: key.verify(s, m, ec.ECDSA(h)) for h in _ec_hashes(key)]
    if isinstance(key, rsa.RSAPublicKey):
        algorithm = Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        return [lambda s, m: key.verify(s, m, padding.PKCS1v15(), algorithm),
                lambda s, m: key.verify(s, m, pss, algorithm)]
    return []


def verify_issued_by(cert: 'x509_types.Certificate', issuer: 'x509_types.Certificate') -> bool:
    """Whether ``issuer`` signed ``cert`` (names and signature)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        if hasattr(cert, 'verify_directly_issued_by'):
            cert.verify_directly_issued_by(issuer)
        else:  # cryptography < 40 (Debian 12 ships 38)
            verify_certificate_signature(cert, issuer.public_key())
        return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False


def verify_certificate_signature(cert: 'x509_types.Certificate', key: Any) -> None:
    """The issuer's signature over ``cert``'s TBS bytes; raises InvalidSignature (or TypeError) if not."""
    algorithm = cert.signature_hash_algorithm
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes)
    elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    else:
        raise TypeError('unsupported issuer key')


# --- private keys ---------------------------------------------------------------------------


def load_private_key(pem: Any, passphrase: Optional[str]) -> PrivateKey:
    """A private key from PKCS#8 / traditional PEM (optionally encrypted) or cosign's encrypted format."""
    require_cryptography('sign images')
    if not isinstance(pem, str) or 'PRIVATE KEY-----' not in pem:
        raise InvalidInputError('key is not a PEM private key (PKCS#8, EC or RSA, or a cosign encrypted key)')
    if any('BEGIN %s-----' % label in pem for label in COSIGN_KEY_LABELS):
        return check_key_type(_load_cosign_key(pem, passphrase), 'key')
    return check_key_type(_load_pem_private_key(pem, passphrase), 'key')


def _load_pem_private_key(pem: str, passphrase: Optional[str]) -> Any:
    encrypted = 'ENCRYPTED PRIVATE KEY-----' in pem or 'Proc-Type: 4,ENCRYPTED' in pem
    if encrypted and not passphrase:
        raise InvalidInputError('key is encrypted: passphrase is required')
    password = passphrase.encode('utf-8') if encrypted and passphrase else None
    try:
        return serialization.load_pem_private_key(pem.strip().encode('ascii'), password=password)
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm):
        if encrypted:
            raise InvalidInputError(WRONG_PASSPHRASE)
        raise InvalidInputError('key is not a valid PEM private key')


def _load_cosign_key(pem: str, passphrase: Optional[str]) -> Any:
    """cosign's format: JSON ``{kdf: scrypt, cipher: nacl/secretbox, ciphertext}``, plaintext PKCS#8 DER."""
    if not HAS_NACL:
        raise MissingLibraryError('PyNaCl', 'use a cosign encrypted private key', NACL_IMPORT_ERROR)
    document = _cosign_document(pem)
    try:
        kdf, cipher = document['kdf'], document['cipher']
        params = kdf['params']
        n, r, p = int(params['N']), int(params['r']), int(params['p'])
        salt = base64.b64decode(kdf['salt'], validate=True)
        nonce = base64.b64decode(cipher['nonce'], validate=True)
        ciphertext = base64.b64decode(document['ciphertext'], validate=True)
        names = (kdf['name'], cipher['name'])
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise InvalidInputError('key is not a valid cosign encrypted private key')
    if names != ('scrypt', 'nacl/secretbox'):
        raise InvalidInputError('key uses %s with %s: only scrypt with nacl/secretbox is supported' % names)
    memory = 128 * r * n * max(p, 1)
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or memory > MAX_SCRYPT_MEMORY:
        raise InvalidInputError('key asks for scrypt parameters out of range (N=%d, r=%d, p=%d)' % (n, r, p))
    secret = hashlib.scrypt((passphrase or '').encode('utf-8'), salt=salt, n=n, r=r, p=p,
                            maxmem=memory + 16 * 1024 * 1024, dklen=32)
    secret_box, crypto_error = _secretbox()
    try:
        der = secret_box(secret).decrypt(ciphertext, nonce)
    except (crypto_error, ValueError, TypeError):
        raise InvalidInputError(WRONG_PASSPHRASE)
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidInputError('key decrypts to something that is not a PKCS#8 private key')


def _cosign_document(pem: str) -> dict[str, Any]:
    try:
        blocks = [der for label, der in pem_blocks(pem) if label in COSIGN_KEY_LABELS]
        document = json.loads(blocks[0].decode('utf-8')) if blocks else None
    except (ValueError, UnicodeError, binascii.Error):
        document = None
    if not isinstance(document, dict):
        raise InvalidInputError('key is not a valid cosign encrypted private key')
    return document


def sign_raw(key: PrivateKey, message: bytes) -> bytes:
    """ECDSA (DER) or RSA PKCS#1 v1.5 with SHA-256, Ed25519 pure: what ``openssl dgst -sha256`` checks."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def public_pem_of(key: PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode('ascii')
