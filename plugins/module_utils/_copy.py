# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Copying images between repositories and registries (``copy``).

:func:`copy_image` resolves the source, settles what the destination already
has (an unchanged copy costs HEADs only), walks the source image (``_image.walk``,
with an optional platform subset), and publishes it (``_publish.publish``): every
blob first, then each child manifest by digest, then the tag, last. With
``referrers``, the signatures, attestations and SBOMs of the image go before the
tag. The result is a :class:`CopyOutcome`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._image import RepositoryManifests, walk
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    INDEX_TYPES,
    MAX_INDEX_DEPTH,
    Manifest,
    Platform,
    accepted_suffix,
    check_config,
    describe_platforms,
    select_platform,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import DEFAULT_FANOUT, check_workers
from ansible_collections.imagelayers.registry.plugins.module_utils._publish import (
    ImagePlan,
    PublishOutcome,
    plan_from_walk,
    publish,
    publishable,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._referrers import (
    Listing,
    Referrer,
    discover,
    listing,
    presence,
    register,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    TagSync,
    check_expected_digest,
    plan_put,
    resolve_source,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import BlobSource, TransferStats


@dataclass
class CopyOutcome(PublishOutcome):
    """What ``copy`` did: the publication, where it came from, and the referrers copied with it."""

    src_ref: Any = None
    source_digest: str = ''
    referrers: Optional[List[Dict[str, Any]]] = None  # one entry per referrer, when asked for
    signatures: Optional[List[Dict[str, Any]]] = None  # the source's, examined by the gate (verify_signatures)
    signature: Any = None  # _signatures.SignOutcome of the destination, with sign

    @property
    def digest_changed(self) -> bool:
        return self.plan.digest != self.source_digest

    def to_result(self) -> Dict[str, Any]:
        result = super().to_result()
        result.update({'source_digest': self.source_digest, 'digest_changed': self.digest_changed,
                       'src': self.src_ref.name})
        if self.referrers is not None:
            add_referrers(result, self.referrers)
        if self.signatures is not None:
            result['signatures'] = self.signatures
        if self.signature is not None:
            add_signature(result, self.signature.to_result())
        return result


def add_signature(result: Dict[str, Any], signed: Dict[str, Any]) -> Dict[str, Any]:
    """Fold the destination's signing into a copy's result: ``signature``, ``changed`` and the diff's ``signatures``."""
    result['signature'] = signed['signature']
    result['changed'] = result['changed'] or signed['changed']
    diff = result.get('diff')
    if diff is not None and 'diff' in signed:
        diff['before']['signatures'] = signed['diff']['before']
        diff['after']['signatures'] = signed['diff']['after']
    return result


def add_referrers(result: Dict[str, Any], referrers: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Fold the referrer copies into a copy's result: ``referrers``, ``changed`` and the diff.

    The diff names a tagged referrer by its tag, one listed by the API or a fallback index by its digest.
    """
    result['referrers'] = referrers
    if any(entry['changed'] for entry in referrers):
        result['changed'] = True
    diff = result.get('diff')
    if diff is not None:
        for entry in referrers:
            key = entry.get('tag') or entry['digest']
            if entry['before']:
                diff['before'][key] = entry['before']
            diff['after'][key] = entry['digest']
    return result


# -- copy from a registry -------------------------------------------------------------
class RegistryBlobSource(BlobSource):
    """Blobs read from a repository of a source registry, streamed as they arrive."""

    def __init__(self, client: Any, repository: str, mount_from: Optional[str] = None) -> None:
        self.client = client
        self.repository = repository
        self.mount_from = mount_from
        self.name = '%s/%s' % (client.api_host, repository)

    def open(self, descriptor: Dict[str, Any]) -> Any:
        """The blob's resumable reader: a Content-Length that disagrees with the descriptor is refused unread."""
        return self.client.blob_reader(self.repository, descriptor['digest'], descriptor.get('size'),
                                       what='blob %s from %s' % (descriptor['digest'], self.name)).open()


def parse_platforms(platforms: Optional[List[str]]) -> Optional[List[Platform]]:
    if platforms is None:
        return None
    if not platforms:
        raise InvalidInputError('platforms is empty: leave it out to copy every platform')
    return [Platform.parse(p) for p in platforms]


def _filtered_index(index: Manifest, wanted: List[Platform]) -> Tuple[List[Dict[str, Any]], List[Platform]]:
    """``(entries, missing)``: for each ``wanted`` platform the one entry it picks, and those nothing matched.

    Each platform picks its best entry the way ``manifest_info`` does (see ``select_platform``):
    ``linux/arm`` takes one arm image, not every arm variant. The entries are each listed once.
    """
    candidates = index.data.get('manifests') or []
    entries: List[Dict[str, Any]] = []
    missing = []
    for platform in wanted:
        entry = select_platform(candidates, platform)
        if entry is None:
            missing.append(platform)
        elif not any(entry is kept for kept in entries):
            entries.append(entry)
    return entries, missing


def subset_index(index: Manifest, wanted: List[Platform]) -> Tuple[Optional[Manifest], Optional[Dict[str, Any]]]:
    """A new index with the entries of ``index`` for the ``wanted`` platforms, in the index's order.

    Returns ``(manifest, None)`` for a new index, ``(None, entry)`` when one image is left (one
    platform asked for, or several that pick the same image: the caller copies that image
    manifest), or ``(None, None)`` when the platforms keep every entry (the index as it is).
    """
    entries, missing = _filtered_index(index, wanted)
    if missing:
        raise InvalidInputError('The source index has no manifest for platform%s %s; it has: %s'
                                % ('' if len(missing) == 1 else 's',
                                   ', '.join('%s%s' % (p, accepted_suffix(p)) for p in missing),
                                   describe_platforms(index.children())))
    every = index.data['manifests']
    ordered = [c for c in every if any(c is kept for kept in entries)]
    if len(ordered) == 1:
        return None, ordered[0]
    if len(ordered) == len(every):
        return None, None
    document = dict(index.data)
    document['manifests'] = ordered
    raw = json.dumps(document, separators=(',', ':')).encode('utf-8')
    return Manifest(raw, index.media_type), None


def _check_single_platform(client: Any, repository: str, top: Manifest, wanted: List[Platform]) -> None:
    """A single-platform source must be one of the platforms asked for (its config says which it is)."""
    descriptor = top.config_descriptor()
    if descriptor is None:
        raise IntegrityError('The image manifest %s has no config descriptor' % top.digest)
    config = client.get_json_blob(repository, descriptor, what='image config')
    declared = check_config(config, descriptor['digest'])
    if not any(p.matches(declared) for p in wanted):
        raise InvalidInputError('The source is a single-platform image for %s, not for %s'
                                % (declared, ', '.join(str(p) for p in wanted)))


def source_plan(client: Any, repository: str, top: Manifest, wanted: Optional[List[Platform]] = None) -> ImagePlan:
    """An ImagePlan for the manifest ``top`` of ``repository``, reading child manifests by digest.

    The children of an index are read in parallel; nested indexes are followed down to
    MAX_INDEX_DEPTH levels (see ``_image.walk``).
    """
    if top.is_schema1:
        raise InvalidInputError('%s@%s is a Docker schema1 manifest, which cannot be copied: its signature embeds '
                                'the repository and tag it was pushed with' % (repository, top.digest))
    if not top.is_image and not top.is_index:
        raise InvalidInputError('The source manifest has media type %s, which cannot be copied' % top.media_type)
    if top.is_image and wanted:
        _check_single_platform(client, repository, top, wanted)
    nodes = walk(RepositoryManifests(client, repository, fanout=DEFAULT_FANOUT), top)
    return plan_from_walk(publishable(
        nodes, lambda node: 'The index %s@%s nests indexes deeper than %d levels, which copy does not follow'
        % (repository, node.digest, MAX_INDEX_DEPTH),
        lambda node: 'The index %s lists %s of media type %s, which cannot be copied'
        % (node.parent, node.digest, node.manifest.media_type if node.manifest else None)))


@dataclass
class _Copy:
    """One copy: the options, the source resolved, the destination's current tag."""

    src_client: Any
    src_ref: Any
    dest_client: Any
    dest_ref: Any
    ctx: RunContext
    wanted: Optional[List[Platform]]
    overwrite: bool
    referrers: bool
    found: Dict[str, Any] = field(default_factory=dict)
    current: Optional[Dict[str, Optional[str]]] = None

    def outcome(self, plan: ImagePlan, sync: Optional[TagSync], stats: TransferStats) -> CopyOutcome:
        outcome = CopyOutcome(self.dest_ref, plan, sync, stats, self.ctx.diff_mode, src_ref=self.src_ref,
                              source_digest=self.found['digest'])
        if self.referrers:
            outcome.referrers = copy_referrers(self.src_client, self.src_ref, self.dest_client, self.dest_ref,
                                               self.found, self.wanted, self.ctx)
        return outcome

    def unchanged(self, digest: str, media_type: Optional[str]) -> CopyOutcome:
        """The destination has the image already: only its referrers may have something to do."""
        plan = ImagePlan(_Described(digest, media_type), images=[])
        sync = None
        if self.dest_ref.tag and self.current is not None:
            entries = plan_put(self.current, [self.dest_ref.tag], digest,
                               repository_name=self.dest_ref.repository_name)
            sync = TagSync(self.dest_ref.repository_name, digest, entries)
        return self.outcome(plan, sync, TransferStats())

    def already_there(self) -> bool:
        """True when the destination has the source as it is (nothing but HEADs); a conflict raises."""
        source_digest = self.found['digest']
        dest_ref, dest_tag = self.dest_ref, self.dest_ref.tag
        if dest_tag:
            head = self.dest_client.resolve(dest_ref.repository, dest_tag)
            self.current = {dest_tag: head['digest'] if head else None}
            if self.wanted is None and self.current[dest_tag] == source_digest:
                return True
            if self.wanted is None and self.current[dest_tag] is not None and not self.overwrite:
                plan_put(self.current, [dest_tag], source_digest, overwrite=False,
                         repository_name=dest_ref.repository_name)
        elif self.wanted is None and dest_ref.digest == source_digest:
            return self.dest_client.head_manifest(dest_ref.repository, source_digest) is not None
        return False

    def top(self) -> Tuple[Manifest, bool]:
        """The manifest to write (the source's, or its platform subset) and whether it is a subset."""
        top = self.found.get('manifest')
        if top is None:
            top = self.src_client.get_manifest(self.src_ref.repository, self.found['digest'])
        self.found['manifest'] = top  # the referrers look at the same source manifest, fetched once
        if self.wanted and top.is_index:
            new_index, single = subset_index(top, self.wanted)
            if single is not None:
                return self.src_client.get_manifest(self.src_ref.repository, single['digest']), True
            if new_index is not None:
                return new_index, True
        return top, False

    def run(self) -> CopyOutcome:
        if self.already_there():
            return self.unchanged(self.found['digest'], self.found['media_type'])
        top, subset = self.top()
        dest_ref = self.dest_ref
        if dest_ref.digest and dest_ref.digest != top.digest:
            raise InvalidInputError('The destination %s names digest %s, but the image to write has digest %s'
                                    % (dest_ref.name, dest_ref.digest, top.digest))
        if dest_ref.tag and self.current is not None and self.current[dest_ref.tag] == top.digest:
            return self.unchanged(top.digest, top.media_type)
        src_ref = self.src_ref
        plan = source_plan(self.src_client, src_ref.repository, top, self.wanted if not subset else None)
        same_registry = self.src_client.api_host == self.dest_client.api_host
        mount_from = src_ref.repository if same_registry and src_ref.repository != dest_ref.repository else None
        source = RegistryBlobSource(self.src_client, src_ref.repository, mount_from=mount_from)
        outcome = self.outcome(plan, None, TransferStats())  # the referrers go before the image
        outcome.sync, outcome.stats = publish(self.dest_client, dest_ref, plan, source, self.ctx,
                                              overwrite=self.overwrite, current=self.current)
        return outcome


def copy_image(src_client: Any, src_ref: Any, dest_client: Any, dest_ref: Any, ctx: Optional[RunContext] = None,
               platforms: Optional[List[str]] = None, overwrite: bool = True, expected_digest: Optional[str] = None,
               referrers: bool = False, verify_signatures: Optional[Dict[str, Any]] = None,
               require_artifact_types: Optional[List[str]] = None,
               sign: Optional[Dict[str, Any]] = None) -> CopyOutcome:
    """Copy the image ``src_ref`` names to ``dest_ref``.

    With ``referrers``, the signatures, attestations and SBOMs of the image (see
    :func:`copy_referrers`) are copied too, after every check and before the image
    itself, so they are there when the tag appears; ``outcome.referrers`` lists them.
    ``verify_signatures`` (signature_verify's options) and ``require_artifact_types`` gate
    the copy on the source's digest before anything is written; ``sign`` (sign's options)
    signs what the destination holds afterwards.
    """
    ctx = ctx or RunContext()
    check_workers(ctx.workers)
    copy = _Copy(src_client, src_ref, dest_client, dest_ref, ctx, parse_platforms(platforms), overwrite, referrers)
    signer = _signer(sign)  # a wrong key or passphrase fails before any request
    copy.found = resolve_source(src_client, src_ref)
    check_expected_digest(copy.found['digest'], expected_digest, src_ref.name)
    signatures = _gate(src_client, src_ref, copy.found['digest'], verify_signatures, require_artifact_types)
    outcome = copy.run()
    outcome.signatures = signatures
    if signer is not None and sign is not None:
        outcome.signature = _sign_destination(dest_client, dest_ref, outcome.plan, signer, sign['format'], ctx)
    return outcome


# -- trust: the gate before a copy, the signature after it ------------------------------
# _signatures is imported only by a copy that asks for it: it loads cryptography, some 35 ms.
def _gate(src_client: Any, src_ref: Any, digest: str, verify: Optional[Dict[str, Any]],
          require_artifact_types: Optional[List[str]]) -> Optional[List[Dict[str, Any]]]:
    """The source's signatures examined by the gate (None when not asked); raises unless the gate passes."""
    if verify is None and not require_artifact_types:
        return None
    from ansible_collections.imagelayers.registry.plugins.module_utils import _signatures
    verifier = _signatures.verifier_from_params(verify) if verify is not None else None
    return _signatures.verify_gate(src_client, src_ref.repository, digest, verifier, require_artifact_types,
                                   name=src_ref.repository_name)


def _signer(sign: Optional[Dict[str, Any]]) -> Any:
    if sign is None:
        return None
    from ansible_collections.imagelayers.registry.plugins.module_utils._sigstore import Signer
    return Signer(sign['key'], sign.get('passphrase'))


def _sign_destination(dest_client: Any, dest_ref: Any, plan: ImagePlan, signer: Any, fmt: str,
                      ctx: RunContext) -> Any:
    """Sign the digest the destination holds now (or would, in check mode)."""
    from ansible_collections.imagelayers.registry.plugins.module_utils._signatures import sign_image
    top = plan.top
    size = getattr(top, 'size', None)
    subject = {'media_type': top.media_type, 'size': size} if isinstance(size, int) else None
    return sign_image(dest_client, dest_ref.repository, plan.digest, dest_ref.repository_name, signer, fmt, ctx,
                      subject=subject)


# -- referrers: signatures, attestations, SBOMs ---------------------------------------
# What refers to a manifest is found by _referrers.discover: the OCI 1.1 referrers API, or the
# fallback index under sha256-<hex> where a registry has no such API, and cosign's sha256-<hex>.sig,
# .att and .sbom tags. A tagged one keeps its tag at the destination; the others are written
# with put_referrer semantics: the destination's API lists them, or its fallback index does.
def referrer_subjects(src_client: Any, src_ref: Any, found: Dict[str, Any],
                      wanted: Optional[List[Platform]] = None) -> List[str]:
    """The manifest digests whose referrers go with a copy: those the destination keeps.

    The top manifest, unless a platform subset gives it a new digest; and every child of an
    index, or only those of the platforms ``wanted``.
    """
    subjects = [] if wanted else [found['digest']]
    if found.get('media_type') in INDEX_TYPES:
        index = found.get('manifest') or src_client.get_manifest(src_ref.repository, found['digest'])
        if wanted:
            entries = _filtered_index(index, wanted)[0]
        else:
            entries = [c for c in index.data.get('manifests') or [] if isinstance(c, dict)]
        subjects.extend(c['digest'] for c in entries if c.get('digest') and c['digest'] not in subjects)
    return subjects


def _referrer_entry(copied: Optional[CopyOutcome], digest: str, tag: Optional[str], changed: bool,
                    before: Optional[str]) -> Dict[str, Any]:
    entry: Dict[str, Any] = {'tag': tag, 'digest': digest, 'changed': changed, 'before': before}
    stats = copied.stats.to_dict() if copied is not None else TransferStats().to_dict()
    entry.update({key: value for key, value in stats.items()
                  if key in ('blobs_copied', 'blobs_mounted', 'bytes_transferred')})
    return entry


def _copy_tagged(src_client: Any, src_ref: Any, dest_client: Any, dest_ref: Any, referrer: Referrer,
                 ctx: RunContext) -> Dict[str, Any]:
    """A referrer found under a cosign tag: copied like an image to the same tag (moved when the source's moved)."""
    tag = referrer.tag or ''
    copied = copy_image(src_client, src_ref.with_tag(tag), dest_client, dest_ref.with_tag(tag), ctx)
    sync = copied.sync  # a copy to a tag always has one: it writes (or keeps) that tag
    return _referrer_entry(copied, copied.plan.digest, tag, sync.changed if sync is not None else False,
                           sync.entries[0].get('before') if sync is not None else None)


def _copy_attached(src_client: Any, src_ref: Any, dest_client: Any, dest_ref: Any, subject: str,
                   referrer: Referrer, known: Listing, ctx: RunContext) -> Dict[str, Any]:
    """A referrer found by the API or a fallback index: copied by digest, then listed at the destination.

    ``known`` is what the destination lists for the subject: its referrers API (which registers
    what is PUT), or its fallback index, which the referrer is added to. Already stored and
    listed: a HEAD, nothing written.
    """
    digest = referrer.digest
    state = presence(dest_client, dest_ref.repository, subject, digest, known)
    if state.listed:
        return _referrer_entry(None, digest, None, False, digest)
    copied = copy_image(src_client, src_ref.with_digest(digest), dest_client, dest_ref.with_digest(digest), ctx)
    if not ctx.check_mode:
        top = copied.plan.top
        manifest = top if isinstance(top, Manifest) else src_client.get_manifest(src_ref.repository, digest)
        register(dest_client, dest_ref.repository, manifest, state)
    return _referrer_entry(copied, digest, None, True, None)


def copy_referrers(src_client: Any, src_ref: Any, dest_client: Any, dest_ref: Any, found: Dict[str, Any],
                   wanted: Optional[List[Platform]], ctx: RunContext) -> List[Dict[str, Any]]:
    """Copy what refers to the image (see :func:`_referrers.discover`) to the destination repository.

    Returns one entry per referrer: ``{'subject', 'source', 'artifact_type', 'tag', 'digest',
    'changed', 'before', 'blobs_copied', 'blobs_mounted', 'bytes_transferred'}`` (``tag``
    None for a referrer found by the API or a fallback index).
    """
    copies = []
    for subject in referrer_subjects(src_client, src_ref, found, wanted):
        known: Optional[Listing] = None  # the destination's listing of the subject, read once when needed
        for referrer in discover(src_client, src_ref.repository, subject):
            if referrer.source == 'tag':
                entry = _copy_tagged(src_client, src_ref, dest_client, dest_ref, referrer, ctx)
            else:
                known = known or listing(dest_client, dest_ref.repository, subject)
                entry = _copy_attached(src_client, src_ref, dest_client, dest_ref, subject, referrer, known, ctx)
                if referrer.tag:  # listed and under a cosign tag too: cosign 2 readers look for the tag
                    tagged = _copy_tagged(src_client, src_ref, dest_client, dest_ref, referrer, ctx)
                    entry.update(tag=tagged['tag'], changed=entry['changed'] or tagged['changed'])
            entry.update({'subject': subject, 'source': referrer.source, 'artifact_type': referrer.artifact_type})
            copies.append(entry)
    return copies


class _Described:
    """Digest and media type of a manifest not fetched (the copy had nothing to do)."""

    def __init__(self, digest: str, media_type: Optional[str]) -> None:
        self.digest = digest
        self.media_type = media_type
