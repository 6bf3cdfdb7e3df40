# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What ``blob_verify`` does: walk an image, verify every manifest and blob, optionally keep copies.

The walk goes from the reference to each image manifest (every child of an
index, each fetched by digest and verified against its descriptor) and
collects the config and layer descriptors, each blob once however many
platforms share it. The blobs are then verified by a pool of worker threads
sharing the run's one HTTP session.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

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
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    MAX_INDEX_DEPTH,
    accepted_suffix,
    check_config,
    parse_json,
    platform_label,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import MAX_CONFIG_SIZE

CHECKS = ('full', 'exists')
DEFAULT_WORKERS = 4
MAX_WORKERS = 32
_FOREIGN_MARKERS = ('foreign', 'nondistributable')


class Item:
    """One manifest or blob to verify, and what became of it."""

    def __init__(self, digest, size, media_type, kind, platform=None):
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.kind = kind
        self.platforms = [platform] if platform else []
        self.status = 'pending'
        self.verified = False
        self.message = None
        self.actual_digest = None
        self.actual_size = None
        self.reason = None      # a few words for the summary of a failure
        self.path = None
        self.changed = False
        self.local = None       # state of the file under dest before the run: absent/ok/mismatch
        self.data = None        # bytes of a manifest or a config fetched during the walk
        self.foreign = False
        self.downloaded = 0
        self.hashed = 0
        self.sets_platform_of = []  # items whose platform comes from this config

    def add_platform(self, platform):
        if platform and platform not in self.platforms:
            self.platforms.append(platform)

    def ok(self, hashed=0):
        self.status = 'ok'
        self.verified = True
        self.hashed += hashed

    def fail(self, status, message, actual_digest=None, actual_size=None, reason=None):
        self.status = status
        self.verified = False
        self.message = message
        self.actual_digest = actual_digest
        self.actual_size = actual_size
        self.reason = reason

    def fail_from(self, error, repository=None):
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

    def to_result(self, with_dest):
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

    def describe(self):
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

    def __init__(self, client, reference, digests=None, platform=None, check='full', dest=None, workers=None,
                 retries=3, check_mode=False, warn=None, http=None, sleep=time.sleep):
        if check not in CHECKS:
            raise InvalidInputError('check must be one of %s, got %r' % (', '.join(CHECKS), check))
        if workers is None:
            workers = DEFAULT_WORKERS
        if not 1 <= workers <= MAX_WORKERS:
            raise InvalidInputError('workers must be between 1 and %d, got %r' % (MAX_WORKERS, workers))
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
        self.wanted = None
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
        self.workers = workers
        self.retries = retries
        self.check_mode = check_mode
        self.warn = warn or (lambda msg: None)
        self.http = http
        self.sleep = sleep
        self.items = {}
        self.order = []
        self.top_digest = None
        if dest is not None:
            default_file_mode()  # learn the umask here, before any worker thread exists

    # -- collecting what to verify -------------------------------------------
    def _add(self, digest, size, media_type, kind, platform=None):
        item = self.items.get(digest)
        if item is None:
            item = Item(digest, size, media_type, kind, platform)
            self.items[digest] = item
            self.order.append(digest)
        else:
            item.add_platform(platform)
        return item

    def walk(self):
        """Fetch and verify the manifests reachable from the reference; collect their blobs."""
        reference = self.reference
        manifest = self.client.get_manifest(self.repository, reference.reference)
        self.top_digest = manifest.digest
        top = self._add(manifest.digest, manifest.size, manifest.media_type, 'manifest')
        top.data = manifest.raw
        top.ok(hashed=manifest.size)
        if manifest.is_index:
            self._walk_index(manifest, depth=0)
        else:
            self._walk_image(manifest, top, platform=None, single=True)

    def _walk_index(self, index, depth):
        children = index.children()
        if self.platform is not None and depth == 0:
            children = [index.select_platform(self.platform)]
        for child in children:
            digest = child.get('digest')
            label = platform_label(child)
            item = self._add(digest, child.get('size'), child.get('media_type'), 'manifest', label)
            if item.status != 'pending':
                continue
            try:
                manifest = self.client.get_manifest(self.repository, digest)
            except (NotFoundError, IntegrityError) as error:
                item.fail_from(error, self.repository)
                continue
            if item.size is not None and manifest.size != item.size:
                item.fail('mismatch', 'The manifest %s is %d bytes, the index %s says %d'
                          % (digest, manifest.size, index.digest, item.size), manifest.digest, manifest.size,
                          reason='size differs from the index entry')
                continue
            item.data = manifest.raw
            item.media_type = item.media_type or manifest.media_type
            item.ok(hashed=manifest.size)
            if manifest.is_index:
                if depth + 1 >= MAX_INDEX_DEPTH:
                    item.fail('error', 'Index nesting deeper than %d levels; not followed' % MAX_INDEX_DEPTH)
                    continue
                self._walk_index(manifest, depth + 1)
            else:
                self._walk_image(manifest, item, platform=label, single=False)

    def _walk_image(self, manifest, manifest_item, platform, single):
        if manifest.is_schema1:
            self.warn('%s is a Docker schema1 manifest (deprecated): its layers have no sizes, they are verified '
                      'by digest only' % manifest.digest)
            arch = manifest.data.get('architecture')
            label = platform or ('linux/%s' % arch if arch else None)
            manifest_item.add_platform(label)
            # Every fsLayer, throwaway ones too (manifest_info lists the same), each blob once.
            for fs_layer in reversed(manifest.data.get('fsLayers') or []):
                self._add(fs_layer['blobSum'], None, None, 'layer', label)
            return
        if not manifest.is_image and not manifest.data.get('layers') and not manifest.data.get('config'):
            self.warn('%s has media type %s, neither an image nor an index: only the manifest itself was verified'
                      % (manifest.digest, manifest.media_type))
            return
        members = [manifest_item]
        config_item = None
        for descriptor in manifest.blob_descriptors():
            item = self._add(descriptor['digest'], descriptor.get('size'), descriptor.get('media_type'),
                             descriptor['kind'], platform)
            if descriptor.get('urls') and any(m in (descriptor.get('media_type') or '') for m in _FOREIGN_MARKERS):
                item.foreign = True
            members.append(item)
            if descriptor['kind'] == 'config' and config_item is None:
                config_item = item
        if single and config_item is not None:
            # The platform of a single image is in its config: learn it now.
            config_item.sets_platform_of = members
            self._learn_platform(config_item)

    def _learn_platform(self, config_item):
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
            for member in config_item.sets_platform_of:
                member.add_platform(str(platform))
        if self.platform is not None:
            if platform is None:
                raise InvalidInputError('Cannot tell the platform of %s: its config %s could not be read'
                                        % (self.reference.name, config_item.digest))
            if not self.platform.matches(platform):
                raise InvalidInputError('%s is a single-platform image for %s, not %s%s'
                                        % (self.reference.name, platform, self.platform,
                                           accepted_suffix(self.platform)))

    def select(self):
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
    def _verify_item(self, item, keep=False):
        """Verify one item; record the outcome in it. Never raises for a bad blob."""
        if item.status != 'pending':
            if item.status == 'ok' and item.kind == 'manifest' and self.dest is not None:
                self._save_bytes(item)
            return
        try:
            if item.foreign:
                if self.client.head_blob(self.repository, item.digest) is None:
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

    def _check_exists(self, item):
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

    def _fetch(self, item, keep):
        what = '%s %s in %s' % (item.kind, item.digest, self.repository)
        result = FetchResult()
        try:
            self._fetch_into(item, keep, what, result)
        finally:
            item.downloaded += result.bytes_transferred

    def _fetch_into(self, item, keep, what, result):
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
            if self.check_mode:
                sink = MemorySink(MAX_CONFIG_SIZE) if keep else None
                fetch_blob(self.client, self.repository, item.digest, item.size, sink=sink,
                           retries=self.retries, sleep=self.sleep, what=what, result=result)
                item.data = sink.getvalue() if keep else None
            else:
                with BlobFile(self.dest, item.digest) as blob_file:
                    fetch_blob(self.client, self.repository, item.digest, item.size, sink=blob_file,
                               retries=self.retries, sleep=self.sleep, what=what, result=result)
                    blob_file.commit()
                if keep:
                    with open(item.path, 'rb') as handle:
                        item.data = handle.read(MAX_CONFIG_SIZE + 1)
            item.changed = True
        else:
            sink = MemorySink(MAX_CONFIG_SIZE) if keep else None
            fetch_blob(self.client, self.repository, item.digest, item.size, sink=sink,
                       retries=self.retries, sleep=self.sleep, what=what, result=result)
            item.data = sink.getvalue() if keep else None
        if item.size is None:
            item.size = result.check.count
        item.ok(hashed=result.check.count)

    def _save_bytes(self, item):
        """Keep a manifest (or a config fetched during the walk) under dest."""
        if self.dest is None or item.path is not None:
            return
        item.path = blob_path(self.dest, item.digest)
        state, dummy = verify_file(item.path, item.digest, len(item.data))
        item.local = state
        if state == 'ok':
            return
        item.changed = True
        if not self.check_mode:
            write_bytes(self.dest, item.digest, item.data)

    def verify_all(self):
        """Verify every selected item with the worker pool."""
        pending = [self.items[d] for d in self.order]
        if self.http is not None:
            self.http.ensure_pool_size(self.workers)
        # The first transfer alone: it settles the scheme and the token that the workers then share.
        queue = [item for item in pending if item.status == 'pending']
        done_first = False
        if queue and not self.top_digest:
            self._verify_item(queue[0])
            done_first = True
        rest = queue[1:] if done_first else queue
        # Largest first, so that one big layer does not start last.
        rest.sort(key=lambda i: -(i.size or 0))
        if self.workers == 1 or len(rest) <= 1:
            for item in rest:
                self._verify_item(item)
        else:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(rest))) as pool:
                for future in [pool.submit(self._verify_item, item) for item in rest]:
                    future.result()
        # Manifests verified during the walk still need saving under dest.
        for item in pending:
            if item.kind == 'manifest' and item.status == 'ok' and self.dest is not None:
                self._save_bytes(item)

    def run(self):
        started = time.monotonic()
        if self.reference.tag or self.reference.digest:
            self.walk()
        self.select()
        self.verify_all()
        elapsed = time.monotonic() - started
        return self.result(elapsed)

    def result(self, elapsed):
        with_dest = self.dest is not None
        selected = [self.items[d] for d in self.order]
        blobs = [item.to_result(with_dest) for item in selected]
        bad = [item for item in selected if item.status not in ('ok', 'skipped')]
        result = {
            'changed': any(item.changed for item in selected),
            'image': self.reference.name,
            'digest': self.top_digest,
            'check': self.check,
            'blobs': blobs,
            'verified_count': sum(1 for item in selected if item.verified),
            'failed_count': len(bad),
            'bytes_verified': sum(item.hashed for item in selected if item.verified),
            'bytes_downloaded': sum(item.downloaded for item in selected),
            'elapsed': round(elapsed, 3),
        }
        if with_dest:
            result['dest'] = self.dest
            before = sorted(_file_state(item, item.local) for item in selected if item.local in ('ok', 'mismatch'))
            after = sorted(_file_state(item, _local_after(item)) for item in selected if _local_after(item))
            result['diff'] = {'before': {'blobs': before}, 'after': {'blobs': after}}
        if bad:
            kinds = set(item.status for item in bad)
            if 'mismatch' in kinds:
                cls = IntegrityError
            elif kinds == set(['missing']):
                cls = NotFoundError
            else:
                cls = RegistryError
            msg = '%d of %d %s of %s failed verification: %s' % (
                len(bad), len(selected), 'item' if len(selected) == 1 else 'items', self.reference.name,
                '; '.join(item.describe() for item in bad))
            raise cls(msg, details=result)
        return result


def _file_state(item, state):
    algorithm, encoded = item.digest.split(':', 1)
    return 'blobs/%s/%s%s' % (algorithm, encoded, '' if state == 'ok' else ' (does not verify)')


def _local_after(item):
    """State of the item's file under dest after the run (in check mode: after a real run)."""
    if item.local == 'ok' or (item.status == 'ok' and item.changed):
        return 'ok'
    return item.local if item.local == 'mismatch' else None


def _platform_of_config(data, digest):
    """The platform a config declares, or None when it cannot be told (the config's bytes are verified anyway)."""
    if not data:
        return None
    try:
        platform = check_config(parse_json(data, 'The image config %s' % digest), digest)
    except IntegrityError:
        return None
    if not platform.os or not platform.architecture:
        return None
    return platform


def verify_blobs(client, reference, **kwargs):
    """Run blob_verify; return its result or raise a RegistryError whose details hold the result."""
    dest = kwargs.get('dest')
    if dest is not None:
        dest = os.path.abspath(dest)
        if os.path.exists(dest) and not os.path.isdir(dest):
            raise InvalidInputError('dest %s exists and is not a directory' % dest)
        kwargs['dest'] = dest
    return BlobVerifier(client, reference, **kwargs).run()
