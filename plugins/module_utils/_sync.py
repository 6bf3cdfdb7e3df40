# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Promotion at repository scale (``sync``): many repositories and tags as one release.

:func:`sync` plans first, for every item: the source tags the item's selector picks
(``_tags.list_tags``, or the tags given), then per tag one HEAD at the source and one at
the destination, in parallel. An unchanged tag costs exactly those two requests and
keeps no manifest. Conflicts (``overwrite: false``) fail the task here, before any write.

It then executes the plan in phases. With ``atomic`` (the default), the content of every
changed tag of every item is written first, blobs then manifests, by digest (``ensure_blob``
and ``_publish.publish``, mounted inside one registry); then every tag is written, the
small manifest PUT by tag; then, with ``prune``, the destination tags the selector matches
but the source no longer has are deleted (``_tagging.TagDeleter``). A failure before the
tag phase moves no tag, and says which blobs and untagged manifests it left. Without
``atomic``, the same phases run item by item. The outcome is a :class:`SyncOutcome`.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._copy import (
    RegistryBlobSource,
    copy_referrers,
    parse_platforms,
    source_plan,
    subset_index,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import INDEX_TYPES, Manifest, Platform
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import (
    DEFAULT_FANOUT,
    check_workers,
    parallel_map,
    run_all,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._publish import ImagePlan, publish
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    TagConflictError,
    TagDeleter,
    normalize_tags,
    put_tags,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import (
    SemverRange,
    latest_versions,
    list_tags,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import TransferStats, ensure_blob

# Options an item may set for itself; the task's value applies where it does not.
ITEM_OPTIONS = ('platforms', 'referrers', 'overwrite', 'prune', 'prereleases')
STAT_KEYS = ('blobs_copied', 'blobs_mounted', 'blobs_skipped', 'bytes_transferred', 'manifests_pushed')
ClientFactory = Callable[[ImageReference, str], Any]  # (reference, 'src_' or 'dest_') -> RegistryClient


# -- selectors ------------------------------------------------------------------
class Selector:
    """Which tags an item promotes: ``tags``, or a ``pattern`` and a ``semver`` range, then the ``latest`` N."""

    def __init__(self, tags: Optional[Sequence[str]] = None, pattern: Optional[str] = None,
                 semver: Optional[str] = None, latest: Optional[int] = None, prereleases: bool = False) -> None:
        if tags is not None and (pattern or semver):
            raise InvalidInputError('tags names the tags itself: it cannot be combined with pattern or semver')
        self.tags = normalize_tags(tags) if tags is not None else None
        try:
            self.regex = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise InvalidInputError('Invalid pattern %r: %s' % (pattern, exc))
        self.range = SemverRange(semver) if semver else None
        if latest is not None and latest < 1:
            raise InvalidInputError('latest must be at least 1, got %r' % (latest,))
        self.latest = latest
        self.prereleases = prereleases

    @property
    def needs_listing(self) -> bool:
        return self.tags is None

    def matches(self, tag: str) -> bool:
        """Whether ``tag`` passes the filters (what ``prune`` looks at): listed, or pattern and range, a version
        when ``latest`` is set."""
        if self.tags is not None:
            return tag in self.tags and (self.latest is None or bool(latest_versions([tag], 1, self.prereleases)))
        if self.regex is not None and not self.regex.search(tag):
            return False
        if self.range is not None and not self.range.matches(tag, self.prereleases):
            return False
        return self.latest is None or bool(latest_versions([tag], 1, self.prereleases))

    def select(self, available: Sequence[str]) -> List[str]:
        """The tags promoted out of ``available`` (the source's), in listing order (``latest``: highest first)."""
        chosen = [t for t in (self.tags if self.tags is not None else available) if self.matches(t)]
        if self.latest is not None:
            return latest_versions(chosen, self.latest, self.prereleases)
        return chosen


# -- the plan -------------------------------------------------------------------
class TagPlan:
    """One tag of one item: where it is, where it goes, and what moving it took. Small: an unchanged tag keeps
    no manifest; a changed one keeps its top manifest (a few KiB) for the tag phase."""

    __slots__ = ('tag', 'source_digest', 'media_type', 'before', 'after', 'top', 'stats', 'referrers', 'written')

    def __init__(self, tag: str, source_digest: str, media_type: Optional[str], before: Optional[str]) -> None:
        self.tag = tag
        self.source_digest = source_digest
        self.media_type = media_type
        self.before = before
        self.after: Optional[str] = None      # known after the plan (or, for a platform subset, the content phase)
        self.top: Optional[Manifest] = None
        self.stats: Optional[TransferStats] = None
        self.referrers: Optional[List[Dict[str, Any]]] = None
        self.written = False                  # the tag PUT was made

    @property
    def changed(self) -> bool:
        return self.after is None or self.after != self.before

    def to_result(self) -> Dict[str, Any]:
        entry: Dict[str, Any] = {'tag': self.tag, 'before': self.before, 'after': self.after,
                                 'source_digest': self.source_digest, 'changed': self.changed}
        entry.update((self.stats or TransferStats()).to_dict())
        if self.referrers is not None:
            entry['referrers'] = self.referrers
        return entry


class Item:
    """One entry of ``repositories``: the two repositories, the selector, the options, the plan of its tags."""

    def __init__(self, index: int, spec: Dict[str, Any], defaults: Dict[str, Any]) -> None:
        self.index = index
        options = dict((key, spec[key] if spec.get(key) is not None else defaults.get(key)) for key in ITEM_OPTIONS)
        self.src_ref = _repository(spec.get('src'), 'src', index)
        self.dest_ref = _repository(spec.get('dest'), 'dest', index)
        self.selector = Selector(spec.get('tags'), spec.get('pattern'), spec.get('semver'), spec.get('latest'),
                                 bool(options['prereleases']))
        self.wanted: Optional[List[Platform]] = parse_platforms(options['platforms'])
        self.referrers = bool(options['referrers'])
        self.overwrite = options['overwrite'] is not False
        self.prune = bool(options['prune'])
        self.src_client: Any = None
        self.dest_client: Any = None
        self.tags: List[TagPlan] = []
        self.pruned: List[Dict[str, Any]] = []   # [{'tag', 'before', 'changed'}]

    @property
    def label(self) -> str:
        return 'repositories[%d] (%s -> %s)' % (self.index, self.src_ref.repository_name,
                                                self.dest_ref.repository_name)

    def to_result(self) -> Dict[str, Any]:
        return {'src': self.src_ref.repository_name, 'dest': self.dest_ref.repository_name,
                'tags': [entry.to_result() for entry in self.tags], 'pruned': [dict(p) for p in self.pruned]}


def _repository(value: Any, option: str, index: int) -> ImageReference:
    reference = ImageReference.parse(value) if value else None
    if reference is None or reference.tag or reference.digest:
        raise InvalidInputError('repositories[%d].%s must name a repository without a tag or digest, got %r'
                                % (index, option, value))
    return reference


class ClientPool:
    """One client per side and registry, so each registry has one session and one token cache in a task."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self.clients: Dict[Tuple[str, str], Any] = {}

    def get(self, reference: ImageReference, side: str) -> Any:
        key = (side, reference.registry)
        if key not in self.clients:
            self.clients[key] = self.factory(reference, side)
        return self.clients[key]


# -- the outcome ---------------------------------------------------------------
class SyncOutcome:
    """The plan, item by item and tag by tag, with what was done: ``to_result()`` is the module's result."""

    def __init__(self, items: List[Item], ctx: RunContext, atomic: bool) -> None:
        self.items = items
        self.ctx = ctx
        self.atomic = atomic

    @property
    def changed(self) -> bool:
        return any(entry.changed for item in self.items for entry in item.tags) or \
            any(p['changed'] for item in self.items for p in item.pruned) or \
            any(r['changed'] for item in self.items for entry in item.tags for r in entry.referrers or ())

    def counts(self) -> Dict[str, int]:
        entries = [entry for item in self.items for entry in item.tags]
        counts = {'tags_selected': len(entries), 'tags_changed': len([e for e in entries if e.changed]),
                  'tags_unchanged': len([e for e in entries if not e.changed]),
                  'tags_pruned': len([p for item in self.items for p in item.pruned if p['changed']])}
        for key in STAT_KEYS:
            counts[key] = sum(getattr(e.stats, key) for e in entries if e.stats is not None)
        return counts

    def to_result(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {'changed': self.changed, 'atomic': self.atomic,
                                  'repositories': [item.to_result() for item in self.items]}
        result.update(self.counts())
        if self.ctx.diff_mode:
            result['diff'] = self.diff()
        return result

    def diff(self) -> Dict[str, Any]:
        """``before``/``after`` map ``registry/repository:tag`` to its digest; a tag that does not exist is left out."""
        before: Dict[str, str] = {}
        after: Dict[str, str] = {}
        for item in self.items:
            name = item.dest_ref.repository_name
            for entry in item.tags:
                if entry.before:
                    before['%s:%s' % (name, entry.tag)] = entry.before
                if entry.after:
                    after['%s:%s' % (name, entry.tag)] = entry.after
            for pruned in item.pruned:
                before['%s:%s' % (name, pruned['tag'])] = pruned['before']
        return {'before': before, 'after': after, 'before_header': 'destination tags',
                'after_header': 'destination tags'}


# -- planning --------------------------------------------------------------------
class _Planner:
    """Reads what the plan needs: tag listings (once per repository) and the HEADs of every selected tag."""

    def __init__(self, items: List[Item], ctx: RunContext) -> None:
        self.items = items
        self.fanout = max(ctx.workers, DEFAULT_FANOUT)
        self.listings: Dict[Tuple[int, str], List[str]] = {}

    def listing(self, client: Any, reference: ImageReference, missing_ok: bool = False) -> List[str]:
        key = (id(client), reference.repository)
        if key not in self.listings:
            try:
                self.listings[key] = list_tags(client, reference.repository, name=reference.repository_name)[0]
            except NotFoundError:
                if not missing_ok:
                    raise
                self.listings[key] = []
        return self.listings[key]

    def heads(self) -> None:
        """One HEAD at the source and one at the destination per selected tag; the first of each item alone
        (it fetches the tokens its repositories' other HEADs share), the others in parallel."""
        jobs = [(item, tag) for item in self.items for tag in self.selected(item)]
        first = [position == 0 or jobs[position - 1][0] is not job[0] for position, job in enumerate(jobs)]
        firsts = [job for job, alone in zip(jobs, first) if alone]
        others = [job for job, alone in zip(jobs, first) if not alone]
        done = dict(zip(map(id, firsts), parallel_map(self.head, firsts, 1)))
        done.update(zip(map(id, others), parallel_map(self.head, others, self.fanout, first_alone=False)))
        for job in jobs:
            plan = done[id(job)]
            if plan is not None:
                job[0].tags.append(plan)

    def selected(self, item: Item) -> List[str]:
        if not item.selector.needs_listing:
            return item.selector.select([])
        try:
            return item.selector.select(self.listing(item.src_client, item.src_ref))
        except NotFoundError as error:
            raise _in_item(error, item)

    def head(self, job: Tuple[Item, str]) -> Optional[TagPlan]:
        item, tag = job
        try:
            found = item.src_client.resolve(item.src_ref.repository, tag)
            if found is None:
                if item.selector.needs_listing:
                    return None  # deleted since the listing
                raise NotFoundError('The source tag %s:%s does not exist' % (item.src_ref.repository_name, tag))
            current = item.dest_client.resolve(item.dest_ref.repository, tag)
        except RegistryError as error:
            raise _in_item(error, item, tag)
        plan = TagPlan(tag, found['digest'], found['media_type'], current['digest'] if current else None)
        if item.wanted is None:
            plan.after = plan.source_digest
        return plan

    def prune_candidates(self, item: Item) -> None:
        """The destination tags the selector matches that the source's selection does not have, with their digests."""
        selected = set(entry.tag for entry in item.tags)
        if not item.selector.needs_listing:
            selected.update(item.selector.select([]))  # a listed tag the source lacks fails the plan already
        tags = [t for t in self.listing(item.dest_client, item.dest_ref, missing_ok=True)
                if t not in selected and item.selector.matches(t)]

        def head(tag: str) -> Optional[str]:
            found = item.dest_client.resolve(item.dest_ref.repository, tag)
            return found['digest'] if found else None

        digests = parallel_map(head, tags, self.fanout)
        item.pruned = [{'tag': t, 'before': d, 'changed': True} for t, d in zip(tags, digests) if d is not None]


def _in_item(error: RegistryError, item: Item, tag: Optional[str] = None) -> RegistryError:
    """Name the item (and the tag) in the message of an error raised while working on it."""
    where = item.label + (', tag %s' % tag if tag else '')
    if not error.msg.startswith(item.label):
        error.msg = '%s: %s' % (where, error.msg)
    error.details.setdefault('item', item.index)
    if tag:
        error.details.setdefault('tag', tag)
    return error


def _top(item: Item, entry: TagPlan) -> Tuple[Manifest, bool]:
    """The manifest to write for ``entry`` (the source's, or its platform subset) and whether it is a subset."""
    client, repository = item.src_client, item.src_ref.repository
    top = client.get_manifest(repository, entry.source_digest)
    if item.wanted and top.is_index:
        new_index, single = subset_index(top, item.wanted)
        if single is not None:
            return client.get_manifest(repository, single['digest']), True
        if new_index is not None:
            return new_index, True
    return top, False


def _platform_targets(item: Item) -> None:
    """With ``platforms``, the digest each tag would get (a subset of an index is a new manifest): known before any
    write, so that an unchanged subset costs nothing more and a conflict is found in the plan."""
    for entry in item.tags:
        if entry.media_type in INDEX_TYPES:
            top, dummy = _top(item, entry)
            entry.after = top.digest
            entry.top = top if entry.changed else None
        else:
            entry.after = entry.source_digest


def _check_conflicts(items: List[Item]) -> None:
    """``overwrite: false``: every destination tag that points at another digest, all named, before any write."""
    conflicts = [(item, entry) for item in items if not item.overwrite for entry in item.tags
                 if entry.before is not None and entry.after is not None and entry.before != entry.after]
    if not conflicts:
        return
    raise TagConflictError(
        'overwrite is false and %s already point%s at another digest; nothing was changed'
        % (', '.join('%s:%s (at %s, the source has %s)' % (item.dest_ref.repository_name, entry.tag, entry.before,
                                                           entry.after) for item, entry in conflicts),
           's' if len(conflicts) == 1 else ''),
        details={'conflicts': [{'item': item.index, 'tag': entry.tag, 'current_digest': entry.before,
                                'digest': entry.after} for item, entry in conflicts]})


def plan_sync(items: List[Item], ctx: RunContext) -> _Planner:
    """Every item's tags with their source and destination digests, and what ``prune`` would delete."""
    planner = _Planner(items, ctx)
    for item in items:
        item.src_client.api.http.ensure_pool_size(planner.fanout + 2)
    planner.heads()
    for item in items:
        if item.wanted is not None:
            try:
                _platform_targets(item)
            except RegistryError as error:
                raise _in_item(error, item)
    _check_conflicts(items)
    for item in items:
        if item.prune:
            planner.prune_candidates(item)
    return planner


# -- executing -------------------------------------------------------------------
class Leftovers:
    """What the content phase wrote to a destination without a tag yet: said when the task fails before its tags."""

    def __init__(self) -> None:
        self.by_repository: Dict[str, Dict[str, List[str]]] = {}
        self._lock = threading.Lock()  # added to from the content phase's threads

    def add(self, repository: str, kind: str, digest: str) -> None:
        with self._lock:
            entry = self.by_repository.setdefault(repository, {'blobs': [], 'manifests': []})
            if digest not in entry[kind]:
                entry[kind].append(digest)

    def to_result(self) -> List[Dict[str, Any]]:
        return [{'repository': name, 'blobs': entry['blobs'], 'manifests': entry['manifests']}
                for name, entry in self.by_repository.items()]

    def summary(self) -> str:
        blobs = sum(len(e['blobs']) for e in self.by_repository.values())
        manifests = sum(len(e['manifests']) for e in self.by_repository.values())
        if not blobs and not manifests:
            return 'nothing was left in the destinations'
        return ('%d blob%s and %d manifest%s by digest were left in the destinations without a tag (see left); a '
                'rerun reuses them' % (blobs, '' if blobs == 1 else 's', manifests, '' if manifests == 1 else 's'))


class _ImageJob:
    """One changed tag's image in the content phase: its plan, the blobs it carries, where they come from."""

    __slots__ = ('item', 'entry', 'plan', 'blobs', 'source')

    def __init__(self, item: Item, entry: TagPlan) -> None:
        self.item, self.entry = item, entry
        self.plan: Optional[ImagePlan] = None
        self.blobs: List[Dict[str, Any]] = []
        src, dest = item.src_ref, item.dest_ref
        same_registry = item.src_client.api_host == item.dest_client.api_host
        mount_from = src.repository if same_registry and src.repository != dest.repository else None
        self.source = RegistryBlobSource(item.src_client, src.repository, mount_from=mount_from)


class _Executor:
    """The phases of a sync: content (blobs, then manifests by digest, then referrers), tags, prune."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.left = Leftovers()
        # (destination repository, digest) of the blobs and manifests this run has seen there or written (in check
        # mode: would write): a base layer shared by a release's tags is HEADed once, and the plan counts it once.
        self.ensured: Set[Tuple[str, str]] = set()

    def content(self, items: List[Item]) -> None:
        """Every changed tag's image in ``items``, everything but its tag, in three steps that each run in parallel
        across all the images: their manifests read and planned; their blobs, each one once (the first tag in
        order that needs a blob carries it; the others count it as skipped); their manifests written by digest.
        Then the referrers, tag by tag. A failure ends the step it happens in, once its other calls finished."""
        jobs = [_ImageJob(item, entry) for item in items for entry in item.tags if entry.changed]
        self._each(self._prepare, jobs, self.ctx.workers)
        owners = [job for job in jobs if self._claim(job)]
        blobs = [(job, descriptor) for job in owners for descriptor in job.blobs]
        for item in items:
            item.src_client.api.http.ensure_pool_size(self.ctx.workers + 2)
            item.dest_client.api.http.ensure_pool_size(self.ctx.workers + 2)
        self._each(self._blob, blobs, self.ctx.workers, lambda pair: pair[0])
        # Two images that share a child manifest in one repository (two indexes with a platform in common) are
        # written one after the other, so the second finds the child the first wrote and does not count it again.
        children = [(job.item.dest_ref.repository_name, child.digest) for job in owners if job.plan is not None
                    for child in job.plan.children]
        self._each(self._manifests, owners, 1 if len(children) != len(set(children)) else self.ctx.workers)
        for item in items:
            if item.referrers:
                for entry in item.tags:
                    try:
                        found = {'digest': entry.source_digest, 'media_type': entry.media_type}
                        entry.referrers = copy_referrers(item.src_client, item.src_ref, item.dest_client,
                                                         item.dest_ref, found, item.wanted, self.ctx)
                    except RegistryError as error:
                        raise _in_item(error, item, entry.tag)

    def _each(self, function: Callable[[Any], None], jobs: List[Any], workers: int,
              job_of: Callable[[Any], _ImageJob] = lambda job: job) -> None:
        """``function`` on every job (the first alone: it fetches the tokens the others share), then the first
        failure in the order of ``jobs``, naming its item and tag."""
        for job, call in zip(jobs, run_all(function, jobs, workers)):
            if isinstance(call.error, RegistryError):
                raise _in_item(call.error, job_of(job).item, job_of(job).entry.tag)
            if call.error is not None:
                raise call.error

    @staticmethod
    def _prepare(job: _ImageJob) -> None:
        item, entry = job.item, job.entry
        top, subset = (entry.top, True) if entry.top is not None else _top(item, entry)
        entry.top, entry.after = top, top.digest
        entry.stats = TransferStats()
        if entry.changed:
            job.plan = source_plan(item.src_client, item.src_ref.repository, top, item.wanted if not subset else None)

    def _claim(self, job: _ImageJob) -> bool:
        """Whether ``job`` writes its image (the first tag of this run with that image does), and the blobs it
        carries: those no tag before it in this run carries or found."""
        entry, name = job.entry, job.item.dest_ref.repository_name
        if job.plan is None or entry.top is None or (name, entry.top.digest) in self.ensured:
            return False  # unchanged after all (a platform subset the destination has), or another tag's image
        self.ensured.add((name, entry.top.digest))
        job.blobs = [d for d in job.plan.blobs if (name, d['digest']) not in self.ensured]
        self.ensured.update((name, d['digest']) for d in job.blobs)
        (entry.stats or TransferStats()).add(blobs_skipped=len(job.plan.blobs) - len(job.blobs))
        return True

    def _blob(self, pair: Tuple[_ImageJob, Dict[str, Any]]) -> None:
        job, descriptor = pair
        outcome = ensure_blob(job.item.dest_client, job.item.dest_ref.repository, descriptor, job.source,
                              job.entry.stats or TransferStats(), retries=self.ctx.retries,
                              check_mode=self.ctx.check_mode)
        if outcome != 'skipped' and not self.ctx.check_mode:
            self.left.add(job.item.dest_ref.repository_name, 'blobs', descriptor['digest'])

    def _manifests(self, job: _ImageJob) -> None:
        """The image's child manifests and top manifest, by digest."""
        entry, reference = job.entry, job.item.dest_ref
        if job.plan is None or entry.top is None:
            return
        manifests = ImagePlan(entry.top, job.plan.children, [], job.plan.images)
        dummy, pushed = publish(job.item.dest_client, reference.with_digest(entry.top.digest), manifests, job.source,
                                self.ctx)
        (entry.stats or TransferStats()).add(manifests_pushed=pushed.manifests_pushed)
        if not self.ctx.check_mode and pushed.manifests_pushed:
            self.left.add(reference.repository_name, 'manifests', entry.top.digest)

    def tags(self, items: List[Item]) -> None:
        """Every changed tag of ``items``: one manifest PUT by tag each, in parallel; all attempted."""
        jobs = [(item, entry) for item in items for entry in item.tags if entry.changed]
        if self.ctx.check_mode:
            for dummy, entry in jobs:
                (entry.stats or TransferStats()).add(manifests_pushed=1)  # counted as a real run counts it
            return

        def write(job: Tuple[Item, TagPlan]) -> None:
            item, entry = job
            top = entry.top
            if top is None or entry.after is None:
                return
            put_tags(item.dest_client, item.dest_ref.repository, [entry.tag], entry.after, top.media_type, top.raw,
                     overwrite=item.overwrite, current={entry.tag: entry.before},
                     repository_name=item.dest_ref.repository_name)
            entry.written = True
            (entry.stats or TransferStats()).add(manifests_pushed=1)

        calls = run_all(write, jobs, max(self.ctx.workers, DEFAULT_FANOUT))
        failures = [(job, call) for job, call in zip(jobs, calls) if not call.ok]
        if failures:
            (item, entry), call = failures[0]
            error = call.error if isinstance(call.error, RegistryError) else RegistryError(str(call.error))
            moved = ['%s:%s' % (i.dest_ref.repository_name, e.tag) for i, e in jobs if e.written]
            error = _in_item(error, item, entry.tag)
            error.msg += '. Tags moved: %s' % (', '.join(moved) if moved else 'none')
            error.details['tags_moved'] = moved
            error.details['tags_failed'] = ['%s:%s' % (i.dest_ref.repository_name, e.tag) for (i, e), dummy in failures]
            raise error

    def prune(self, item: Item) -> None:
        if self.ctx.check_mode or not item.pruned:
            return
        deleter = TagDeleter(item.dest_client, item.dest_ref.repository, item.dest_ref.repository_name)
        for pruned in item.pruned:
            try:
                pruned['changed'] = deleter.delete(pruned['tag'], pruned['before'])
            except RegistryError as error:
                raise _in_item(error, item, pruned['tag'])


def _content_failure(error: RegistryError, executor: _Executor, atomic: bool, moved: List[str]) -> RegistryError:
    """The message of a failure before a tag phase: which tags moved (with ``atomic``, none) and what was left."""
    if atomic:
        error.msg += '. No destination tag was moved (atomic); %s' % executor.left.summary()
    else:
        error.msg += '. Tags moved by the items before it: %s; %s' % (
            ', '.join(moved) if moved else 'none', executor.left.summary())
    error.details['left'] = executor.left.to_result()
    error.details['tags_moved'] = moved
    return error


def _moved(items: List[Item]) -> List[str]:
    return ['%s:%s' % (item.dest_ref.repository_name, entry.tag) for item in items for entry in item.tags
            if entry.written]


def parse_items(repositories: Sequence[Dict[str, Any]], defaults: Dict[str, Any]) -> List[Item]:
    """The items of ``repositories``, each with the task's options where it sets none; all checked before any request."""
    if not repositories:
        raise InvalidInputError('repositories is empty: give at least one {src, dest} item')
    items = []
    for index, spec in enumerate(repositories):
        try:
            items.append(Item(index, spec, defaults))
        except InvalidInputError as error:
            if not error.msg.startswith('repositories['):
                error.msg = 'repositories[%d]: %s' % (index, error.msg)
            raise
    seen: Dict[Tuple[str, str], int] = {}
    for item in items:
        for tag in item.selector.tags or ():
            key = (item.dest_ref.repository_name, tag)
            if key in seen:
                raise InvalidInputError('repositories[%d] and repositories[%d] both write %s:%s'
                                        % (seen[key], item.index, key[0], tag))
            seen[key] = item.index
    return items


def sync(client_factory: ClientFactory, repositories: Sequence[Dict[str, Any]], ctx: Optional[RunContext] = None,
         atomic: bool = True, **defaults: Any) -> SyncOutcome:
    """Promote the tags ``repositories`` selects (see the module's documentation); ``defaults`` are the task-level
    ``platforms``, ``referrers``, ``overwrite``, ``prune`` and ``prereleases``."""
    ctx = ctx or RunContext()
    check_workers(ctx.workers)
    items = parse_items(repositories, defaults)
    pool = ClientPool(client_factory)
    for item in items:
        item.src_client = pool.get(item.src_ref, 'src_')
        item.dest_client = pool.get(item.dest_ref, 'dest_')
    plan_sync(items, ctx)
    executor = _Executor(ctx)
    groups = [items] if atomic else [[item] for item in items]
    for group in groups:
        try:
            executor.content(group)
        except RegistryError as error:
            raise _content_failure(error, executor, atomic, _moved(items))
        executor.tags(group)
        for item in group:
            executor.prune(item)
    return SyncOutcome(items, ctx, atomic)
