# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What ``blob_verify`` does: walk an image, verify every manifest and blob, optionally keep copies.

The walk (``_image.walk``) goes from the reference to each image manifest
(every child of an index, each fetched by digest and verified against its
descriptor) and collects the config and layer descriptors, each blob once
however many platforms share it; a child manifest that cannot be read is one
failed item, and the walk goes on. The blobs are then verified by a pool of
worker threads sharing the run's one HTTP session.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import (
    BlobFile,
    FetchResult,
    MemorySink,
    blob_path,
    default_file_mode,
    fetch_blob,
    verify_file,
    write_bytes,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._image import (
    Node,
    RepositoryManifests,
    require_platform,
    walk,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    MAX_INDEX_DEPTH,
    Platform,
    check_config,
    parse_json,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import check_workers, run_all
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import MAX_CONFIG_SIZE

CHECKS = ('full', 'exists')


class Item:
    """One manifest or blob to verify, and what became of it."""

    def __init__(self, digest: str, size: Optional[int], media_type: Optional[str], kind: str,
                 platforms: Optional[List[str]] = None) -> None:
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.kind = kind
        self.platforms = platforms if platforms is not None else []  # a walked node's: it gains those found later
        self.status = 'pending'
        self.verified = False
        self.message: Optional[str] = None
        self.actual_digest: Optional[str] = None
        self.actual_size: Optional[int] = None
        self.reason: Optional[str] = None   # a few words for the summary of a failure
        self.path: Optional[str] = None
        self.changed = False
        self.local: Optional[str] = None    # state of the file under dest before the run: absent/ok/mismatch
        self.data: Optional[bytes] = None   # bytes of a manifest or a config fetched during the walk
        self.foreign = False
        self.downloaded = 0
        self.hashed = 0

    @classmethod
    def of(cls, node: Node, repository: str) -> Item:
        """The item of a walked node; a manifest the walk could not accept is failed already."""
        item = cls(node.digest, node.size, node.media_type, node.kind, node.platforms)
        item.foreign = node.foreign
        if node.error is not None:
            item.fail_from(node.error, repository)
        elif node.manifest is not None:
            item.data = node.manifest.raw
            item.ok(hashed=node.manifest.size)
            if node.too_deep:
                item.fail('error', 'Index nesting deeper than %d levels; not followed' % MAX_INDEX_DEPTH)
        return item

    def ok(self, hashed: int = 0) -> None:
        self.status = 'ok'
        self.verified = True
        self.hashed += hashed

    def fail(self, status: str, message: str, actual_digest: Optional[str] = None, actual_size: Optional[int] = None,
             reason: Optional[str] = None) -> None:
        self.status = status
        self.verified = False
        self.message = message
        self.actual_digest = actual_digest
        self.actual_size = actual_size
        self.reason = reason

    def fail_from(self, error: RegistryError, repository: Optional[str] = None) -> None:
        details = getattr(error, 'details', {}) or {}
        if isinstance(error, NotFoundError):
            codes = getattr(error, 'codes', None) or []
            code = codes[0] if codes else ('MANIFEST_UNKNOWN' if self.kind == 'manifest' else 'BLOB_UNKNOWN')
            status = ', HTTP %d' % error.status if error.status else ''
            self.fail('missing', 'The registry does not have %s %s%s (%s%s)'
                      % (self.kind, self.digest, ' in %s' % repository if repository else '', code, status),
                      reason='%s%s' % (code, status))
        elif isinstance(error, IntegrityError) and 'field' in details:
            # A manifest that hashes right but is malformed: say what is wrong with it.
            self.fail('mismatch', error.msg, reason='malformed: %s' % details.get('reason'))
        elif isinstance(error, IntegrityError):
            self.fail('mismatch', error.msg, details.get('actual_digest'), details.get('actual_size'),
                      reason=details.get('reason'))
        else:
            self.fail('error', error.msg, None, details.get('actual_size'))

    def to_result(self, with_dest: bool) -> Dict[str, Any]:
        entry = {
            'digest': self.digest,
            'size': self.size if self.size is not None else self.actual_size,
            'media_type': self.media_type,
            'kind': self.kind,
            'platform': self.platforms[0] if self.platforms else None,
            'platforms': list(self.platforms),
            'status': self.status,
            'verified': self.verified,
        }
        if self.status != 'ok':
            entry['message'] = self.message
            entry['actual_digest'] = self.actual_digest
            entry['actual_size'] = self.actual_size
        if with_dest:
            entry['path'] = self.path
            entry['changed'] = self.changed
        return entry

    def describe(self) -> str:
        label = '%s %s' % (self.kind, self.digest)
        if self.platforms:
            label += ' (%s)' % ', '.join(self.platforms)
        if self.status == 'mismatch' and (self.reason or '').startswith('malformed'):
            return '%s: %s' % (label, self.message)
        if self.status == 'mismatch':
            return '%s: expected %s, %s bytes; got %s, %s bytes%s' % (
                label, self.digest, 'unknown' if self.size is None else self.size,
                self.actual_digest or 'an unknown digest',
                'unknown' if self.actual_size is None else self.actual_size,
                ' (%s)' % self.reason if self.reason else '')
        if self.status == 'missing':
            return '%s: missing (%s)' % (label, self.reason)
        return '%s: %s' % (label, self.message)


class BlobVerifier:
    """One run of ``blob_verify``."""

    def __init__(self, client: Any, reference: Any, ctx: RunContext, digests: Optional[List[str]] = None,
                 platform: Optional[Platform] = None, check: str = 'full', dest: Optional[str] = None,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        if check not in CHECKS:
            raise InvalidInputError('check must be one of %s, got %r' % (', '.join(CHECKS), check))
        check_workers(ctx.workers)
        if dest is not None and check != 'full':
            raise InvalidInputError('dest keeps verified copies, which needs check=full (check=exists downloads '
                                    'nothing)')
        if digests is not None and not digests:
            raise InvalidInputError('digests is empty: give at least one digest, or leave it out to verify the '
                                    'whole image')
        if digests is None and not (reference.tag or reference.digest):
            raise InvalidInputError('%s names a repository only: give a tag or digest to verify a whole image, or '
                                    'list the blobs with digests' % reference.name)
        if platform is not None and not (reference.tag or reference.digest):
            raise InvalidInputError('platform selects from an image index: give the image a tag or digest')
        self.wanted: Optional[List[str]] = None
        if digests is not None:
            self.wanted = []
            for digest in digests:
                validate_digest(digest, what='digest in digests')
                if digest not in self.wanted:
                    self.wanted.append(digest)
        self.client = client
        self.reference = reference
        self.repository = reference.repository
        self.platform = platform
        self.check = check
        self.dest = dest
        self.ctx = ctx
        self.sleep = sleep
        self.items: Dict[str, Item] = {}
        self.order: List[str] = []
        self.top_digest: Optional[str] = None
        self.elapsed = 0.0
        if dest is not None:
            default_file_mode()  # learn the umask here, before any worker thread exists

    # -- collecting what to verify -------------------------------------------
    def walk(self) -> None:
        """Fetch and verify the manifests reachable from the reference; collect their blobs."""
        manifest = self.client.get_manifest(self.repository, self.reference.reference)
        self.top_digest = manifest.digest
        platforms = [self.platform] if self.platform is not None else None
        nodes = []
        for node in walk(RepositoryManifests(self.client, self.repository), manifest, platforms):
            nodes.append(node)
            self.items[node.digest] = Item.of(node, self.repository)
            self.order.append(node.digest)
            self._warn_about(node)
        top = nodes[0]
        if not manifest.is_index and not manifest.is_schema1:
            config = next((node for node in top.members if node.kind == 'config'), None)
            if config is not None:
                self._learn_platform(top, self.items[config.digest])

    def _warn_about(self, node: Node) -> None:
        """What cannot be verified in full: schema1 layers (no sizes), manifests that are not images."""
        manifest = node.manifest
        if manifest is None or node.error is not None or manifest.is_index:
            return
        if manifest.is_schema1:
            self.ctx.warn('%s is a Docker schema1 manifest (deprecated): its layers have no sizes, they are verified '
                          'by digest only' % manifest.digest)
        elif not manifest.is_image and not manifest.data.get('layers') and not manifest.data.get('config'):
            self.ctx.warn('%s has media type %s, neither an image nor an index: only the manifest itself was '
                          'verified' % (manifest.digest, manifest.media_type))

    def _learn_platform(self, top: Node, config_item: Item) -> None:
        """The platform of a single image is in its config: learn it now (and check it when one was asked for)."""
        if self.check == 'full':
            self._verify_item(config_item, keep=True)
            data = config_item.data
        elif self.platform is not None:
            try:
                data = json.dumps(self.client.get_json_blob(
                    self.repository, {'digest': config_item.digest, 'size': config_item.size},
                    what='image config')).encode('utf-8')
            except (NotFoundError, IntegrityError):
                data = None
        else:
            return
        platform = _platform_of_config(data, config_item.digest)
        if platform is not None:
            top.add_platform(str(platform), below=True)
        if self.platform is not None:
            if platform is None:
                raise InvalidInputError('Cannot tell the platform of %s: its config %s could not be read'
                                        % (self.reference.name, config_item.digest))
            require_platform(self.platform, platform, self.reference.name)

    def select(self) -> None:
        """Keep only the items the user listed in ``digests``."""
        if self.wanted is None:
            return
        if not self.order:
            self.order = list(self.wanted)
            for digest in self.wanted:
                self.items[digest] = Item(digest, None, None, 'blob')
            return
        unknown = [d for d in self.wanted if d not in self.items]
        if unknown:
            raise InvalidInputError('Not part of %s: %s' % (self.reference.name, ', '.join(unknown)))
        self.order = list(self.wanted)

    # -- verifying ---------------------------------------------------------------
    def _verify_item(self, item: Item, keep: bool = False) -> None:
        """Verify one item; record the outcome in it. Never raises for a bad blob."""
        if item.status != 'pending':
            if item.status == 'ok' and item.kind == 'manifest' and self.dest is not None:
                self._save_bytes(item)
            return
        try:
            if item.foreign and self.client.head_blob(self.repository, item.digest) is None:
                item.status = 'skipped'
                item.message = ('foreign layer (%s): the registry does not distribute it, its urls serve it'
                                % item.media_type)
                return
            if self.check == 'exists':
                self._check_exists(item)
            elif item.data is not None:
                self._save_bytes(item)
            else:
                self._fetch(item, keep)
        except AuthenticationError:
            raise
        except RegistryError as error:
            item.fail_from(error, self.repository)

    def _check_exists(self, item: Item) -> None:
        size = self.client.head_blob(self.repository, item.digest)
        if size is None:
            item.fail('missing', 'The registry does not have %s %s in %s (BLOB_UNKNOWN, HTTP 404 to HEAD)'
                      % (item.kind, item.digest, self.repository), reason='BLOB_UNKNOWN, HTTP 404')
            return
        item.actual_size = size if size >= 0 else None
        if item.size is not None and size >= 0 and size != item.size:
            item.fail('mismatch', 'The registry has %d bytes for %s %s, its descriptor says %d'
                      % (size, item.kind, item.digest, item.size), None, size,
                      reason='the size the registry gives differs; content not checked')
            return
        if item.size is None and size >= 0:
            item.size = size
        item.status = 'ok'
        item.verified = True

    def _fetch(self, item: Item, keep: bool) -> None:
        what = '%s %s in %s' % (item.kind, item.digest, self.repository)
        result = FetchResult()
        try:
            self._fetch_into(item, keep, what, result)
        finally:
            item.downloaded += result.bytes_transferred

    def _fetch_into(self, item: Item, keep: bool, what: str, result: FetchResult) -> None:
        if self.dest is not None:
            item.path = blob_path(self.dest, item.digest)
            state, local = verify_file(item.path, item.digest, item.size)
            item.local = state
            if state == 'ok':
                # Already kept and verified: the registry only has to still have it.
                if self.client.head_blob(self.repository, item.digest) is None:
                    item.fail('missing', 'The registry does not have %s %s in %s any more (BLOB_UNKNOWN, HTTP 404 '
                              'to HEAD); a verified copy is kept at %s' % (item.kind, item.digest, self.repository,
                                                                           item.path),
                              reason='BLOB_UNKNOWN, HTTP 404')
                    return
                if keep:
                    with open(item.path, 'rb') as handle:
                        item.data = handle.read(MAX_CONFIG_SIZE + 1)
                item.size = local.count if item.size is None else item.size
                item.ok(hashed=local.count)
                return
            if self.ctx.check_mode:
                sink = MemorySink(MAX_CONFIG_SIZE) if keep else None
                fetch_blob(self.client, self.repository, item.digest, item.size, sink=sink,
                           retries=self.ctx.retries, sleep=self.sleep, what=what, result=result)
                item.data = sink.getvalue() if sink is not None else None
            else:
                with BlobFile(self.dest, item.digest) as blob_file:
                    fetch_blob(self.client, self.repository, item.digest, item.size, sink=blob_file,
                               retries=self.ctx.retries, sleep=self.sleep, what=what, result=result)
                    blob_file.commit()
                if keep:
                    with open(item.path, 'rb') as handle:
                        item.data = handle.read(MAX_CONFIG_SIZE + 1)
            item.changed = True
        else:
            sink = MemorySink(MAX_CONFIG_SIZE) if keep else None
            fetch_blob(self.client, self.repository, item.digest, item.size, sink=sink,
                       retries=self.ctx.retries, sleep=self.sleep, what=what, result=result)
            item.data = sink.getvalue() if sink is not None else None
        hashed = result.check.count if result.check is not None else 0
        if item.size is None:
            item.size = hashed
        item.ok(hashed=hashed)

    def _save_bytes(self, item: Item) -> None:
        """Keep a manifest (or a config fetched during the walk) under dest."""
        if self.dest is None or item.path is not None or item.data is None:
            return
        item.path = blob_path(self.dest, item.digest)
        state, dummy = verify_file(item.path, item.digest, len(item.data))
        item.local = state
        if state == 'ok':
            return
        item.changed = True
        if not self.ctx.check_mode:
            write_bytes(self.dest, item.digest, item.data)

    def verify_all(self) -> None:
        """Verify every selected item with the worker pool, largest first, so that one big layer does not
        start last; without a walk, the first transfer alone (it settles the scheme and the token that the
        workers then share)."""
        pending = [self.items[d] for d in self.order]
        self.client.api.http.ensure_pool_size(self.ctx.workers)
        queue = [item for item in pending if item.status == 'pending']
        first, rest = (queue[:1], queue[1:]) if not self.top_digest else ([], queue)
        rest.sort(key=lambda i: -(i.size or 0))
        for call in run_all(self._verify_item, first + rest, self.ctx.workers, first_alone=bool(first)):
            if call.error is not None:
                raise call.error
        # Manifests verified during the walk still need saving under dest.
        for item in pending:
            if item.kind == 'manifest' and item.status == 'ok' and self.dest is not None:
                self._save_bytes(item)

    def run(self) -> Dict[str, Any]:
        """Walk, verify, and return the result; a RegistryError (its details the result) when an item failed."""
        started = time.monotonic()
        if self.reference.tag or self.reference.digest:
            self.walk()
        self.select()
        self.verify_all()
        self.elapsed = time.monotonic() - started
        result = self.to_result()
        self.raise_for_failures(result)
        return result

    def to_result(self) -> Dict[str, Any]:
        """The module result (see the RETURN docs of blob_verify)."""
        with_dest = self.dest is not None
        selected = [self.items[d] for d in self.order]
        result = {
            'changed': any(item.changed for item in selected),
            'image': self.reference.name,
            'digest': self.top_digest,
            'check': self.check,
            'blobs': [item.to_result(with_dest) for item in selected],
            'verified_count': sum(1 for item in selected if item.verified),
            'failed_count': len(self.failed()),
            'bytes_verified': sum(item.hashed for item in selected if item.verified),
            'bytes_downloaded': sum(item.downloaded for item in selected),
            'elapsed': round(self.elapsed, 3),
        }
        if with_dest:
            result['dest'] = self.dest
            before = sorted(_file_state(item, item.local) for item in selected if item.local in ('ok', 'mismatch'))
            after = sorted(_file_state(item, _local_after(item)) for item in selected if _local_after(item))
            result['diff'] = {'before': {'blobs': before}, 'after': {'blobs': after}}
        return result

    def failed(self) -> List[Item]:
        return [self.items[d] for d in self.order if self.items[d].status not in ('ok', 'skipped')]

    def raise_for_failures(self, result: Dict[str, Any]) -> None:
        """One error for every failed item: IntegrityError when one did not verify, NotFoundError when all were
        missing, RegistryError otherwise; its details are the result."""
        bad = self.failed()
        if not bad:
            return
        kinds = set(item.status for item in bad)
        cls: type[RegistryError]
        if 'mismatch' in kinds:
            cls = IntegrityError
        elif kinds == set(['missing']):
            cls = NotFoundError
        else:
            cls = RegistryError
        count = len(self.order)
        msg = '%d of %d %s of %s failed verification: %s' % (
            len(bad), count, 'item' if count == 1 else 'items', self.reference.name,
            '; '.join(item.describe() for item in bad))
        raise cls(msg, details=result)


def _file_state(item: Item, state: Optional[str]) -> str:
    algorithm, encoded = item.digest.split(':', 1)
    return 'blobs/%s/%s%s' % (algorithm, encoded, '' if state == 'ok' else ' (does not verify)')


def _local_after(item: Item) -> Optional[str]:
    """State of the item's file under dest after the run (in check mode: after a real run)."""
    if item.local == 'ok' or (item.status == 'ok' and item.changed):
        return 'ok'
    return item.local if item.local == 'mismatch' else None


def _platform_of_config(data: Optional[bytes], digest: str) -> Optional[Platform]:
    """The platform a config declares, or None when it cannot be told (the config's bytes are verified anyway)."""
    if not data:
        return None
    try:
        platform = check_config(parse_json(data, 'The image config %s' % digest), digest)
    except IntegrityError:
        return None
    return platform if platform.known else None


def verify_blobs(client: Any, reference: Any, ctx: Optional[RunContext] = None, digests: Optional[List[str]] = None,
                 platform: Optional[Platform] = None, check: str = 'full', dest: Optional[str] = None,
                 sleep: Callable[[float], Any] = time.sleep) -> Dict[str, Any]:
    """Run blob_verify; return its result or raise a RegistryError whose details hold the result."""
    if dest is not None:
        dest = os.path.abspath(dest)
        if os.path.exists(dest) and not os.path.isdir(dest):
            raise InvalidInputError('dest %s exists and is not a directory' % dest)
    return BlobVerifier(client, reference, ctx or RunContext(), digests=digests, platform=platform, check=check,
                        dest=dest, sleep=sleep).run()
