# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The signatures of an image: finding them, verifying them, and making one.

Two layouts are read and written (the formats themselves are ``_sigstore``'s):

- cosign "simple signing": a manifest whose layers are signed payloads, each with its
  signature (and, keyless, its certificate and Rekor SET) in the layer's annotations. It
  lives under the tag ``sha256-<hex>.sig`` (what cosign 2 writes, and admission controllers
  read), or is a referrer of the image (cosign 2's OCI 1.1 mode).
- the sigstore bundle cosign 3 stores as an OCI 1.1 referrer: a manifest with
  ``artifactType`` BUNDLE_V03 whose one layer is the bundle.

Where they are found is ``_referrers``' discovery (the referrers API, its fallback index,
the cosign tags). Every byte read is capped (a payload at 1 MiB, a bundle at 16 MiB) and
verified against its digest before a verifier sees it.

Entry points: :func:`find_signatures` (every signature, for ``signature_verify``),
:func:`verify_gate` (stops at the first that verifies, for ``copy``), :func:`sign_image`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import MemorySink, fetch_blob
from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import compute_digest, validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import IMAGE_TYPES, OCI_MANIFEST, Manifest
from ansible_collections.imagelayers.registry.plugins.module_utils._referrers import (
    Referrer,
    cosign_tags,
    discover,
    put_referrer,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import (
    BUNDLE_V03,
    KEYLESS_OPTIONS,
    SIMPLESIGNING,
    MissingLibraryError,
    Signer,
    Verifier,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    EMPTY_DATA,
    EMPTY_DESCRIPTOR,
    resolve_source,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import upload_bytes

if TYPE_CHECKING:
    from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient

# What may be read of one signature: a simple signing payload is a few hundred bytes, a bundle
# with a certificate chain and a transparency log entry a few KiB.
PAYLOAD_LIMIT = 1024 * 1024
BUNDLE_LIMIT = 16 * 1024 * 1024
# The artifactType of a simple signing manifest stored as a referrer (cosign 2, OCI 1.1 mode).
COSIGN_SIG_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json'
# The annotations cosign 3 puts on a bundle referrer.
BUNDLE_ANNOTATIONS = {'dev.sigstore.bundle.content': 'dsse-envelope',
                      'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1'}
FORMATS = ('simplesigning', 'bundle')
# What a format keeps in its layers, and how much of one layer may be read.
LAYER_TYPES = {'simplesigning': (SIMPLESIGNING, PAYLOAD_LIMIT), 'bundle': (BUNDLE_V03, BUNDLE_LIMIT)}

Entry = dict[str, Any]


class SignatureVerificationError(RegistryError):
    """No signature of the image verifies, or a required kind of referrer is missing.

    ``details`` carries ``digest``, ``signatures`` (every one examined, with why it failed)
    and ``missing_artifact_types``; nothing was written.
    """


# -- options -------------------------------------------------------------------
def pem_or_file(value: Optional[str], option: str) -> Optional[str]:
    """PEM text as given, or read from the file ``value`` names (on the managed host)."""
    if value is None or '-----BEGIN ' in value:
        return value
    try:
        with open(os.path.expanduser(value), 'r', encoding='utf-8') as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError('%s is neither PEM text nor a readable file: %s (%s)'
                                % (option, value, getattr(error, 'strerror', None) or error))


def verifier_from_params(params: dict[str, Any]) -> Verifier:
    """The Verifier of ``signature_verify``'s options (or of ``copy``'s ``verify_signatures``).

    Keyless needs an identity, an issuer, the roots and the Rekor key together: a certificate
    checked against less would let any identity the roots ever certified through.
    """
    keys = list(params.get('keys') or [])
    given = dict((name, params.get(name)) for name in KEYLESS_OPTIONS if params.get(name))
    if not keys and not given:
        raise InvalidInputError('Give keys (PEM public keys), or certificate_identity (or _regexp), '
                                'certificate_oidc_issuer (or _regexp), trusted_roots and rekor_public_key to '
                                'verify keyless signatures')
    keyless = None
    if given:
        wanted = [('certificate_identity', 'certificate_identity_regexp'),
                  ('certificate_oidc_issuer', 'certificate_oidc_issuer_regexp'),
                  ('trusted_roots',), ('rekor_public_key',)]
        missing = [' or '.join(group) for group in wanted if not any(name in given for name in group)]
        if missing:
            raise InvalidInputError('Keyless verification needs %s too' % ', '.join(missing))
        given['trusted_roots'] = pem_or_file(given['trusted_roots'], 'trusted_roots')
        given['rekor_public_key'] = pem_or_file(given['rekor_public_key'], 'rekor_public_key')
        keyless = given
    return Verifier(keys=keys or None, keyless=keyless)


# -- reading one signature -------------------------------------------------------
def signature_format(referrer: Referrer) -> Optional[str]:
    """'simplesigning', 'bundle', or None for a referrer that is no signature (an SBOM, an attestation)."""
    if referrer.artifact_type == BUNDLE_V03:
        return 'bundle'
    if referrer.artifact_type == COSIGN_SIG_ARTIFACT_TYPE or (referrer.tag or '').endswith('.sig'):
        return 'simplesigning'
    return None


def sig_tag(digest: str) -> str:
    """``sha256-<hex>.sig``: where cosign keeps the simple signing manifest of ``digest``."""
    return [tag for tag in cosign_tags(digest) if tag.endswith('.sig')][0]


def _entry(manifest_digest: Optional[str], fmt: str, found_in: str, tag: Optional[str],
           verdict: dict[str, Any]) -> Entry:
    entry = {'digest': manifest_digest, 'format': fmt, 'found_in': found_in, 'verified': bool(verdict.get('verified')),
             'reason': verdict.get('reason'), 'key_fingerprint': verdict.get('key_fingerprint'),
             'identity': verdict.get('identity'), 'issuer': verdict.get('issuer')}
    if tag:
        entry['tag'] = tag
    return entry


def _refused(reason: str) -> dict[str, Any]:
    return {'verified': False, 'reason': reason}


def read_layer(client: RegistryClient, repository: str, layer: dict[str, Any], limit: int, what: str) -> bytes:
    """The bytes of a signature layer: at most ``limit``, refused before the request when its size says more."""
    digest, size = str(layer.get('digest')), layer.get('size')
    if not isinstance(size, int) or size < 0:
        raise IntegrityError('The %s %s has no valid size' % (what, digest))
    if size > limit:
        raise IntegrityError('The %s %s is %d bytes, more than the %d bytes a signature may take; not reading it'
                             % (what, digest, size, limit))
    sink = MemorySink(limit)
    fetch_blob(client, repository, digest, size, sink=sink, retries=client.api.options.retries,
               what='%s %s in %s' % (what, digest, repository))
    return sink.getvalue()


def _verify_layer(client: RegistryClient, repository: str, digest: str, fmt: str, layer: dict[str, Any],
                  verifier: Verifier) -> dict[str, Any]:
    """The verdict on one layer; hostile or unreadable content is a refusal with its reason, not a failure."""
    media_type, limit = LAYER_TYPES[fmt]
    try:
        data = read_layer(client, repository, layer, limit, 'signature payload' if fmt == 'simplesigning' else 'bundle')
        if fmt == 'bundle':
            return verifier.verify_bundle(digest, data)
        annotations = layer.get('annotations') or {}
        return verifier.verify_simplesigning(digest, data, dict(annotations))
    except MissingLibraryError:
        raise
    except RegistryError as error:
        return _refused(error.msg)


def verify_manifest(client: RegistryClient, repository: str, digest: str, manifest: Manifest, fmt: str,
                    verifier: Verifier, found_in: str, tag: Optional[str], stop_early: bool = False) -> list[Entry]:
    """One entry per signature layer of ``manifest`` (a signature manifest of ``fmt``)."""
    media_type = LAYER_TYPES[fmt][0]
    layers = [layer for layer in manifest.data.get('layers') or [] if layer.get('mediaType') == media_type]
    if not manifest.is_image or not layers:
        return [_entry(manifest.digest, fmt, found_in, tag,
                       _refused('the manifest has no %s layer' % media_type))]
    entries = []
    for layer in layers:
        entries.append(_entry(manifest.digest, fmt, found_in, tag,
                              _verify_layer(client, repository, digest, fmt, layer, verifier)))
        if stop_early and entries[-1]['verified']:
            break
    return entries


def _verify_referrer(client: RegistryClient, repository: str, digest: str, referrer: Referrer, fmt: str,
                     verifier: Verifier, stop_early: bool = False) -> list[Entry]:
    manifest = referrer.manifest  # a cosign tag's manifest was fetched by discovery already
    if manifest is None:
        try:
            manifest = client.get_manifest(repository, referrer.digest)
        except RegistryError as error:
            return [_entry(referrer.digest, fmt, referrer.source, referrer.tag, _refused(error.msg))]
    return verify_manifest(client, repository, digest, manifest, fmt, verifier, referrer.source, referrer.tag,
                           stop_early)


def _sig_tag_entries(client: RegistryClient, repository: str, digest: str, verifier: Verifier) -> list[Entry]:
    """The simple signing signatures under ``sha256-<hex>.sig``, stopping at the first that verifies."""
    tag = sig_tag(digest)
    try:
        manifest = client.get_manifest(repository, tag)
    except NotFoundError:
        return []
    except IntegrityError as error:
        return [_entry(None, 'simplesigning', 'tag', tag, _refused(error.msg))]
    return verify_manifest(client, repository, digest, manifest, 'simplesigning', verifier, 'tag', tag,
                           stop_early=True)


# -- the two readers: every signature, or the gate ----------------------------------
def find_signatures(client: RegistryClient, repository: str, digest: str, verifier: Verifier) -> list[Entry]:
    """Every signature of ``digest`` (full discovery), each verified: ``signature_verify``'s list."""
    entries: list[Entry] = []
    for referrer in discover(client, repository, digest):
        fmt = signature_format(referrer)
        if fmt is not None:
            entries.extend(_verify_referrer(client, repository, digest, referrer, fmt, verifier))
    return entries


def verify_gate(client: RegistryClient, repository: str, digest: str, verifier: Optional[Verifier],
                require_artifact_types: Optional[Sequence[str]] = None, name: Optional[str] = None) -> list[Entry]:
    """Raise SignatureVerificationError unless a signature of ``digest`` verifies (and the kinds required exist).

    Looks under ``sha256-<hex>.sig`` first and stops at the first signature that verifies:
    one key-based signature there costs two requests (its manifest and its payload). Only
    when none verifies there, or artifact types are required, are the referrers discovered.
    Without a ``verifier``, only the kinds of referrer required are checked.
    """
    validate_digest(digest, what='image digest')
    entries = _sig_tag_entries(client, repository, digest, verifier) if verifier is not None else []
    verified = verifier is None or any(entry['verified'] for entry in entries)
    missing: list[str] = []
    if not verified or require_artifact_types:
        seen = set(entry['digest'] for entry in entries)
        referrers = discover(client, repository, digest)
        for referrer in referrers:
            fmt = signature_format(referrer)
            if verified or verifier is None or fmt is None or referrer.digest in seen:
                continue
            entries.extend(_verify_referrer(client, repository, digest, referrer, fmt, verifier, stop_early=True))
            verified = any(entry['verified'] for entry in entries)
        present = set(referrer.artifact_type for referrer in referrers)
        missing = [kind for kind in require_artifact_types or [] if kind not in present]
    if not verified or missing:
        raise verification_error(name or '%s/%s' % (client.api_host, repository), digest, entries, missing,
                                 signatures_checked=verifier is not None)
    return entries


def verification_error(name: str, digest: str, entries: list[Entry], missing: Sequence[str] = (),
                       signatures_checked: bool = True) -> SignatureVerificationError:
    """The readable refusal: what was found, why none verified, what kind of referrer is missing."""
    image = '%s@%s' % (name, digest)
    problems = []
    if signatures_checked and not entries:
        problems.append('%s has no signature: none under the tag %s, none among its referrers' % (image, sig_tag(digest)))
    elif signatures_checked and not any(entry['verified'] for entry in entries):
        reasons = ['%s (%s, %s): %s' % (entry['digest'] or entry.get('tag'), entry['format'],
                                        entry.get('tag') or entry['found_in'], entry['reason'])
                   for entry in entries]
        problems.append('No signature of %s verifies; %d found: %s' % (image, len(entries), '; '.join(reasons)))
    elif signatures_checked:
        problems.append('A signature of %s verifies' % image)
    if missing:
        problems.append('%s has no referrer of type %s' % ('it' if signatures_checked else image, ', '.join(missing)))
    return SignatureVerificationError('%s. Nothing was written' % '; '.join(problems),
                                      details={'digest': digest, 'signatures': entries,
                                               'missing_artifact_types': list(missing)})


class VerifyOutcome:
    """What ``signature_verify`` found: every signature of the image, at least one verified."""

    def __init__(self, name: str, digest: str, entries: list[Entry]) -> None:
        self.name = name
        self.digest = digest
        self.entries = entries

    def to_result(self) -> dict[str, Any]:
        return {'changed': False, 'image': self.name, 'digest': self.digest, 'signatures': self.entries,
                'verified': True}


def verify_image(client: RegistryClient, reference: ImageReference, verifier: Verifier) -> VerifyOutcome:
    """Every signature of the image ``reference`` resolves to (once: the digest is what is verified);
    SignatureVerificationError unless one verifies."""
    digest = resolve_source(client, reference)['digest']
    entries = find_signatures(client, reference.repository, digest, verifier)
    if not any(entry['verified'] for entry in entries):
        raise verification_error(reference.repository_name, digest, entries)
    return VerifyOutcome(reference.name, digest, entries)


# -- signing -------------------------------------------------------------------------
def _descriptor(media_type: str, data: bytes, annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
    descriptor: dict[str, Any] = {'mediaType': media_type, 'digest': compute_digest(data), 'size': len(data)}
    if annotations:
        descriptor['annotations'] = dict(annotations)
    return descriptor


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(',', ':')).encode('utf-8')


@dataclass
class SignOutcome:
    """What ``sign`` did (in check mode, would do): ``to_result()`` is the module's result.

    ``before``/``after`` are the signature set as this key sees it: how many signatures of
    the format the image has, and the fingerprints of the keys known to sign it (only the
    signer's own can be checked without the others' public keys).
    """

    digest: str
    fmt: str
    changed: bool
    signature_digest: Optional[str]
    tag: Optional[str]
    before: dict[str, Any]
    after: dict[str, Any]
    ctx: RunContext

    def to_result(self) -> dict[str, Any]:
        signature: dict[str, Any] = {'digest': self.signature_digest, 'format': self.fmt}
        if self.tag:
            signature['tag'] = self.tag
        result = {'changed': self.changed, 'digest': self.digest, 'signature': signature}
        if self.ctx.diff_mode:
            result['diff'] = {'before': self.before, 'after': self.after}
        return result


def _state(count: int, fingerprints: Sequence[str]) -> dict[str, Any]:
    return {'signatures': count, 'key_fingerprints': sorted(fingerprints)}


def _ensure(client: RegistryClient, repository: str, data: bytes) -> None:
    """A small blob made here (a payload, a bundle, the empty config), uploaded unless the registry has it."""
    digest = compute_digest(data)
    if client.head_blob(repository, digest) is None:
        upload_bytes(client, repository, data, digest)


def _unchanged(digest: str, fmt: str, manifest: Manifest, tag: Optional[str], count: int, fingerprint: str,
               ctx: RunContext) -> SignOutcome:
    state = _state(count, [fingerprint])
    return SignOutcome(digest, fmt, False, manifest.digest, tag, state, dict(state), ctx)


def sign_image(client: RegistryClient, repository: str, digest: str, docker_reference: str, signer: Signer,
               fmt: str, ctx: RunContext, subject: Optional[dict[str, Any]] = None) -> SignOutcome:
    """Sign ``digest`` with ``signer`` unless a signature by the same key for it already verifies.

    ``fmt`` 'simplesigning' appends a layer to the manifest under ``sha256-<hex>.sig`` (as
    cosign does); 'bundle' adds a referrer. ``subject`` (``media_type``, ``size`` of the image)
    saves a request when the caller resolved the image already.
    """
    validate_digest(digest, what='image digest')
    if fmt not in FORMATS:
        raise InvalidInputError('format must be one of %s, not %s' % (', '.join(FORMATS), fmt))
    verifier = Verifier(keys=[signer.public_pem])
    if fmt == 'bundle':
        return _sign_bundle(client, repository, digest, signer, verifier, ctx, subject)
    return _sign_simplesigning(client, repository, digest, docker_reference, signer, verifier, ctx)


def _sign_simplesigning(client: RegistryClient, repository: str, digest: str, docker_reference: str, signer: Signer,
                        verifier: Verifier, ctx: RunContext) -> SignOutcome:
    tag = sig_tag(digest)
    try:
        existing: Optional[Manifest] = client.get_manifest(repository, tag)
    except NotFoundError:
        existing = None
    layers: list[dict[str, Any]] = []
    if existing is not None:
        if existing.media_type not in IMAGE_TYPES:
            raise IntegrityError('The tag %s of %s holds a %s, not a signature manifest; refusing to replace it'
                                 % (tag, repository, existing.media_type))
        layers = list(existing.data.get('layers') or [])
        entries = verify_manifest(client, repository, digest, existing, 'simplesigning', verifier, 'tag', tag,
                                  stop_early=True)
        if any(entry['verified'] for entry in entries):
            return _unchanged(digest, 'simplesigning', existing, tag, len(layers), signer.key_fingerprint, ctx)
    payload, annotations = signer.simplesigning(docker_reference, digest)
    layers.append(_descriptor(SIMPLESIGNING, payload, annotations))
    # The OCI empty config, as cosign's OCI 1.1 mode writes it: cosign reads a signature manifest's layers
    # and annotations, never its config. cosign's .sig image config lists the layers and so changes with
    # every signature, a second upload; the empty one is uploaded once per repository, then a HEAD.
    raw = _dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': dict(EMPTY_DESCRIPTOR), 'layers': layers})
    before, after = _state(len(layers) - 1, []), _state(len(layers), [signer.key_fingerprint])
    if ctx.check_mode:
        return SignOutcome(digest, 'simplesigning', True, None, tag, before, after, ctx)
    _ensure(client, repository, payload)
    _ensure(client, repository, EMPTY_DATA)
    written = _put_checked(client, repository, tag, raw)
    return SignOutcome(digest, 'simplesigning', True, written, tag, before, after, ctx)


def _put_checked(client: RegistryClient, repository: str, reference: str, raw: bytes) -> str:
    expected = compute_digest(raw)
    answered = client.put_manifest(repository, reference, raw, OCI_MANIFEST)
    if answered and answered != expected:
        raise IntegrityError('The registry stored the signature manifest for %s:%s as %s, not %s'
                             % (repository, reference, answered, expected),
                             details={'expected_digest': expected, 'actual_digest': answered})
    return expected


def _sign_bundle(client: RegistryClient, repository: str, digest: str, signer: Signer, verifier: Verifier,
                 ctx: RunContext, subject: Optional[dict[str, Any]]) -> SignOutcome:
    referrers = [r for r in discover(client, repository, digest, artifact_types=[BUNDLE_V03], include_tags=False)
                 if r.artifact_type == BUNDLE_V03]
    for referrer in referrers:
        try:
            manifest = client.get_manifest(repository, referrer.digest)
        except NotFoundError:
            continue
        entries = verify_manifest(client, repository, digest, manifest, 'bundle', verifier, referrer.source, None,
                                  stop_early=True)
        if any(entry['verified'] for entry in entries):
            return _unchanged(digest, 'bundle', manifest, None, len(referrers), signer.key_fingerprint, ctx)
    subject = _subject(client, repository, digest, subject)
    bundle = signer.bundle(digest, subject['size'], subject['media_type'])
    raw = _dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'artifactType': BUNDLE_V03,
                  'config': dict(EMPTY_DESCRIPTOR),
                  'layers': [_descriptor(BUNDLE_V03, bundle)],
                  'subject': {'mediaType': subject['media_type'], 'digest': digest, 'size': subject['size']},
                  'annotations': dict(BUNDLE_ANNOTATIONS)})
    before, after = _state(len(referrers), []), _state(len(referrers) + 1, [signer.key_fingerprint])
    if ctx.check_mode:
        return SignOutcome(digest, 'bundle', True, None, None, before, after, ctx)
    _ensure(client, repository, bundle)
    _ensure(client, repository, EMPTY_DATA)
    written, dummy = put_referrer(client, repository, raw, OCI_MANIFEST)
    return SignOutcome(digest, 'bundle', True, written, None, before, after, ctx)


def _subject(client: RegistryClient, repository: str, digest: str, known: Optional[dict[str, Any]]) -> dict[str, Any]:
    """Media type and size of the image, which a bundle's subject descriptor names."""
    if known and known.get('media_type') and isinstance(known.get('size'), int):
        return known
    found = client.resolve(repository, digest)
    if found is None:
        raise NotFoundError('The image %s@%s does not exist' % (repository, digest))
    if not isinstance(found.get('size'), int) or found['size'] < 0:
        manifest = found.get('manifest') or client.get_manifest(repository, digest)
        found = {'digest': digest, 'media_type': manifest.media_type, 'size': manifest.size}
    return found


def sign_reference(client: RegistryClient, reference: ImageReference, signer: Signer, fmt: str,
                   ctx: RunContext) -> SignOutcome:
    """``sign``: resolve ``reference`` once, then sign the digest it resolved to."""
    found = resolve_source(client, reference)
    return sign_image(client, reference.repository, found['digest'], reference.repository_name, signer, fmt, ctx,
                      subject=found)
