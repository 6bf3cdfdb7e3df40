# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Idempotent tag writes and deletes: ask the registry, write only what differs.

The building block is :func:`put_tags`: "put this manifest under these tags
unless they already point at it". It HEADs every tag (in parallel), refuses
moves when ``overwrite`` is false (for all tags before any write), never PUTs a
tag that already has the digest (registries with immutable tags reject even an
identical PUT), fetches the manifest bytes at most once, PUTs them byte for
byte and checks the digest the registry answers. It returns a :class:`TagSync`
that renders the per-tag results and the diff. ``copy``/``push`` call it for
their final tag write; ``tag`` calls it through :func:`tag_present`.

:func:`delete_tags` removes tags without touching the image: the OCI tag
DELETE where the registry has it, else a throw-away manifest pushed to the tag
and deleted by its own digest. :func:`probe_deletion` finds out, without changing anything, whether
the registry has deletion disabled: check mode of ``tag state=absent``, ``prune`` and ``delete``
asks it, so a check run fails where the real run would.

The ``tag`` module's two states are :func:`tag_present` and :func:`tag_absent`; both
return a :class:`TagOutcome`, whose ``to_result()`` is the module's result.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Sequence, Union

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import compute_digest, validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryHTTPError,
    UnsupportedError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import OCI_MANIFEST, SCHEMA1_TYPES
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import DEFAULT_FANOUT, parallel_map, run_all
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference, validate_tag
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import upload_bytes

Entry = dict[str, Any]
# The manifest bytes to put, or a callable returning (bytes, media type), called at most once.
ManifestSource = Union[bytes, Callable[[], tuple[bytes, str]]]

# The OCI "empty" descriptor: the 2-byte JSON document "{}".
EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json'
EMPTY_DATA = b'{}'
EMPTY_DIGEST = compute_digest(EMPTY_DATA)
EMPTY_DESCRIPTOR = {'mediaType': EMPTY_MEDIA_TYPE, 'digest': EMPTY_DIGEST, 'size': len(EMPTY_DATA)}
PLACEHOLDER_ANNOTATION = 'io.imagelayers.registry.placeholder'


class PreconditionError(RegistryError):
    """A guard of the task (expected digest, no overwrite) does not hold; nothing was written."""


class TagConflictError(PreconditionError):
    """``overwrite: false`` and a tag already points at another digest."""


# -- inputs --------------------------------------------------------------------
def normalize_tags(tags: Sequence[Any] | None) -> list[str]:
    """Validated tags, in the given order, without duplicates."""
    if not tags:
        raise InvalidInputError('No tags given')
    result: list[str] = []
    for tag in tags:
        if isinstance(tag, str) and (':' in tag or '/' in tag or '@' in tag):
            raise InvalidInputError('Invalid tag %r: give tag names only (the repository comes from the image), '
                                    'for example "1.4.2"' % (tag,))
        validate_tag(tag)
        if tag not in result:
            result.append(tag)
    return result


def check_expected_digest(actual: str | None, expected: str | None, name: str) -> None:
    """Raise PreconditionError unless ``actual`` is ``expected`` (when one is given)."""
    if not expected:
        return
    validate_digest(expected, what='expected_digest')
    if actual != expected:
        raise PreconditionError(
            '%s resolves to %s, not to the expected digest %s; nothing was changed' % (name, actual, expected),
            details={'expected_digest': expected, 'actual_digest': actual})


# -- reading tags -----------------------------------------------------------------
def read_tags(client: RegistryClient, repository: str, tags: Sequence[str],
              workers: int = DEFAULT_FANOUT) -> dict[str, str | None]:
    """``{tag: digest or None}`` for every tag, one HEAD each (``workers`` in parallel)."""
    def resolve(tag: str) -> str | None:
        found = client.resolve(repository, tag)
        return found['digest'] if found else None
    return dict(zip(tags, parallel_map(resolve, tags, workers)))


class TagSync:
    """The outcome (or, in check mode, the plan) for a set of tags of one repository."""

    def __init__(self, repository_name: str, digest: str | None, entries: list[Entry]) -> None:
        self.repository_name = repository_name
        self.digest = digest
        self.entries = entries  # [{'tag', 'before', 'after', 'changed'}], in the order given

    @property
    def changed(self) -> bool:
        return any(e['changed'] for e in self.entries)

    def results(self) -> list[Entry]:
        return [dict(e) for e in self.entries]

    def diff(self) -> dict[str, Any]:
        """``before``/``after`` map each tag to its digest; a tag that does not exist is left out."""
        header = '%s tags' % self.repository_name
        return {
            'before': dict((e['tag'], e['before']) for e in self.entries if e['before']),
            'after': dict((e['tag'], e['after']) for e in self.entries if e['after']),
            'before_header': header,
            'after_header': header,
        }


def plan_put(current: dict[str, str | None], tags: Sequence[str], digest: str, overwrite: bool = True,
             repository_name: str | None = None) -> list[Entry]:
    """Entries for putting ``digest`` under ``tags``; raise TagConflictError before any write."""
    entries = []
    conflicts = []
    for tag in tags:
        before = current.get(tag)
        entries.append({'tag': tag, 'before': before, 'after': digest, 'changed': before != digest})
        if before is not None and before != digest and not overwrite:
            conflicts.append({'tag': tag, 'current_digest': before})
    if conflicts:
        raise TagConflictError(
            'overwrite is false and %s already point%s at another digest (%s), not at %s; nothing was changed'
            % (', '.join('%s:%s' % (repository_name or '', c['tag']) if repository_name else c['tag']
                         for c in conflicts),
               's' if len(conflicts) == 1 else '',
               ', '.join(c['current_digest'] for c in conflicts), digest),
            details={'conflicts': conflicts, 'digest': digest})
    return entries


def put_tags(client: RegistryClient, repository: str, tags: Sequence[str], digest: str, media_type: str | None,
             manifest: ManifestSource, overwrite: bool = True, check_mode: bool = False,
             current: dict[str, str | None] | None = None, repository_name: str | None = None,
             workers: int = DEFAULT_FANOUT) -> TagSync:
    """Make every tag in ``tags`` point at ``digest``; write only the tags that differ.

    ``manifest`` is the manifest's bytes, or a callable returning ``(bytes, media_type)``
    that is called at most once, and only when some tag must be written.
    ``current`` (``{tag: digest or None}``) skips the HEADs when the caller just
    read the tags. Returns a TagSync; raises TagConflictError before any write.
    ``workers`` bounds the HEADs and PUTs in flight.
    """
    tags = normalize_tags(tags)
    name = repository_name or repository
    if media_type in SCHEMA1_TYPES:
        raise InvalidInputError(
            '%s@%s is a Docker schema1 manifest: its signature embeds the tag it was pushed with, so it cannot be '
            'put under another tag. Convert the image to schema2 or OCI (for example with skopeo copy or '
            'the copy module) and tag that' % (name, digest))
    if current is None:
        current = read_tags(client, repository, tags, workers)
    entries = plan_put(current, tags, digest, overwrite=overwrite, repository_name=name)
    sync = TagSync(name, digest, entries)
    to_write = [e for e in entries if e['changed']]
    if check_mode or not to_write:
        return sync
    if callable(manifest):
        raw, put_type = manifest()
    else:
        raw, put_type = manifest, media_type or ''
    put_type = put_type or media_type or ''
    if put_type in SCHEMA1_TYPES:
        raise InvalidInputError('%s@%s is a Docker schema1 manifest; it cannot be put under another tag' % (name, digest))
    actual = compute_digest(raw, digest.split(':', 1)[0])
    if actual != digest:
        raise IntegrityError('The manifest bytes to tag hash to %s, not %s; nothing was written' % (actual, digest),
                             details={'expected_digest': digest, 'actual_digest': actual})

    def write(entry: Entry) -> str | None:
        answered = client.put_manifest(repository, entry['tag'], raw, put_type)
        if not answered:
            found = client.resolve(repository, entry['tag'])
            answered = found['digest'] if found else None
        if answered != digest:
            raise IntegrityError(
                'The registry stored %s:%s as %s, not as the digest of the bytes sent (%s)'
                % (name, entry['tag'], answered, digest),
                details={'expected_digest': digest, 'actual_digest': answered})
        return answered

    # The first write alone (it fetches the push token the others share); the rest in parallel.
    failures = []
    for entry, call in zip(to_write, run_all(write, to_write, workers)):
        error = call.error
        if not call.attempted:
            entry['changed'] = False
            entry['after'] = entry['before']
            entry['error'] = 'not attempted'
        elif error is not None:
            # Not written (or, on a digest mismatch, written wrongly): report what is there now.
            entry['changed'] = isinstance(error, IntegrityError)
            entry['after'] = error.details.get('actual_digest') if isinstance(error, IntegrityError) else entry['before']
            entry['error'] = getattr(error, 'msg', str(error))
            failures.append((entry, error))
    if failures:
        raise _partial_failure(failures, sync, 'write')
    return sync


def _partial_failure(failures: list[tuple[Entry, BaseException]], sync: TagSync, verb: str) -> RegistryError:
    dummy, error = failures[0]
    first = error if isinstance(error, RegistryError) else RegistryError(str(error))
    done = [e['tag'] for e in sync.entries if e['changed'] and 'error' not in e]
    failed = [e['tag'] for e, dummy in failures]
    if done:
        outcome = '. Changed nonetheless: %s' % ', '.join(done)
    elif 'othing was changed' in first.msg:
        outcome = ''
    else:
        outcome = '. No tag was changed'
    first.msg = 'Could not %s tag%s %s of %s: %s%s' % (
        verb, '' if len(failed) == 1 else 's', ', '.join(failed), sync.repository_name, first.msg, outcome)
    first.details['tags'] = sync.results()
    first.details['changed'] = sync.changed
    return first


# -- the tag module -----------------------------------------------------------
class TagOutcome:
    """What the ``tag`` module did (or, in check mode, would do): ``to_result()`` is its result."""

    def __init__(self, reference: ImageReference, sync: TagSync, ctx: RunContext,
                 source: dict[str, Any] | None = None) -> None:
        self.reference = reference
        self.sync = sync
        self.ctx = ctx
        self.source = source  # the resolved image of state=present; None for state=absent

    def to_result(self) -> dict[str, Any]:
        source = self.source or {}
        result = {'digest': source.get('digest'), 'media_type': source.get('media_type'),
                  'changed': self.sync.changed, 'image': self.reference.name, 'tags': self.sync.results()}
        if self.ctx.diff_mode:
            result['diff'] = self.sync.diff()
        return result


def present_target(image: str, tags: Sequence[str] | None) -> ImageReference:
    """The source image of ``state=present`` (``latest`` without a tag); tags are required."""
    reference = ImageReference.parse(image, default_tag='latest')
    if not tags:
        raise InvalidInputError('tags is required with state=present: give the tags to point at %s' % reference.name)
    return reference


def absent_target(image: str, tags: Sequence[str] | None) -> tuple[ImageReference, list[str]]:
    """The repository and the tags to delete with ``state=absent``: in ``image`` or in ``tags``, not both."""
    reference = ImageReference.parse(image)
    if reference.digest:
        raise InvalidInputError('state=absent deletes tags, never an image: give %s without a digest '
                                '(use expected_digest to guard the deletion)' % reference.name)
    if tags and reference.tag:
        raise InvalidInputError('With state=absent, give the tags to delete either in image (%s) or in tags, '
                                'not both' % reference.name)
    wanted = list(tags or ([reference.tag] if reference.tag else []))
    if not wanted:
        raise InvalidInputError('Nothing to delete: give the tag in image (%s:TAG) or in tags' % reference.name)
    return reference, wanted


def resolve_source(client: RegistryClient, reference: ImageReference) -> dict[str, Any]:
    """``{'digest', 'media_type', 'manifest' (or absent)}`` of the source; NotFoundError when absent."""
    name = reference.reference
    if name is None:
        raise InvalidInputError('The source image %s names neither a tag nor a digest' % reference.name)
    found = client.resolve(reference.repository, name)
    if found is None:
        raise NotFoundError('The source image %s does not exist' % reference.name)
    if reference.digest and found['digest'] != reference.digest:
        raise IntegrityError('The registry answered %s for %s' % (found['digest'], reference.name),
                             details={'expected_digest': reference.digest, 'actual_digest': found['digest']})
    return found


def tag_present(client: RegistryClient, reference: ImageReference, tags: Sequence[str], overwrite: bool = True,
                expected_digest: str | None = None, ctx: RunContext | None = None) -> TagOutcome:
    """Point ``tags`` (in the repository of ``reference``) at the manifest ``reference`` resolves to."""
    ctx = ctx or RunContext()
    tags = normalize_tags(tags)
    source = resolve_source(client, reference)
    check_expected_digest(source['digest'], expected_digest, reference.name)
    digest = source['digest']
    repository = reference.repository

    def fetch() -> tuple[bytes, str]:
        manifest = source.get('manifest') or client.get_manifest(repository, digest)
        return manifest.raw, manifest.media_type

    sync = put_tags(client, repository, tags, digest, source['media_type'], fetch, overwrite=overwrite,
                    check_mode=ctx.check_mode, repository_name=reference.repository_name, workers=ctx.workers)
    return TagOutcome(reference, sync, ctx, source)


# -- deleting tags -------------------------------------------------------------
def placeholder_manifest() -> tuple[bytes, str]:
    """A unique OCI manifest (the empty config, one empty layer, a random annotation) and its digest."""
    document = {
        'schemaVersion': 2,
        'mediaType': OCI_MANIFEST,
        'config': dict(EMPTY_DESCRIPTOR),
        'layers': [dict(EMPTY_DESCRIPTOR)],
        'annotations': {
            PLACEHOLDER_ANNOTATION: 'pushed by imagelayers.registry.tag to delete a tag; safe to delete',
            PLACEHOLDER_ANNOTATION + '.nonce': uuid.uuid4().hex,
        },
    }
    raw = json.dumps(document, sort_keys=True, separators=(',', ':')).encode('utf-8')
    return raw, compute_digest(raw)


class TagDeleter:
    """Deletes tags of one repository, learning once per run how the registry allows it."""

    def __init__(self, client: RegistryClient, repository: str, repository_name: str | None = None) -> None:
        self.client = client
        self.repository = repository
        self.name = repository_name or repository
        self.tag_delete: bool | None = None      # None: not tried yet; False: the registry has no tag DELETE
        self.delete_allowed: bool | None = None  # None: unknown; True once a manifest DELETE is known to work
        self.empty_blob_ready = False

    def _delete(self, reference: str, what: str) -> None:
        self.client.delete_manifest(self.repository, reference, what=what)

    def delete(self, tag: str, digest: str) -> bool:
        """Remove ``tag`` (currently at ``digest``); never deletes ``digest`` itself.

        Returns False when the tag was already gone (deleted by someone else meanwhile).
        """
        if self.tag_delete is not False:
            try:
                self._delete(tag, 'DELETE tag %s:%s' % (self.name, tag))
                self.tag_delete = True
                return True
            except NotFoundError:
                # Gone meanwhile, or a registry that answers 404 to a DELETE it does not route: ask.
                if self.client.resolve(self.repository, tag) is None:
                    return False
                self.tag_delete = False
            except RegistryHTTPError as error:
                # distribution 2.x answers 400 DIGEST_INVALID (deletion enabled, but only by digest),
                # others 405/UNSUPPORTED, which also means "deletion disabled": the probe below tells.
                if error.status not in (400, 405) and 'UNSUPPORTED' not in error.codes:
                    raise
                self.tag_delete = False
        self._delete_with_placeholder(tag, digest)
        return True

    def _probe(self, placeholder_digest: str) -> None:
        """DELETE a manifest that does not exist yet: 404 means deleting is allowed, 405 that it is not."""
        probe_deletion(self.client, self.repository, self.name, placeholder_digest)
        self.delete_allowed = True

    def _ensure_empty_blob(self) -> None:
        if self.empty_blob_ready:
            return
        if self.client.head_blob(self.repository, EMPTY_DIGEST) is None:
            upload_bytes(self.client, self.repository, EMPTY_DATA, EMPTY_DIGEST)
        self.empty_blob_ready = True

    def _delete_with_placeholder(self, tag: str, digest: str) -> None:
        raw, placeholder = placeholder_manifest()
        if not self.delete_allowed:
            self._probe(placeholder)
        self._ensure_empty_blob()
        answered = self.client.put_manifest(self.repository, tag, raw, OCI_MANIFEST)
        if answered and answered != placeholder:
            raise IntegrityError('The registry stored the placeholder for %s:%s as %s, not %s; %s:%s no longer '
                                 'points at %s' % (self.name, tag, answered, placeholder, self.name, tag, digest))
        try:
            self._delete(placeholder, 'DELETE placeholder %s@%s' % (self.name, placeholder))
        except RegistryError as error:
            raise self._restore(tag, digest, error)
        if self.client.resolve(self.repository, tag) is not None:
            raise RegistryHTTPError('The registry still lists %s:%s after its placeholder manifest %s was deleted'
                                    % (self.name, tag, placeholder))

    def _restore(self, tag: str, digest: str, error: RegistryError) -> RegistryError:
        """Put the original manifest back under ``tag`` after a failed placeholder delete."""
        try:
            original = self.client.get_manifest(self.repository, digest)
            self.client.put_manifest(self.repository, tag, original.raw, original.media_type)
            state = 'the tag was put back on %s' % digest
        except RegistryError as restore_error:
            state = 'putting the tag back on %s failed too (%s): it now points at a placeholder manifest' % (
                digest, restore_error.msg)
        error.msg = 'Deleting the placeholder manifest pushed to %s:%s failed: %s; %s' % (
            self.name, tag, error.msg, state)
        return error


TAG_CANNOT_GO = 'and it has no tag DELETE, so the tag cannot be removed'


def deletion_disabled(client: RegistryClient, error: RegistryHTTPError, consequence: str = TAG_CANNOT_GO) -> UnsupportedError:
    """The error of a registry that refuses every manifest DELETE (405, ``UNSUPPORTED``), saying what to change."""
    return UnsupportedError(
        'The registry %s does not allow deleting manifests (%s): deletion is disabled there (on a '
        'distribution registry: storage.delete.enabled is false), %s. Nothing was changed'
        % (client.api_host, _status_text(error), consequence),
        status=error.status, url=error.url, codes=error.codes, errors=error.errors)


def probe_deletion(client: RegistryClient, repository: str, name: str | None = None, digest: str | None = None,
                   consequence: str = TAG_CANNOT_GO) -> None:
    """Raise UnsupportedError when the registry has deletion disabled; change nothing either way.

    One DELETE of a manifest that cannot exist (``digest``, or the digest of random bytes):
    distribution answers 404 where deletion is enabled and 405 ``UNSUPPORTED`` where it is
    not. Check mode needs it: without a write, nothing else tells the two apart.
    """
    digest = digest or compute_digest(uuid.uuid4().hex.encode('ascii'))
    try:
        client.delete_manifest(repository, digest, what='DELETE probe %s@%s' % (name or repository, digest))
    except NotFoundError:
        pass
    except UnsupportedError as error:
        raise deletion_disabled(client, error, consequence)


def _status_text(error: RegistryHTTPError) -> str:
    text = 'HTTP %s' % error.status if error.status else 'an error'
    if error.codes:
        text += ' ' + ', '.join(error.codes)
    return text


def tag_absent(client: RegistryClient, reference: ImageReference, tags: Sequence[str],
               expected_digest: str | None = None, ctx: RunContext | None = None) -> TagOutcome:
    """Delete ``tags`` of the repository of ``reference``; leave the images and their other tags alone."""
    ctx = ctx or RunContext()
    tags = normalize_tags(tags)
    if expected_digest:
        validate_digest(expected_digest, what='expected_digest')
    repository = reference.repository
    current = read_tags(client, repository, tags, ctx.workers)
    if expected_digest:
        moved = [t for t in tags if current[t] is not None and current[t] != expected_digest]
        if moved:
            raise PreconditionError(
                '%s %s not at the expected digest %s (but at %s); nothing was deleted'
                % (', '.join('%s:%s' % (reference.repository_name, t) for t in moved),
                   'is' if len(moved) == 1 else 'are', expected_digest, ', '.join(str(current[t]) for t in moved)),
                details={'expected_digest': expected_digest,
                         'conflicts': [{'tag': t, 'current_digest': current[t]} for t in moved]})
    entries = [{'tag': t, 'before': current[t], 'after': None, 'changed': current[t] is not None} for t in tags]
    sync = TagSync(reference.repository_name, None, entries)
    if not ctx.check_mode:
        _delete_all(client, reference, sync)
    elif sync.changed:
        # Check mode sees what the real run would meet: a registry with deletion disabled fails here too.
        probe_deletion(client, repository, reference.repository_name)
    return TagOutcome(reference, sync, ctx)


def _delete_all(client: RegistryClient, reference: ImageReference, sync: TagSync) -> None:
    """Delete the tags ``sync`` plans to change, in order; stop at the first failure."""
    entries = sync.entries
    deleter = TagDeleter(client, reference.repository, reference.repository_name)
    for entry in entries:
        if not entry['changed']:
            continue
        try:
            if not deleter.delete(entry['tag'], entry['before']):
                entry['changed'] = False  # someone else deleted it meanwhile
        except RegistryError as error:
            entry['error'] = error.msg
            entry['changed'] = False
            entry['after'] = entry['before']
            for later in entries[entries.index(entry) + 1:]:
                if later['changed']:
                    later['changed'] = False
                    later['after'] = later['before']
                    later['error'] = 'not attempted'
            raise _partial_failure([(entry, error)], sync, 'delete')
