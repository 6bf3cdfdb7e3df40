# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Blob uploads: the one implementation behind ``tag``'s placeholder, ``copy`` and ``push``.

- :func:`upload_bytes` uploads a small blob held in memory (POST, then one PUT);
- :func:`ensure_blob` makes sure the destination repository has a blob: a HEAD
  first (skip what is there), a cross-repository mount when the source lives in
  the same registry (201: done; 202: upload on the ``Location`` it returned), or
  a monolithic upload whose body is streamed from a :class:`BlobSource` (another
  registry's blob reader, a file in an archive) and hashed and counted on the way,
  so a blob that does not verify is never committed.

The requests themselves are the client's (``start_upload``, ``finish_upload``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import VerifiedBody
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    IntegrityError,
    RegistryError,
    RegistryHTTPError,
    TransportError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    TRANSFER_ERRORS,
    describe_exception,
)

if TYPE_CHECKING:
    import requests

    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient


def upload_bytes(client: RegistryClient, repository: str, data: bytes, digest: str) -> None:
    """Upload a small blob held in memory: POST to start, one PUT with the bytes."""
    validate_digest(digest)
    location = client.start_upload(repository)
    client.finish_upload(repository, location, digest, data)


class TransferStats:
    """Thread-safe counters of one copy or push."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.blobs_copied = 0
        self.blobs_mounted = 0
        self.blobs_skipped = 0
        self.bytes_transferred = 0
        self.manifests_pushed = 0

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> Dict[str, int]:
        return {'blobs_copied': self.blobs_copied, 'blobs_mounted': self.blobs_mounted,
                'blobs_skipped': self.blobs_skipped, 'bytes_transferred': self.bytes_transferred,
                'manifests_pushed': self.manifests_pushed}


class BlobSource:
    """Where blob bytes come from. Subclasses implement ``open``; ``mount_from`` enables mounts."""

    name = 'the source'                # for messages: where the bytes come from
    mount_from: Optional[str] = None   # a repository in the destination registry that holds the blobs

    def open(self, descriptor: Dict[str, Any]) -> Tuple[Callable[[int], bytes], Callable[[], Any]]:
        """``(read, close)`` for the blob's bytes: ``read(n)`` returns at most n bytes, b'' at the end."""
        raise NotImplementedError


def ensure_blob(client: RegistryClient, repository: str, descriptor: Dict[str, Any], source: BlobSource,
                stats: TransferStats, retries: int = 3, check_mode: bool = False) -> str:
    """Make sure ``repository`` has the blob of ``descriptor``; return 'skipped', 'mounted' or 'copied'.

    In check mode, only the HEAD is made; a missing blob is reported as it would be handled.
    """
    digest = descriptor['digest']
    size = descriptor.get('size')
    validate_digest(digest, what='blob digest')
    if client.head_blob(repository, digest) is not None:
        stats.add(blobs_skipped=1)
        return 'skipped'
    if check_mode:
        if source.mount_from:
            stats.add(blobs_mounted=1)
            return 'mounted'
        stats.add(blobs_copied=1, bytes_transferred=size or 0)
        return 'copied'
    location: Optional[str] = None  # of an upload the registry started instead of a mount
    if source.mount_from:
        try:
            location = client.mount_blob(repository, digest, source.mount_from)
        except AuthenticationError:
            pass  # not allowed to read the other repository: upload instead
        else:
            if location is None:
                stats.add(blobs_mounted=1)
                return 'mounted'
    attempt = 0
    while True:
        attempt += 1
        if location is None:
            location = client.start_upload(repository)
        if size is None:
            raise IntegrityError('The descriptor of blob %s has no size' % digest)
        read, close = source.open(descriptor)
        body = VerifiedBody(read, digest, size, what='blob %s from %s' % (digest, source.name))
        try:
            _send_body(client, repository, location, digest, body)
        except (TransportError, RegistryHTTPError) as error:
            # A streamed body cannot be replayed by the HTTP layer: start the blob over, a few times.
            transient = isinstance(error, TransportError) or (error.status or 500) >= 500
            if attempt > retries or not transient:
                raise _with_context(error, digest, repository)
            location = None
            continue
        finally:
            close()
        stats.add(blobs_copied=1, bytes_transferred=body.check.count)
        return 'copied'


def _send_body(client: RegistryClient, repository: str, location: str, digest: str,
               body: VerifiedBody) -> requests.Response:
    """finish_upload, with any failure the HTTP layer let through told in words (a TransportError)."""
    try:
        return client.finish_upload(repository, location, digest, body)
    except TRANSFER_ERRORS as exc:
        raise TransportError('Uploading blob %s to %s failed: %s' % (digest, repository, describe_exception(exc)),
                             details={'expected_digest': digest, 'actual_size': body.check.count})


def _with_context(error: RegistryError, digest: str, repository: str) -> RegistryError:
    """Name the blob and the destination in the message (a source's failure names only the source)."""
    if isinstance(error, RegistryError):
        if digest not in error.msg:
            error.msg = 'Uploading blob %s to %s failed: %s' % (digest, repository, error.msg)
        elif ' to %s' % repository not in error.msg:
            error.msg = 'Uploading to %s failed: %s' % (repository, error.msg)
    return error
