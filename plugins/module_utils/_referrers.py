# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What refers to a manifest (OCI 1.1 referrers): finding it, and writing a referrer so others find it.

Three places hold referrers, and :func:`discover` reads them in this order: the referrers API
(``GET /v2/<name>/referrers/<digest>``, every page); where a registry has no such API (404),
the fallback index that OCI 1.1 clients keep under the tag ``sha256-<hex>``; and the tags cosign
derives from the digest (``sha256-<hex>.sig``, ``.att``, ``.sbom``). A registry with the API
registers a manifest with a ``subject`` itself when it is PUT (and says so with ``OCI-Subject``);
for one without it the writer adds the manifest to the fallback index (:func:`attach`). Every
request goes through :class:`RegistryClient`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    DOCKER_CONFIG,
    INDEX_TYPES,
    OCI_INDEX,
    Manifest,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import (
    MAX_MANIFEST_SIZE,
    RegistryClient,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import next_page_url

# Bounds of one referrers listing: far above any real image's, reached quickly by a hostile registry.
MAX_REFERRER_PAGES = 100
MAX_REFERRERS = 10000
COSIGN_SUFFIXES = ('.sig', '.att', '.sbom')
# A config of one of these types makes a manifest an image, not an artifact of that type.
IMAGE_CONFIG_TYPES = ('application/vnd.oci.image.config.v1+json', DOCKER_CONFIG)
# The artifactType of a manifest whose config is the OCI empty descriptor tells nothing either.
EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json'


@dataclass
class Referrer:
    """One manifest that refers to another: its descriptor, and where it was found."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str]
    source: str                      # 'api' | 'fallback' | 'tag'
    tag: str | None = None           # for source 'tag': the cosign tag it was found under
    manifest: Manifest | None = field(default=None, repr=False, compare=False)  # when discovery fetched it

    def to_dict(self) -> dict[str, Any]:
        return {'digest': self.digest, 'media_type': self.media_type, 'size': self.size,
                'artifact_type': self.artifact_type, 'annotations': dict(self.annotations),
                'source': self.source, 'tag': self.tag}


def descriptor_of(digest: str, media_type: str, size: int, artifact_type: str | None,
                  annotations: dict[str, str] | None) -> dict[str, Any]:
    descriptor: dict[str, Any] = {'mediaType': media_type, 'digest': digest, 'size': size}
    if artifact_type:
        descriptor['artifactType'] = artifact_type
    if annotations:
        descriptor['annotations'] = dict(annotations)
    return descriptor


def fallback_tag(digest: str) -> str:
    """The tag of the fallback referrers index of ``digest`` (``sha256-<hex>``)."""
    algorithm, encoded = validate_digest(digest, what='subject digest')
    return '%s-%s' % (algorithm, encoded)


def cosign_tags(digest: str) -> list[str]:
    """The tags cosign keeps signatures, attestations and SBOMs of ``digest`` under."""
    return [fallback_tag(digest) + suffix for suffix in COSIGN_SUFFIXES]


def artifact_type_of(manifest: Manifest) -> str | None:
    """What kind of artifact a manifest is: its ``artifactType``, else its config's media type, else its layers'.

    A plain image config (or the empty config) says nothing about the kind; cosign's ``.sig``
    manifests have an image config and layers of the simple-signing type, which is the kind.
    """
    data = manifest.data
    if isinstance(data.get('artifactType'), str) and data['artifactType']:
        return str(data['artifactType'])
    config = data.get('config')
    config_type = config.get('mediaType') if isinstance(config, dict) else None
    if isinstance(config_type, str) and config_type not in IMAGE_CONFIG_TYPES + (EMPTY_CONFIG,):
        return config_type
    types = {layer.get('mediaType') for layer in data.get('layers') or [] if isinstance(layer, dict)}
    if len(types) == 1:
        only = types.pop()
        return only if isinstance(only, str) else None
    return None


def _annotations(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items() if isinstance(item, str)}


def _entry(entry: Any, source: str, what: str) -> Referrer:
    """A referrer from one entry of a referrers index; an entry that is no descriptor is refused."""
    if not isinstance(entry, dict) or not isinstance(entry.get('digest'), str) \
            or not isinstance(entry.get('mediaType'), str) or not isinstance(entry.get('size'), int) \
            or isinstance(entry.get('size'), bool) or entry['size'] < 0:
        raise IntegrityError('%s lists an entry that is not a descriptor (mediaType, digest, size): %s'
                             % (what, json.dumps(entry)[:200]))
    validate_digest(entry['digest'], what='referrer digest')
    artifact_type = entry.get('artifactType')
    return Referrer(entry['digest'], entry['mediaType'], entry['size'],
                    artifact_type if isinstance(artifact_type, str) and artifact_type else None,
                    _annotations(entry.get('annotations')), source)


def api_referrers(client: RegistryClient, repository: str, digest: str,
                  artifact_types: list[str] | None = None) -> list[Referrer] | None:
    """Every referrer the referrers API lists (all pages, bounded), or None when the registry has no such API.

    One artifact type is asked of the registry; when it does not say it filtered
    (``OCI-Filters-Applied``), or for several types, the list is filtered here.
    """
    asked = artifact_types[0] if artifact_types and len(artifact_types) == 1 else None
    what = 'The referrers listing of %s@%s' % (repository, digest)
    found: list[Referrer] = []
    seen: set[str] = set()
    next_url: str | None = None
    filtered = True
    while not seen or next_url:
        if len(seen) >= MAX_REFERRER_PAGES:
            raise IntegrityError('%s has more than %d pages; giving up' % (what, MAX_REFERRER_PAGES), url=next_url)
        page = client.referrers_page(repository, digest, artifact_type=asked, url=next_url)
        if page is None:
            if seen:
                raise NotFoundError('%s ended with a page that does not exist' % what, url=next_url)
            return None
        seen.add(page.url)
        filtered = filtered and page.filtered and asked is not None
        found.extend(_entry(entry, 'api', what) for entry in page.document.get('manifests') or [])
        if len(found) > MAX_REFERRERS:
            raise IntegrityError('%s has more than %d entries; giving up' % (what, MAX_REFERRERS), url=page.url)
        next_url = next_page_url(page.url, page.link, seen, what, loop_error=IntegrityError)
    return found if filtered else _of_types(found, artifact_types)


def _of_types(referrers: list[Referrer], artifact_types: list[str] | None) -> list[Referrer]:
    if not artifact_types:
        return referrers
    return [referrer for referrer in referrers if referrer.artifact_type in artifact_types]


def read_fallback_index(client: RegistryClient, repository: str, subject: str) -> Manifest | None:
    """The fallback referrers index of ``subject``, or None when its tag does not exist."""
    tag = fallback_tag(subject)
    try:
        index = client.get_manifest(repository, tag)
    except NotFoundError:
        return None
    if index.media_type not in INDEX_TYPES:
        raise IntegrityError('The tag %s of %s, where the referrers of %s are listed, holds a %s, not an image index'
                             % (tag, repository, subject, index.media_type))
    return index


def fallback_referrers(client: RegistryClient, repository: str, digest: str) -> list[Referrer]:
    """The referrers listed in the fallback index of ``digest`` (none when there is no such tag)."""
    index = read_fallback_index(client, repository, digest)
    if index is None:
        return []
    what = 'The referrers index %s:%s' % (repository, fallback_tag(digest))
    return [_entry(entry, 'fallback', what) for entry in index.data.get('manifests') or []]


def tag_referrers(client: RegistryClient, repository: str, digest: str) -> list[Referrer]:
    """The manifests under the cosign tags of ``digest`` that exist (one manifest GET each)."""
    found = []
    for tag in cosign_tags(digest):
        try:
            manifest = client.get_manifest(repository, tag)
        except NotFoundError:
            continue
        found.append(Referrer(manifest.digest, manifest.media_type, manifest.size, artifact_type_of(manifest),
                              _annotations(manifest.data.get('annotations')), 'tag', tag=tag, manifest=manifest))
    return found


def discover(client: RegistryClient, repository: str, digest: str, artifact_types: list[str] | None = None,
             include_tags: bool = True) -> list[Referrer]:
    """Everything that refers to the manifest ``digest`` of ``repository``, de-duplicated by digest.

    The referrers API first; where the registry has none, the fallback index; then, with
    ``include_tags``, the cosign tags. With ``artifact_types``, only referrers of those types.
    """
    validate_digest(digest, what='subject digest')
    found = api_referrers(client, repository, digest, artifact_types)
    if found is None:
        found = _of_types(fallback_referrers(client, repository, digest), artifact_types)
    if include_tags:
        found = found + _of_types(tag_referrers(client, repository, digest), artifact_types)
    unique: dict[str, Referrer] = {}
    for referrer in found:
        kept = unique.setdefault(referrer.digest, referrer)
        if kept is not referrer and kept.tag is None and referrer.tag:
            kept.tag = referrer.tag  # listed and tagged both: a copy keeps both
    return list(unique.values())


# -- writing -------------------------------------------------------------------------
def _empty_index() -> dict[str, Any]:
    return {'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': []}


def _entries(index: Manifest | None) -> list[Any]:
    return list(index.data.get('manifests') or []) if index is not None else []


def _lists(index: Manifest | None, digest: str) -> bool:
    return any(isinstance(entry, dict) and entry.get('digest') == digest for entry in _entries(index))


def _put_index(client: RegistryClient, repository: str, subject: str, base: Manifest | None,
               entries: list[Any]) -> None:
    document = dict(base.data) if base is not None else _empty_index()
    document['manifests'] = entries
    raw = json.dumps(document, separators=(',', ':')).encode('utf-8')
    if len(raw) > MAX_MANIFEST_SIZE:
        raise IntegrityError('The referrers index %s:%s would be larger than %d bytes; not writing it'
                             % (repository, fallback_tag(subject), MAX_MANIFEST_SIZE))
    client.put_manifest(repository, fallback_tag(subject), raw, OCI_INDEX)


def attach(client: RegistryClient, repository: str, subject_digest: str, descriptor: dict[str, Any]) -> bool:
    """Add ``descriptor`` to the fallback index of ``subject_digest``; True when it was written.

    Read, add, write, then read again. Distribution has no conditional PUT, so the two sides
    of the race are narrowed by hand: right before the PUT a HEAD tells whether another
    writer's index landed since our read (then it is read again and merged, once), and after
    it a read tells whether a writer that read before us replaced ours (then its entries and
    ours are merged and written once more). What is left is a writer landing between that
    HEAD and our PUT, a window of one round trip.
    """
    digest = descriptor.get('digest')
    if not isinstance(digest, str):
        raise InvalidInputError('A referrer descriptor needs a digest, got %r' % (digest,))
    validate_digest(digest, what='referrer digest')
    index = read_fallback_index(client, repository, subject_digest)
    if _lists(index, digest):
        return False
    head = client.head_manifest(repository, fallback_tag(subject_digest))
    if (head['digest'] if head else None) != (index.digest if index is not None else None):
        index = read_fallback_index(client, repository, subject_digest)  # moved under us: merge with the new one
        if _lists(index, digest):
            return False
    _put_index(client, repository, subject_digest, index, _entries(index) + [descriptor])
    again = read_fallback_index(client, repository, subject_digest)
    if not _lists(again, digest):
        _put_index(client, repository, subject_digest, again, _entries(again) + [descriptor])
    return True


@dataclass
class Listing:
    """What a repository lists as referrers of one subject, and whether it has the referrers API."""

    digests: set[str]
    api: bool


def listing(client: RegistryClient, repository: str, subject: str) -> Listing:
    """The digests the referrers API lists for ``subject`` (every page), or where there is none its fallback index.

    Read once per subject by a writer: a registry with the API is its own authority (a
    fallback index left there by older clients is not asked).
    """
    found = api_referrers(client, repository, subject)
    if found is not None:
        return Listing({referrer.digest for referrer in found}, True)
    return Listing({referrer.digest for referrer in fallback_referrers(client, repository, subject)}, False)


@dataclass
class Presence:
    """Where a referrer stands in a repository: stored (a HEAD), listed as a referrer of its subject, API or not."""

    present: bool
    listed: bool
    api: bool | None                 # None: not asked (the manifest is not stored)


def presence(client: RegistryClient, repository: str, subject: str, digest: str,
             known: Listing | None = None) -> Presence:
    """Whether the manifest ``digest`` is stored in ``repository`` and listed as a referrer of ``subject``.

    A HEAD, then (when stored) the subject's listing, unless the caller read it already
    (``known``: one read for all the referrers of a subject).
    """
    present = client.head_manifest(repository, digest) is not None
    if not present:
        return Presence(False, False, known.api if known is not None else None)
    known = known or listing(client, repository, subject)
    return Presence(True, digest in known.digests, known.api)


def subject_of(manifest: Manifest) -> str:
    """The digest a manifest refers to (its ``subject``); one without is refused."""
    subject = manifest.data.get('subject')
    if not isinstance(subject, dict) or not isinstance(subject.get('digest'), str):
        raise InvalidInputError('The manifest %s has no subject: it refers to nothing' % manifest.digest)
    validate_digest(subject['digest'], what='subject digest')
    return str(subject['digest'])


def register(client: RegistryClient, repository: str, manifest: Manifest, state: Presence) -> bool:
    """List a stored manifest with a subject as a referrer, where ``state`` says it is not; True when written.

    With the referrers API, one more PUT when it was stored but not listed (the API registers
    what is PUT; a manifest just PUT is registered already); without it, or when that PUT gets
    no ``OCI-Subject``, the fallback index.
    """
    if state.listed:
        return False
    if state.api and not state.present:
        return True
    if state.api:
        answer = client.put_manifest_subject(repository, manifest.digest, manifest.raw, manifest.media_type)
        if answer.subject:
            return True
    attach(client, repository, subject_of(manifest), manifest_descriptor(manifest))
    return True


def manifest_descriptor(manifest: Manifest) -> dict[str, Any]:
    """The descriptor a referrers index lists a manifest with (the OCI 1.1 rule for ``artifactType``:
    the manifest's own, else its config's media type)."""
    data = manifest.data
    artifact_type = data.get('artifactType')
    if not isinstance(artifact_type, str) or not artifact_type:
        config = data.get('config')
        artifact_type = config.get('mediaType') if isinstance(config, dict) else None
    return descriptor_of(manifest.digest, manifest.media_type, manifest.size,
                         artifact_type if isinstance(artifact_type, str) else None,
                         _annotations(data.get('annotations')))


def put_referrer(client: RegistryClient, repository: str, raw: bytes, media_type: str) -> tuple[str, bool]:
    """PUT a manifest that has a ``subject`` by its digest, listed where readers look; ``(digest, changed)``.

    When the registry does not answer ``OCI-Subject`` (no referrers API), its descriptor is
    added to the subject's fallback index. Idempotent: a manifest stored and listed already
    is not written again.
    """
    manifest = Manifest(raw, media_type)
    subject = subject_of(manifest)
    state = presence(client, repository, subject, manifest.digest)
    if state.present:
        return manifest.digest, register(client, repository, manifest, state)
    answer = client.put_manifest_subject(repository, manifest.digest, raw, manifest.media_type)
    if answer.digest and answer.digest != manifest.digest:
        raise IntegrityError('The registry stored the manifest %s in %s as %s'
                             % (manifest.digest, repository, answer.digest))
    if not answer.subject:
        attach(client, repository, subject, manifest_descriptor(manifest))
    return manifest.digest, True
