# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The one way blob bytes are read from a registry: resumable with ``Range``, a deadline per request.

Every consumer reads through it: ``_blobs.fetch_blob`` (into a sink, with the fast
``readinto`` path) and a copy's source (``read``, streamed into an upload's
VerifiedBody). The requests go through :meth:`.client.RegistryClient.open_blob`.
"""

from __future__ import annotations

import http.client
from typing import TYPE_CHECKING, Any, Callable

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, RegistryHTTPError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    TRANSFER_ERRORS,
    Deadline,
    DeadlineExceeded,
    backoff,
    body_readinto,
    content_length,
    guard,
    release_after_fast_read,
)

if TYPE_CHECKING:
    import requests

    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient

# A blob is read in chunks of this size while bytes already delivered are skipped.
SKIP_CHUNK = 1024 * 1024


class ConnectionDropped(http.client.HTTPException):
    """The body ended before its Content-Length: the connection was cut."""


# What ends one request of a blob transfer, to be resumed (and raised once the retries are spent).
BLOB_READ_ERRORS = (DeadlineExceeded,) + TRANSFER_ERRORS


def _content_range_start(response: requests.Response) -> int | None:
    """First byte position of a ``Content-Range: bytes a-b/c`` answer, or None."""
    value = (response.headers.get('Content-Range') or '').strip()
    if not value.startswith('bytes ') or '-' not in value:
        return None
    start = value[6:].split('-', 1)[0].strip()
    return int(start) if start.isdigit() else None


def _closed(dummy: Any) -> Any:
    raise ValueError('read from a closed BlobReader')


class BlobReader:
    """A blob's bytes from the registry, in order, resumed with ``Range`` when the connection drops.

    ``open()`` sends the first GET, so that a missing blob, or a ``Content-Length``
    that disagrees with ``size``, fails before anything is read; it returns
    ``(read, close)``. ``readinto(buffer)`` reads through the transport's fast path
    where it can. When a read fails (the connection dropped, the deadline of the
    request passed), the blob is asked for again from the first byte not yet handed
    out (``Range: bytes=N-``), at most ``retries`` times, waiting ``backoff`` in
    between; each request has its own deadline (``timeout + bytes left / MIN_RATE``).
    A registry that ignores the range answers the whole blob: it is read from the
    start again and the bytes already handed out are skipped, so the consumer sees
    one stream either way; a range from any later byte fails. With the retries
    spent, the last failure is raised as it came: the consumer says what it was
    reading. Nothing is verified here: the consumer hashes what it reads.
    """

    def __init__(self, client: RegistryClient, repository: str, digest: str, size: int | None = None,
                 what: str | None = None, retries: int = 0, sleep: Callable[[float], Any] | None = None,
                 deadline_what: str | None = None) -> None:
        self.client = client
        self.repository = repository
        self.digest = digest
        self.size = size
        self.what = what or 'blob %s in %s' % (digest, repository)
        self.deadline_what = deadline_what or self.what
        self.retries = retries
        self.sleep = sleep or client.api.http.sleep
        self.url = client.blob_url(repository, digest)
        self.position = 0           # bytes handed to the consumer
        self.attempts = 0
        self.resumed = 0
        self.restarted = 0
        self.bytes_transferred = 0  # bytes that came over the wire, skipped ones included
        self._response: Any = None
        self._deadline: Deadline | None = None
        # Of the request in flight (see _request and _bind).
        self._skip = 0              # bytes at the start of its body that were handed out already
        self._received = 0          # bytes of its body read so far
        self._announced: int | None = None
        self._fast: Callable[[memoryview], int] | None = None
        self._read: Callable[[int], bytes] = _closed
        self._readinto: Callable[[memoryview], int] = _closed

    def open(self) -> tuple[Callable[[int], bytes], Callable[[], None]]:
        """Send the first request; ``(read, close)``."""
        self._request()
        return self.read, self.close

    def read(self, amount: int) -> bytes:
        """At most ``amount`` bytes of the blob; b'' at its end."""
        return self._next(amount, into=False)

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` with the next bytes of the blob; how many (0 at its end)."""
        return self._next(view, into=True)

    def close(self) -> None:
        self._drop()
        self._read = self._readinto = _closed  # and no request again

    # -- one request ------------------------------------------------------
    def _request(self) -> None:
        self.attempts += 1
        offset = self.position
        deadline = Deadline(self.client.api.options.timeout, None if self.size is None else self.size - offset,
                            self.deadline_what)
        headers = {'Range': 'bytes=%d-' % offset} if offset else None
        response = self.client.open_blob(self.repository, self.digest, headers=headers)
        self._response, self._deadline = response, deadline
        try:
            deadline.watch(response)
            self.url = getattr(response, 'url', None) or self.url
            start = self._start_of(response, offset)
            self._check_length(response, start)
        except BaseException:
            self._drop()
            raise
        if self.size is not None:
            deadline.allow(self.size - start)  # a restart from zero may read the whole blob
        self._skip = offset - start
        self._received = 0
        self._announced = content_length(response)
        self._bind(response, deadline)

    def _bind(self, response: requests.Response, deadline: Deadline) -> None:
        """The guarded reads of this response: the fast path for ``readinto`` unless bytes must be skipped."""
        grow = self.size is None
        raw_read = response.raw.read

        def read(amount: int) -> bytes:
            return raw_read(amount, decode_content=False)

        def copy_into(view: memoryview) -> int:
            data = read(len(view))
            view[:len(data)] = data
            return len(data)

        self._fast = body_readinto(response) if not self._skip else None
        self._read = guard(read, deadline, grow)
        self._readinto = guard(self._fast or copy_into, deadline, grow)

    def _start_of(self, response: requests.Response, offset: int) -> int:
        """Where the body of ``response`` starts in the blob."""
        if not offset:
            if response.status_code != 200:
                raise RegistryHTTPError('GET %s answered HTTP %d to a request without Range'
                                        % (self.what, response.status_code), status=response.status_code, url=self.url)
            return 0
        start = _content_range_start(response) if response.status_code == 206 else 0
        if start is None or start > offset:
            raise RegistryHTTPError('GET %s from byte %d answered HTTP %d with Content-Range %r; cannot resume from it'
                                    % (self.what, offset, response.status_code, response.headers.get('Content-Range')),
                                    status=response.status_code, url=self.url)
        if start == offset:
            self.resumed += 1
        else:
            self.restarted += 1  # the registry (or its storage backend) ignored the range
        return start

    def _check_length(self, response: requests.Response, start: int) -> None:
        announced = content_length(response)
        if announced is not None and self.size is not None and announced != self.size - start:
            raise IntegrityError(
                'The registry announced %d bytes for the %s, its descriptor says %d bytes; not reading it'
                % (announced + start, self.what, self.size),
                url=self.url, details={'expected_digest': self.digest, 'expected_size': self.size,
                                       'actual_digest': None, 'actual_size': announced + start,
                                       'reason': 'Content-Length disagrees with the descriptor; not read'})

    def _drop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._response is not None:
            self._response.close()
            self._response = None

    # -- reading, resumed ---------------------------------------------------
    def _next(self, target: Any, into: bool) -> Any:
        while True:
            if self._response is None and self._read is not _closed:
                self._request()
            try:
                self._skip_delivered()
                got: Any = self._readinto(target) if into else self._read(target)
                count = got if into else len(got)
                self._count(count)
                if not count:
                    self._ended()
                self.position += count
                return got
            except BLOB_READ_ERRORS:
                self._drop()
                if self.attempts > self.retries:
                    raise
                self.sleep(backoff(self.attempts))

    def _skip_delivered(self) -> None:
        """Read past the bytes already handed out (a body that started over from byte 0)."""
        while self._skip:
            data = self._read(min(self._skip, SKIP_CHUNK))
            if not data:
                raise ConnectionDropped('Connection broken: the body ended after %d bytes, before byte %d'
                                        % (self._received, self.position))
            self._count(len(data))
            self._skip -= len(data)

    def _count(self, count: int) -> None:
        self._received += count
        self.bytes_transferred += count

    def _ended(self) -> None:
        """The body ended: early (raise), or in full (the connection goes back to the pool)."""
        if self._announced is not None and self._received < self._announced:
            # http.client ends a Content-Length body quietly when the peer hangs up early.
            raise ConnectionDropped('Connection broken: %d of %d bytes received' % (self._received, self._announced))
        if self._fast is not None:
            release_after_fast_read(self._response)
