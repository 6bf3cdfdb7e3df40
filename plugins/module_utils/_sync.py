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

    def add(self, repository: str, kind: str, digest: str) -> None:
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


class _Executor:
    """The phases of a sync: content (blobs, then manifests by digest, then referrers), tags, prune."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.left = Leftovers()
        # (destination repository, digest) of the blobs and manifests this run has seen there or written (in check
        # mode: would write): a base layer shared by a release's tags is HEADed once, and the plan counts it once.
        self.ensured: Set[Tuple[str, str]] = set()

    def content(self, item: Item) -> None:
        for entry in item.tags:
            try:
                if entry.changed:
                    self._image(item, entry)
                if item.referrers:
                    found = {'digest': entry.source_digest, 'media_type': entry.media_type}
                    entry.referrers = copy_referrers(item.src_client, item.src_ref, item.dest_client, item.dest_ref,
                                                     found, item.wanted, self.ctx)
            except RegistryError as error:
                raise _in_item(error, item, entry.tag)

    def _image(self, item: Item, entry: TagPlan) -> None:
        """Blobs, then child manifests and the top manifest by digest: everything of the image but its tag."""
        top, subset = (entry.top, True) if entry.top is not None else _top(item, entry)
        entry.top, entry.after = top, top.digest
        entry.stats = TransferStats()
        if not entry.changed:
            return
        client, reference = item.dest_client, item.dest_ref
        plan = source_plan(item.src_client, item.src_ref.repository, top, item.wanted if not subset else None)
        same_registry = item.src_client.api_host == client.api_host
        mount_from = item.src_ref.repository if same_registry and item.src_ref.repository != reference.repository \
            else None
        source = RegistryBlobSource(item.src_client, item.src_ref.repository, mount_from=mount_from)
        client.api.http.ensure_pool_size(self.ctx.workers + 2)

        name = reference.repository_name
        if (name, top.digest) in self.ensured:
            return  # another tag of this run has the same image
        blobs = [d for d in plan.blobs if (name, d['digest']) not in self.ensured]
        entry.stats.add(blobs_skipped=len(plan.blobs) - len(blobs))

        def blob(descriptor: Dict[str, Any]) -> str:
            return ensure_blob(client, reference.repository, descriptor, source, entry.stats or TransferStats(),
                               retries=self.ctx.retries, check_mode=self.ctx.check_mode)

        calls = run_all(blob, blobs, self.ctx.workers)
        for descriptor, call in zip(blobs, calls):
            if call.ok:
                self.ensured.add((name, descriptor['digest']))
            if call.ok and call.value != 'skipped' and not self.ctx.check_mode:
                self.left.add(name, 'blobs', descriptor['digest'])
        failed = next((call.error for call in calls if call.error is not None), None)
        if failed is not None:
            raise failed
        manifests = ImagePlan(top, plan.children, [], plan.images)
        dummy, pushed = publish(client, reference.with_digest(top.digest), manifests, source, self.ctx)
        entry.stats.add(manifests_pushed=pushed.manifests_pushed)
        self.ensured.add((name, top.digest))
        if not self.ctx.check_mode and pushed.manifests_pushed:
            self.left.add(name, 'manifests', top.digest)

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
            for item in group:
                executor.content(item)
        except RegistryError as error:
            raise _content_failure(error, executor, atomic, _moved(items))
        executor.tags(group)
        for item in group:
            executor.prune(item)
    return SyncOutcome(items, ctx, atomic)
