# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Retention: the ``prune`` plan (rules, ages, reference checks) and its execution, and ``delete``.

A prune is planned in full before anything is deleted, the same way in check mode and in a
real run, so an operator reviews in check mode exactly what the real run then does. The plan
decides every tag by its name first (``keep.tags``, ``keep.patterns``, ``keep.semver_latest``,
``candidates``); only the tags whose fate then depends on age cost more than one request
(their manifest and image config, for ``created``). Tags go through ``_tagging``'s
:class:`TagDeleter`, so the other tags of an image survive; with ``delete: manifests`` a
digest goes only when nothing kept refers to it (a kept tag, a kept index, a kept referrer).
Cosign's ``sha256-<hex>.sig``/``.att``/``.sbom`` tags and the OCI fallback referrers tag
``sha256-<hex>`` are never decided by the rules: they follow the manifest they refer to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    INDEX_TYPES,
    MAX_INDEX_DEPTH,
    Manifest,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import parallel_map
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference, validate_tag
from ansible_collections.imagelayers.registry.plugins.module_utils._referrers import IMAGE_CONFIG_TYPES, discover
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    PreconditionError,
    TagDeleter,
    deletion_disabled,
    probe_deletion,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import latest_versions, list_tags

KEEP = 'keep'
DELETE = 'delete'
# cosign's signature, attestation and SBOM tags, and the OCI 1.1 fallback referrers index tag.
_REFERRER_TAG = re.compile(r'(sha256)-([0-9a-f]{64})(\.sig|\.att|\.sbom)?')
_AGE = re.compile(r'(?:\s*[0-9]+\s*[smhdw])+\s*')
_AGE_PART = re.compile(r'([0-9]+)\s*([smhdw])')
_AGE_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_CREATED = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?'
                      r'([Zz]|[+-][0-9]{2}:?[0-9]{2})?')
NOTHING_DELETED = 'nothing was deleted'


# -- options -----------------------------------------------------------------------
def parse_age(text: Any) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``1d12h`` (s, m minutes, h, d, w) as a timedelta; anything else is refused."""
    if not isinstance(text, str) or not _AGE.fullmatch(text):
        raise InvalidInputError('Invalid age %r for keep.newer_than: give a number and a unit, s, m (minutes), '
                                'h, d or w, for example 30d, 12h, 2w or 1d12h' % (text,))
    seconds = sum(int(number) * _AGE_UNITS[unit] for number, unit in _AGE_PART.findall(text))
    if seconds <= 0:
        raise InvalidInputError('Invalid age %r for keep.newer_than: it must be longer than 0' % (text,))
    return timedelta(seconds=seconds)


def compile_regex(pattern: Any, option: str) -> re.Pattern[str]:
    """The compiled ``pattern`` of ``option``; one that does not compile is the user's error, named."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidInputError('%s must be a non-empty regular expression, got %r' % (option, pattern))
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInputError('%s: the regular expression %r does not compile: %s' % (option, pattern, exc))


@dataclass
class KeepRules:
    """What ``keep`` protects; ``empty`` when it protects nothing at all."""

    semver_latest: int = 0
    patterns: list[re.Pattern[str]] = field(default_factory=list)
    newer_than: Optional[timedelta] = None
    newer_than_text: Optional[str] = None
    tags: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.semver_latest or self.patterns or self.newer_than or self.tags)


@dataclass
class PruneOptions:
    """The validated options of a prune: every bad value is refused here, before any request."""

    keep: KeepRules
    candidates: Optional[re.Pattern[str]] = None
    delete: str = 'tags'
    referrers: bool = False
    force: bool = False

    @classmethod
    def from_params(cls, keep: dict[str, Any] | None, candidates: str | None = None, delete: str = 'tags',
                    referrers: bool = False, force: bool = False) -> PruneOptions:
        keep = keep or {}
        latest = keep.get('semver_latest') or 0
        if not isinstance(latest, int) or latest < 0:
            raise InvalidInputError('keep.semver_latest must be 0 or more, got %r' % (latest,))
        rules = KeepRules(semver_latest=latest,
                          patterns=[compile_regex(p, 'keep.patterns') for p in keep.get('patterns') or []],
                          tags=[validate_tag(t) for t in keep.get('tags') or []])
        if keep.get('newer_than') is not None:
            rules.newer_than, rules.newer_than_text = parse_age(keep['newer_than']), keep['newer_than']
        if delete not in ('tags', 'manifests'):
            raise InvalidInputError('delete must be tags or manifests, got %r' % (delete,))
        if referrers and delete != 'manifests':
            raise InvalidInputError('referrers: true needs delete: manifests (tags alone leave every referrer in place)')
        options = cls(rules, compile_regex(candidates, 'candidates') if candidates is not None else None,
                      delete, bool(referrers), bool(force))
        if rules.empty and options.candidates is None and not options.force:
            raise InvalidInputError('keep keeps nothing and candidates selects every tag: this would delete every tag '
                                    'of the repository. Give keep rules, or candidates, or force: true; %s'
                                    % NOTHING_DELETED)
        return options


# -- the plan ----------------------------------------------------------------------
@dataclass
class Entry:
    """One tag of the plan: its digest, ``keep`` or ``delete``, and the rule that decided."""

    tag: str
    digest: str
    media_type: Optional[str]
    action: str = KEEP
    rule: str = ''
    created: Optional[str] = None
    manifest: Optional[str] = None        # with delete: manifests, for a deleted tag: 'delete' or 'keep'
    manifest_rule: Optional[str] = None   # why the manifest stays (or goes)
    subject: Optional[str] = None         # for a referrer tag: the digest it refers to

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {'tag': self.tag, 'digest': self.digest, 'action': self.action, 'rule': self.rule}
        if self.created is not None:
            result['created'] = self.created
        if self.manifest is not None:
            result.update(manifest=self.manifest, manifest_rule=self.manifest_rule)
        return result


def referrer_subject(tag: str) -> str | None:
    """The digest a cosign tag or fallback referrers tag refers to, or None for an ordinary tag."""
    match = _REFERRER_TAG.fullmatch(tag)
    return '%s:%s' % (match.group(1), match.group(2)) if match else None


def semver_kept(tags: Sequence[str], count: int) -> set[str]:
    """The ``count`` highest semantic versions among ``tags`` (prereleases count, by semver precedence)."""
    if count <= 0:
        return set()
    return set(latest_versions(tags, count, prereleases=True))


def name_rule(tag: str, options: PruneOptions, latest: set[str]) -> tuple[str, str] | None:
    """``(action, rule)`` when the tag's name decides its fate; None when its age must."""
    keep = options.keep
    if tag in keep.tags:
        return KEEP, 'tags'
    for pattern in keep.patterns:
        if pattern.search(tag):
            return KEEP, 'patterns: %s' % pattern.pattern
    if tag in latest:
        return KEEP, 'semver_latest'
    if options.candidates is not None and not options.candidates.search(tag):
        return KEEP, 'not a candidate'
    if keep.newer_than is None:
        return DELETE, 'candidate'
    return None


def parse_created(value: Any) -> datetime | None:
    """An image config's ``created`` (RFC 3339) as an aware datetime, or None when absent or unreadable."""
    match = _CREATED.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    zone = match.group(7) or 'Z'
    offset = timedelta(0)
    if zone not in ('Z', 'z'):
        digits = zone[1:].replace(':', '')
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        offset = -offset if zone[0] == '-' else offset
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset)).astimezone(timezone.utc)
    except ValueError:
        return None


class Planner:
    """Builds the plan of one prune: the tags, their digests, then each tag's fate."""

    def __init__(self, client: RegistryClient, reference: ImageReference, options: PruneOptions, ctx: RunContext,
                 now: datetime | None = None) -> None:
        self.client = client
        self.repository = reference.repository
        self.name = reference.repository_name
        self.options = options
        self.ctx = ctx
        self.now = now or datetime.now(timezone.utc)
        self.manifests: dict[str, Manifest] = {}  # read by digest once, for ages and index children

    def plan(self) -> Plan:
        tags = sorted(list_tags(self.client, self.repository, name=self.name)[0])
        ordinary = [t for t in tags if referrer_subject(t) is None]
        latest = semver_kept(ordinary, self.options.keep.semver_latest)
        decided = {t: name_rule(t, self.options, latest) for t in ordinary}
        by_age = {t for t, rule in decided.items() if rule is None}
        entries = [e for e in parallel_map(lambda t: self._resolve(t, t in by_age), tags, self.ctx.workers)
                   if e is not None]
        ordinary_entries = [e for e in entries if referrer_subject(e.tag) is None]
        for entry in ordinary_entries:
            rule = decided[entry.tag]
            if rule is not None:
                entry.action, entry.rule = rule
        self._by_age([e for e in ordinary_entries if decided[e.tag] is None])
        self._refuse_all(ordinary_entries)
        plan = Plan(self.name, entries, self.options)
        self._follow_references(plan)
        return plan

    def _resolve(self, tag: str, by_age: bool) -> Entry | None:
        """The tag's entry: a HEAD, or for a tag whose age decides a manifest GET (read once, kept)."""
        if by_age:
            try:
                manifest = self.client.get_manifest(self.repository, tag)
            except NotFoundError:
                return None  # deleted since the listing
            self.manifests.setdefault(manifest.digest, manifest)
            return Entry(tag, manifest.digest, manifest.media_type)
        found = self.client.resolve(self.repository, tag)
        if found is None:
            return None
        return Entry(tag, found['digest'], found['media_type'])

    def _manifest(self, digest: str) -> Manifest:
        if digest not in self.manifests:
            self.manifests[digest] = self.client.get_manifest(self.repository, digest)
        return self.manifests[digest]

    def _created(self, digest: str, depth: int = 0) -> datetime | None:
        """When the image was built: its config's ``created``; an index's newest child's (None: unknown)."""
        manifest = self._manifest(digest)
        if manifest.is_index:
            if depth >= MAX_INDEX_DEPTH:
                return None
            times = [self._created(child['digest'], depth + 1) for child in manifest.children()
                     if isinstance(child.get('digest'), str)]
            known = [t for t in times if t is not None]
            return max(known) if known else None
        config = manifest.config_descriptor()
        if not config or config.get('media_type') not in IMAGE_CONFIG_TYPES:
            return None
        document = self.client.get_json_blob(self.repository, {'digest': config['digest'], 'size': config['size']},
                                             what='image config')
        return parse_created(document.get('created')) if isinstance(document, dict) else None

    def _by_age(self, entries: list[Entry]) -> None:
        """Decide the tags whose fate depends on age: one ``created`` per digest, digests in parallel."""
        digests = list(dict.fromkeys(e.digest for e in entries))
        created = dict(zip(digests, parallel_map(self._created, digests, self.ctx.workers)))
        limit = self.now - (self.options.keep.newer_than or timedelta(0))
        for entry in entries:
            when = created[entry.digest]
            entry.created = when.strftime('%Y-%m-%dT%H:%M:%SZ') if when else None
            if when is None:
                entry.action, entry.rule = KEEP, 'newer_than: no created date'
            elif when > limit:
                entry.action, entry.rule = KEEP, 'newer_than'
            else:
                entry.action, entry.rule = DELETE, 'candidate'

    def _refuse_all(self, entries: list[Entry]) -> None:
        """Refuse a plan that keeps no tag when every tag is a candidate, unless ``force``."""
        if self.options.force or not entries or any(e.action == KEEP for e in entries):
            return
        raise InvalidInputError(
            'keep keeps none of the %d tags of %s and candidates selects them all: the plan would delete every '
            'tag. Give keep rules that match, narrow candidates, or set force: true; %s'
            % (len(entries), self.name, NOTHING_DELETED), details={'plan': [e.to_dict() for e in entries]})

    # -- references ----------------------------------------------------------------
    def _follow_references(self, plan: Plan) -> None:
        """Decide the manifests of deleted tags (``delete: manifests``), then the referrer tags."""
        doomed = plan.doomed_digests()
        if self.options.delete == 'manifests' and doomed:
            kept = plan.kept_digests(doomed)
            listed = self._listed_by(plan, kept)
            for digest in doomed:
                self._decide_manifest(plan, digest, kept, listed)
        for entry in plan.referrer_entries():
            self._decide_referrer_tag(plan, entry)

    def _listed_by(self, plan: Plan, kept: set[str]) -> dict[str, str]:
        """``{child digest: index digest}`` for every manifest a kept index lists (nested ones too)."""
        listed: dict[str, str] = {}
        types = {e.digest: e.media_type for e in plan.entries}
        todo = [(d, d, 0) for d in sorted(kept) if types.get(d) in INDEX_TYPES]
        while todo:
            digest, top, depth = todo.pop()
            manifest = self._manifest(digest)
            for child in manifest.children():
                if isinstance(child.get('digest'), str) and child['digest'] not in listed:
                    listed[child['digest']] = top
                    if child.get('media_type') in INDEX_TYPES and depth < MAX_INDEX_DEPTH:
                        todo.append((child['digest'], top, depth + 1))
        return listed

    def _decide_manifest(self, plan: Plan, digest: str, kept: set[str], listed: dict[str, str]) -> None:
        """Delete ``digest`` with its tags unless something kept refers to it; the entries say why not."""
        reason = None
        if digest in listed:
            reason = 'listed by the kept index %s' % listed[digest]
        else:
            found = {r.digest for r in discover(self.client, self.repository, digest, include_tags=False)}
            found |= {e.digest for e in plan.referrer_entries() if e.subject == digest}
            held = sorted(found & kept)
            if held:
                reason = 'the subject of the kept referrer %s' % held[0]
            elif found and not self.options.referrers:
                reason = 'it has referrers (signatures, attestations) and referrers is false'
            else:
                plan.manifests[digest] = sorted(found)
        for entry in plan.entries:
            if entry.digest == digest and entry.action == DELETE and entry.subject is None:
                entry.manifest = KEEP if reason else DELETE
                entry.manifest_rule = reason or 'no kept tag, index or referrer refers to it'

    def _decide_referrer_tag(self, plan: Plan, entry: Entry) -> None:
        """A cosign or fallback tag follows the manifest it refers to: it goes only when that manifest goes."""
        subject = entry.subject or ''
        if subject in plan.manifests and self.options.referrers:
            entry.action, entry.rule = DELETE, 'referrer of the deleted manifest %s' % subject
        elif subject in plan.kept_tag_digests():
            entry.action, entry.rule = KEEP, 'referrer of a kept image'
        else:
            entry.action, entry.rule = KEEP, 'referrer of a manifest that stays'


class Plan:
    """Every tag's fate, and the manifests to delete with the referrers that go with them."""

    def __init__(self, name: str, entries: list[Entry], options: PruneOptions) -> None:
        self.name = name
        self.entries = entries
        self.options = options
        self.manifests: dict[str, list[str]] = {}  # digest to delete: the referrer manifests deleted with it
        for entry in entries:
            entry.subject = referrer_subject(entry.tag)

    def referrer_entries(self) -> list[Entry]:
        return [e for e in self.entries if e.subject is not None]

    def kept_tag_digests(self) -> set[str]:
        return {e.digest for e in self.entries if e.subject is None and e.action == KEEP}

    def doomed_digests(self) -> list[str]:
        """The digests of deleted tags that no kept tag points at, in plan order."""
        kept = self.kept_tag_digests()
        return list(dict.fromkeys(e.digest for e in self.entries
                                  if e.subject is None and e.action == DELETE and e.digest not in kept))

    def kept_digests(self, doomed: list[str]) -> set[str]:
        """What stays for sure: the kept tags' digests, and those of referrer tags of manifests that stay."""
        kept = self.kept_tag_digests()
        kept |= {e.digest for e in self.referrer_entries() if e.subject not in doomed}
        return kept

    @property
    def deleted_tags(self) -> list[str]:
        ordinary = [e.tag for e in self.entries if e.action == DELETE and e.subject is None]
        return ordinary + [e.tag for e in self.entries if e.action == DELETE and e.subject is not None]

    @property
    def deleted_manifests(self) -> list[str]:
        """Referrer manifests first, then the manifests they refer to (the order of deletion)."""
        referrers = [d for found in self.manifests.values() for d in found]
        return list(dict.fromkeys(referrers + list(self.manifests)))

    def tag_deletions(self) -> list[Entry]:
        return [e for e in self.entries if e.action == DELETE]

    def diff(self) -> dict[str, Any]:
        """``before`` maps every tag to its digest, ``after`` the tags that stay."""
        header = '%s tags' % self.name
        return {'before': {e.tag: e.digest for e in self.entries},
                'after': {e.tag: e.digest for e in self.entries if e.action == KEEP},
                'before_header': header, 'after_header': header}


# -- execution -----------------------------------------------------------------------
PRUNE_CANNOT_GO = 'so nothing can be pruned'


def prune_target(repository: str) -> ImageReference:
    """The repository ``prune`` works on: it must name no tag and no digest."""
    reference = ImageReference.parse(repository)
    if reference.tag or reference.digest:
        raise InvalidInputError('repository must name a repository without a tag or digest, got %s; to delete one '
                                'image, use imagelayers.registry.delete' % repository)
    return reference


class PruneOutcome:
    """What a prune did (in check mode, would do): ``to_result()`` is the module's result, the same in both."""

    def __init__(self, plan: Plan, ctx: RunContext) -> None:
        self.plan = plan
        self.ctx = ctx

    @property
    def changed(self) -> bool:
        return bool(self.plan.deleted_tags or self.plan.deleted_manifests)

    def to_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            'changed': self.changed, 'repository': self.plan.name,
            'plan': [e.to_dict() for e in self.plan.entries],
            'deleted_tags': self.plan.deleted_tags, 'deleted_manifests': self.plan.deleted_manifests}
        if self.ctx.diff_mode:
            result['diff'] = self.plan.diff()
        return result


def prune(client: RegistryClient, reference: ImageReference, options: PruneOptions, ctx: RunContext | None = None,
          now: datetime | None = None) -> PruneOutcome:
    """Plan the prune of the repository of ``reference``; outside check mode, carry the plan out."""
    ctx = ctx or RunContext()
    plan = Planner(client, reference, options, ctx, now=now).plan()
    outcome = PruneOutcome(plan, ctx)
    if not outcome.changed:
        return outcome
    # Deletion disabled fails here, before the first delete, in check mode as in a real run.
    probe_deletion(client, reference.repository, plan.name, consequence=PRUNE_CANNOT_GO)
    if not ctx.check_mode:
        Executor(client, reference, plan).run()
    return outcome


class Executor:
    """Carries out a plan, one deletion at a time: the tags first, then the manifests, referrers first.

    One at a time on purpose: distribution 2.x walks every tag of the repository when it deletes a
    manifest, and a tag link removed meanwhile by a parallel delete makes it fail (500, then 404 on
    the retry, for a delete that did happen). The first failure stops the run and says what was done.
    """

    def __init__(self, client: RegistryClient, reference: ImageReference, plan: Plan) -> None:
        self.client = client
        self.repository = reference.repository
        self.plan = plan
        self.deleter = TagDeleter(client, reference.repository, plan.name)
        self.deleter.delete_allowed = True  # the probe said so
        self.done_tags: list[str] = []
        self.done_manifests: list[str] = []

    def run(self) -> None:
        for entry in self.plan.tag_deletions():
            self._step(entry.tag, self.deleter.delete, (entry.tag, entry.digest), self.done_tags)
        for digest in self.plan.deleted_manifests:
            self._step(digest, self._delete_manifest, (digest,), self.done_manifests)

    def _delete_manifest(self, digest: str) -> None:
        try:
            self.client.delete_manifest(self.repository, digest, what='DELETE manifest %s@%s' % (self.plan.name, digest))
        except NotFoundError:
            pass  # gone already: deleted with a referrers index, or by someone else
        except UnsupportedError as error:
            raise deletion_disabled(self.client, error, PRUNE_CANNOT_GO)

    def _step(self, name: str, action: Callable[..., Any], args: tuple[str, ...], done: list[str]) -> None:
        try:
            action(*args)
        except RegistryError as error:
            raise self._failure(name, error)
        done.append(name)

    def _failure(self, name: str, error: RegistryError) -> RegistryError:
        done = self.done_tags + self.done_manifests
        error.msg = 'Could not delete %s of %s: %s. %s' % (
            name, self.plan.name, error.msg, 'Deleted before: %s' % ', '.join(done) if done else 'Nothing was deleted')
        error.details.update(deleted_tags=list(self.done_tags), deleted_manifests=list(self.done_manifests),
                             failed=name)
        return error


# -- delete ------------------------------------------------------------------------
DELETE_CANNOT_GO = 'so the manifest cannot be deleted'


class DeleteOutcome:
    """What ``delete`` did (in check mode, would do): ``to_result()`` is the module's result."""

    def __init__(self, reference: ImageReference, ctx: RunContext, digest: str | None = None,
                 media_type: str | None = None, tags: list[str] | None = None, changed: bool = False) -> None:
        self.reference = reference
        self.ctx = ctx
        self.digest = digest
        self.media_type = media_type
        self.tags = tags or []
        self.changed = changed

    def to_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {'changed': self.changed, 'image': self.reference.name,
                                  'digest': self.digest, 'media_type': self.media_type,
                                  'deleted': self.digest if self.changed else None, 'tags': list(self.tags)}
        if self.ctx.diff_mode:
            header = '%s manifests' % self.reference.repository_name
            before = {self.digest: sorted(self.tags)} if self.digest else {}
            result['diff'] = {'before': before, 'after': {} if self.changed else dict(before),
                              'before_header': header, 'after_header': header}
        return result


def delete_target(image: str) -> ImageReference:
    """The manifest ``delete`` removes: ``image`` must name a digest or a tag."""
    reference = ImageReference.parse(image)
    if not reference.reference:
        raise InvalidInputError('image must name the manifest to delete by digest (%s@sha256:...) or by tag, got %s'
                                % (reference.name, image))
    return reference


def _references(client: RegistryClient, reference: ImageReference, digest: str,
                ctx: RunContext) -> tuple[list[str], list[dict[str, Any]]]:
    """``(tags at digest, [{'digest', 'tags'} of tagged indexes listing digest])``: one list, one HEAD a tag."""
    repository = reference.repository
    try:
        tags = list_tags(client, repository, name=reference.repository_name)[0]
    except NotFoundError:
        return [], []
    found = dict(zip(tags, parallel_map(lambda t: client.resolve(repository, t), tags, ctx.workers)))
    at = []
    index_tags: dict[str, list[str]] = {}
    for tag in tags:
        head = found[tag]
        if head is None:
            continue  # deleted since the listing
        if head['digest'] == digest:
            at.append(tag)
        elif head['media_type'] in INDEX_TYPES:
            index_tags.setdefault(head['digest'], []).append(tag)
    indexes = []
    for index, names in index_tags.items():
        children = client.get_manifest(repository, index).children()
        if any(child.get('digest') == digest for child in children):
            indexes.append({'digest': index, 'tags': names})
    return at, indexes


def delete_manifest(client: RegistryClient, reference: ImageReference, force: bool = False,
                    ctx: RunContext | None = None) -> DeleteOutcome:
    """Delete the manifest ``reference`` names, unless other tags or a tagged index still refer to it."""
    ctx = ctx or RunContext()
    repository = reference.repository
    found = client.resolve(repository, reference.reference or '')
    if found is None:
        return DeleteOutcome(reference, ctx)  # not there: nothing to do
    digest = found['digest']
    tags, indexes = _references(client, reference, digest, ctx)
    others = [t for t in tags if t != reference.tag]
    if (others or indexes) and not force:
        raise PreconditionError(_refusal(reference, digest, others, indexes),
                                details={'digest': digest, 'tags': tags, 'indexes': indexes})
    outcome = DeleteOutcome(reference, ctx, digest, found['media_type'], tags, changed=True)
    if ctx.check_mode:
        probe_deletion(client, repository, reference.repository_name, consequence=DELETE_CANNOT_GO)
        return outcome
    try:
        client.delete_manifest(repository, digest, what='DELETE manifest %s@%s' % (reference.repository_name, digest))
    except NotFoundError:
        outcome.changed = False  # deleted by someone else meanwhile
    except UnsupportedError as error:
        raise deletion_disabled(client, error, DELETE_CANNOT_GO)
    return outcome


def _refusal(reference: ImageReference, digest: str, others: list[str], indexes: list[dict[str, Any]]) -> str:
    held = []
    if others:
        held.append('the tag%s %s' % ('' if len(others) == 1 else 's', ', '.join(others)))
    for index in indexes:
        held.append('the index %s (tag%s %s)' % (index['digest'], '' if len(index['tags']) == 1 else 's',
                                                 ', '.join(index['tags'])))
    return ('%s@%s is still referenced by %s; nothing was deleted (force: true deletes it anyway, and with it '
            'every tag that points at it)' % (reference.repository_name, digest, ' and '.join(held)))
