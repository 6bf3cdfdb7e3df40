# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Verified blob bytes: the one place where blob bytes are hashed and counted.

``BlobCheck``
    hash-and-size accounting for the bytes of one blob, in order; ``verify()``
    raises IntegrityError naming the expected and the actual digest and size.
``iter_verified(read, check)`` / ``iter_verified_into(readinto, check)``
    read fixed-size chunks, never more than the expected size (+1 byte to
    detect an overlong body), hash them and yield them; raise IntegrityError
    at the end when they do not verify.
``VerifiedBody``
    an upload body for ``requests`` (Content-Length, 1 MiB chunks), verified
    while it streams, e.g. straight from a source registry's blob reader.
``fetch_blob(client, repository, digest, size, sink)``
    a blob from the registry into a sink, through the client's resumable
    ``BlobReader``, hashed while it arrives.
``BlobFile`` / ``MemorySink`` / ``NullSink``
    sinks: a temporary file in the destination directory renamed into place
    only after verification, a size-limited buffer for small JSON blobs, or
    nothing. ``reserve(size)`` refuses, before anything is requested, a blob
    that cannot fit (the free space of the filesystem, the buffer's limit).
``verify_file(path, digest, size)``
    checks a file already on disk.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
import time
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Literal, Optional, Tuple, Union

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import new_hasher, validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    RegistryError,
    TransportError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.reader import BLOB_READ_ERRORS
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    TRANSFER_ERRORS,
    describe_exception,
)

if TYPE_CHECKING:
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.reader import BlobReader

# Measured on loopback with hashlib sha256: 1 MiB reads beat 64 KiB and 8 MiB ones.
CHUNK_SIZE = 1024 * 1024
# A blob file read or written holds at most about this much of the page cache (drop_behind).
CACHE_WINDOW = 32 * 1024 * 1024
_FADVISE = getattr(os, 'posix_fadvise', None)
# What a chunk of blob bytes comes as: read() returns bytes, readinto() fills a reused memoryview.
Chunk = Union[bytes, bytearray, memoryview]


def blob_path(root: str, digest: str) -> str:
    """``root/blobs/<algorithm>/<encoded>``, the OCI image layout's place for a blob."""
    algorithm, encoded = validate_digest(digest)
    return os.path.join(root, 'blobs', algorithm, encoded)


class BlobCheck:
    """Hash-and-size accounting for the bytes of one blob, fed in order.

    ``size`` None means the size is not known in advance (then nothing limits
    the read but the caller).
    """

    def __init__(self, digest: str, size: Optional[int] = None, what: Optional[str] = None) -> None:
        self.algorithm = validate_digest(digest)[0]
        self.digest = digest
        self.size = size if size is None else int(size)
        self.what = what or 'blob %s' % digest
        self.count = 0
        self.overlong = False
        self._hasher = new_hasher(self.algorithm)

    def update(self, chunk: Chunk) -> None:
        self._hasher.update(chunk)
        self.count += len(chunk)

    @property
    def remaining(self) -> Optional[int]:
        """Bytes still expected, or None when the size is unknown."""
        return None if self.size is None else self.size - self.count

    def next_read_size(self, chunk_size: int) -> int:
        """How much to ask for next: never past the expected end, but one byte
        more once it is reached, which is enough to tell an overlong body."""
        remaining = self.remaining
        if remaining is None:
            return chunk_size
        return min(chunk_size, remaining) if remaining > 0 else 1

    @property
    def actual_digest(self) -> str:
        return '%s:%s' % (self.algorithm, self._hasher.hexdigest())

    @property
    def ok(self) -> bool:
        return (not self.overlong and (self.size is None or self.count == self.size)
                and self.actual_digest == self.digest)

    def overrun(self, url: Optional[str] = None) -> IntegrityError:
        """Record a body that went past the expected size; the IntegrityError to raise.

        Only a read against a known size can overrun it: the reads stop one byte past it.
        """
        if self.size is None:
            raise ValueError('The %s has no expected size to overrun' % self.what)
        self.overlong = True
        return self._overlong_error(self.size, url)

    def _overlong_error(self, size: int, url: Optional[str]) -> IntegrityError:
        return IntegrityError(
            'The %s is longer than the %d bytes its descriptor gives: expected %s (%d bytes), '
            'received more than %d bytes; stopped reading'
            % (self.what, size, self.digest, size, size),
            url=url, details={'expected_digest': self.digest, 'expected_size': size,
                              'actual_digest': None, 'actual_size': None, 'overlong': True,
                              'reason': 'body longer than the descriptor size; reading stopped'})

    def error(self, url: Optional[str] = None) -> Optional[IntegrityError]:
        """The IntegrityError describing what is wrong, or None when everything verifies."""
        if self.overlong and self.size is not None:
            return self._overlong_error(self.size, url)
        actual = self.actual_digest
        if self.size is not None and self.count != self.size:
            return IntegrityError(
                'The %s has the wrong size: expected %s (%d bytes), received %d bytes hashing to %s'
                % (self.what, self.digest, self.size, self.count, actual),
                url=url, details={'expected_digest': self.digest, 'expected_size': self.size,
                                  'actual_digest': actual, 'actual_size': self.count, 'reason': 'wrong size'})
        if actual != self.digest:
            return IntegrityError(
                'The %s does not match its digest: expected %s (%s bytes), the %d bytes received hash to %s'
                % (self.what, self.digest, self.count if self.size is None else self.size, self.count, actual),
                url=url, details={'expected_digest': self.digest, 'expected_size': self.size,
                                  'actual_digest': actual, 'actual_size': self.count, 'reason': 'digest mismatch'})
        return None

    def verify(self, url: Optional[str] = None) -> str:
        """Raise IntegrityError unless the bytes fed verify; return the digest."""
        error = self.error(url)
        if error is not None:
            raise error
        return self.digest


def iter_verified(read: Callable[[int], bytes], check: BlobCheck, chunk_size: int = CHUNK_SIZE, url: Optional[str] = None,
                  verify: bool = True) -> Iterator[bytes]:
    """Yield chunks from ``read(n)`` while feeding ``check``; verify at the end.

    Never asks for more than the expected size plus one byte: one byte too many
    is enough to know the body is overlong, and then reading stops at once.
    With ``verify`` False the caller verifies (e.g. after a resumed transfer).
    """
    while True:
        remaining = check.remaining
        chunk = read(check.next_read_size(chunk_size))
        if not chunk:
            break
        if remaining is not None and len(chunk) > remaining:
            # Past the expected end: hash nothing more, and do not hand it on.
            raise check.overrun(url)
        check.update(chunk)
        yield chunk
    if verify:
        check.verify(url)


def iter_verified_into(readinto: Callable[[memoryview], int], check: BlobCheck, chunk_size: int = CHUNK_SIZE,
                       url: Optional[str] = None, verify: bool = True) -> Iterator[memoryview]:
    """Like :func:`iter_verified`, reading with ``readinto(buffer)`` into one reused buffer.

    Yields memoryviews of that buffer, each valid only until the next
    iteration: consume (hash, write) them at once. Reusing one buffer instead
    of allocating a fresh megabyte per read is about 15 % faster on a fast link.
    """
    view = memoryview(bytearray(chunk_size))
    while True:
        remaining = check.remaining
        count = readinto(view[:check.next_read_size(chunk_size)])
        if not count:
            break
        if remaining is not None and count > remaining:
            raise check.overrun(url)
        chunk = view[:count]
        check.update(chunk)
        yield chunk
    if verify:
        check.verify(url)


class VerifiedBody:
    """An upload body for ``requests``: iterable in verified chunks, with a length.

    ``requests`` sends an iterable with ``__len__`` with a ``Content-Length``
    and writes each chunk as it comes (a file-like object would be read in
    16 KiB blocks). The last iteration raises IntegrityError when the bytes do
    not verify, which aborts the upload before it is committed. For a copy,
    ``VerifiedBody(client.blob_reader(...).open()[0], digest, size)`` streams the
    source blob into the upload while verifying it.
    """

    def __init__(self, read: Callable[[int], bytes], digest: str, size: Optional[int], chunk_size: int = CHUNK_SIZE,
                 what: Optional[str] = None, url: Optional[str] = None) -> None:
        if size is None:
            raise ValueError('VerifiedBody needs the size')
        self.check = BlobCheck(digest, size, what=what)
        self._size = int(size)
        self._read = read
        self._chunk_size = chunk_size
        self._url = url
        self._started = False

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            # Sending it again would send only what is left of the source stream.
            raise TransportError('The body of the %s was already sent once; it must be started over'
                                 % self.check.what, url=self._url)
        self._started = True
        return iter_verified(self._source_read, self.check, self._chunk_size, url=self._url)

    def _source_read(self, amount: int) -> bytes:
        """The source's ``read``, its failures told as the source's, in words.

        Raised inside ``requests`` while it sends the body, a RegistryError
        passes through untouched; a raw urllib3 error would be wrapped into a
        ConnectionError of the upload, its reason a Python tuple.
        """
        try:
            return self._read(amount)
        except TRANSFER_ERRORS as exc:
            raise TransportError('Reading the %s failed after %d of %d bytes: %s'
                                 % (self.check.what, self.check.count, self._size, describe_exception(exc)),
                                 url=self._url, details={'expected_digest': self.check.digest,
                                                         'expected_size': self.check.size,
                                                         'actual_size': self.check.count})


# -- sinks ------------------------------------------------------------------
class NullSink:
    """Verify only: the bytes go nowhere."""

    def write(self, chunk: Chunk) -> None:
        pass


class MemorySink:
    """Keep the bytes of a small blob (a config), refusing more than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = bytearray()

    def reserve(self, size: Optional[int]) -> None:
        """Refuse a blob larger than the limit before anything is requested."""
        if size is not None and size > self.limit:
            raise IntegrityError('The blob is %d bytes, more than the %d bytes it may take in memory; not fetching it'
                                 % (size, self.limit),
                                 details={'expected_size': size, 'reason': 'larger than the memory limit'})

    def write(self, chunk: Chunk) -> None:
        if len(self.buffer) + len(chunk) > self.limit:
            raise IntegrityError('The blob is larger than %d bytes; refusing to keep it in memory' % self.limit)
        self.buffer += chunk

    def getvalue(self) -> bytes:
        return bytes(self.buffer)


class BlobFile:
    """Write a blob to ``root/blobs/<alg>/<hex>`` through a temporary file in the same directory.

    ``commit()`` renames the temporary file into place (atomic on POSIX);
    ``abort()`` removes it. Use it as a context manager: leaving the block
    without ``commit()`` aborts, so nothing partial is ever left behind.
    """

    def __init__(self, root: str, digest: str, mode: Optional[int] = None) -> None:
        self.digest = digest
        self.path = blob_path(root, digest)
        self.directory = os.path.dirname(self.path)
        self.mode = mode
        self._file: Optional[IO[bytes]] = None
        self.temp_path: Optional[str] = None
        self._window = CacheWindow()

    def open(self) -> BlobFile:
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, self.temp_path = tempfile.mkstemp(prefix='.tmp-', suffix='.partial', dir=self.directory)
        except OSError as exc:
            raise RegistryError('Cannot create a file in %s: %s' % (self.directory, exc.strerror or exc))
        self._file = os.fdopen(fd, 'wb')
        return self

    def reserve(self, size: Optional[int]) -> None:
        """Refuse, before anything is requested or written, a blob larger than the free space.

        ``statvfs`` of the destination directory: the space left to unprivileged
        users. Where it cannot be told (no statvfs), nothing is refused here;
        a full disk still fails the write.
        """
        if size is None:
            return
        free = free_space(self.directory)
        if free is not None and size > free:
            raise RegistryError('Not enough free space for blob %s: it is %d bytes, the filesystem of %s has %d bytes '
                                'free; nothing was downloaded' % (self.digest, size, self.directory, free),
                                details={'expected_size': size, 'free_space': free, 'path': self.path})

    def __enter__(self) -> BlobFile:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        self.abort()
        return False

    def _opened(self) -> Tuple[IO[bytes], str]:
        """The temporary file and its path; writing to a BlobFile never opened (or already done with) is a bug."""
        if self._file is None or self.temp_path is None:
            raise ValueError('BlobFile %s is not open' % self.path)
        return self._file, self.temp_path

    def write(self, chunk: Chunk) -> None:
        handle, dummy = self._opened()
        try:
            handle.write(chunk)
            if self._window.passed(len(chunk)):
                handle.flush()
                drop_behind(handle.fileno(), handle.tell())
        except OSError as exc:
            raise RegistryError('Cannot write %s: %s' % (self.temp_path, exc.strerror or exc))

    def commit(self) -> str:
        """Flush, fsync and rename the verified file into place."""
        handle, temp_path = self._opened()
        try:
            handle.flush()
            os.fsync(handle.fileno())
            if self._window.large:
                drop_behind(handle.fileno(), handle.tell())
            handle.close()
            self._file = None
            os.chmod(temp_path, self.mode if self.mode is not None else default_file_mode())
            os.replace(temp_path, self.path)
        except OSError as exc:
            raise RegistryError('Cannot move the verified blob into place at %s: %s'
                                % (self.path, exc.strerror or exc))
        self.temp_path = None
        return self.path

    def abort(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if self.temp_path is not None:
            try:
                os.unlink(self.temp_path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            self.temp_path = None


def free_space(directory: str) -> Optional[int]:
    """Bytes free to unprivileged users on the filesystem of ``directory`` (or of its nearest parent), or None."""
    statvfs = getattr(os, 'statvfs', None)
    if statvfs is None:
        return None
    path = os.path.abspath(directory)
    for dummy in range(64):
        if os.path.isdir(path):
            break
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        stat = statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


@functools.lru_cache(maxsize=None)
def default_file_mode() -> int:
    """0666 minus the process umask, what ``open()`` would have created (read once: setting it is global)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes(root: str, digest: str, data: bytes) -> str:
    """Write small verified bytes (a manifest) into place atomically; return the path."""
    check = BlobCheck(digest, len(data))
    check.update(data)
    check.verify()
    with BlobFile(root, digest) as blob_file:
        blob_file.write(data)
        return blob_file.commit()


def drop_behind(fd: int, end: int) -> None:
    """Give the page cache the first ``end`` bytes of a blob file back; start writing the dirty ones to disk.

    ``POSIX_FADV_DONTNEED`` frees the clean pages and starts, without waiting,
    the writeback of the dirty ones, freed by the next call. Called every
    :data:`CACHE_WINDOW` bytes, a blob of any size holds a window or two of
    page cache, its writeback runs beside the transfer instead of in the
    final fsync, and the pages it uses are the ones it just gave back. On a
    virtual machine whose host takes idle guest memory back, touching fresh
    pages cost a 256 MiB export a third of its time (docs/performance.md).
    Where fadvise is missing (not Linux), nothing.
    """
    if _FADVISE is not None and end > 0:
        _FADVISE(fd, 0, end, os.POSIX_FADV_DONTNEED)


class CacheWindow:
    """When a blob file read or written gives its pages back (drop_behind): each time another
    :data:`CACHE_WINDOW` bytes went through, and at its end when it is ``large`` (passed one at least)."""

    def __init__(self) -> None:
        self.behind = 0      # bytes since the last drop
        self.large = False

    def passed(self, count: int) -> bool:
        """Count ``count`` more bytes; whether a window is full (and the pages go back now)."""
        self.behind += count
        if self.behind < CACHE_WINDOW:
            return False
        self.behind, self.large = 0, True
        return True


def _read_dropping_behind(handle: IO[bytes]) -> Callable[[int], bytes]:
    """``handle.read`` that gives the pages it read back every :data:`CACHE_WINDOW` bytes, and at the end of a
    file larger than that (see drop_behind); a small file keeps its pages."""
    window = CacheWindow()

    def read(amount: int) -> bytes:
        data = handle.read(amount)
        if window.passed(len(data)) or (not data and window.large):
            drop_behind(handle.fileno(), handle.tell())
        return data
    return read


def verify_file(path: str, digest: str, size: Optional[int] = None, chunk_size: int = CHUNK_SIZE) -> Tuple[str, BlobCheck]:
    """``(state, check)`` for a file on disk: state is ``absent``, ``ok`` or ``mismatch``.

    A file larger than ``size`` is not read past ``size`` + 1 bytes.
    """
    check = BlobCheck(digest, size, what='file %s' % path)
    try:
        with open(path, 'rb') as handle:
            state = _read_through(_read_dropping_behind(handle), check, chunk_size)
    except OSError as exc:
        if exc.errno == errno.ENOENT:  # only the open can say so
            return 'absent', check
        raise RegistryError('Cannot read %s: %s' % (path, exc.strerror or exc))
    return state, check


def _read_through(read: Callable[[int], bytes], check: BlobCheck, chunk_size: int) -> str:
    """``ok`` or ``mismatch``: all of ``read`` through ``check``, stopped at an overlong body."""
    try:
        for dummy in iter_verified(read, check, chunk_size, verify=False):
            pass
    except IntegrityError:
        return 'mismatch'
    return 'ok' if check.ok else 'mismatch'


# -- the network side ---------------------------------------------------------
class FetchResult:
    """What one blob transfer did: the check, the attempts, the bytes that went over the wire."""

    def __init__(self, check: Optional[BlobCheck] = None) -> None:
        self.check = check
        self.attempts = 0
        self.resumed = 0
        self.restarted = 0
        self.bytes_transferred = 0

    def count(self, reader: BlobReader) -> None:
        """Take the counts of ``reader`` (a BlobReader)."""
        self.attempts = reader.attempts
        self.resumed = reader.resumed
        self.restarted = reader.restarted
        self.bytes_transferred = reader.bytes_transferred


def fetch_blob(client: RegistryClient, repository: str, digest: str, size: Optional[int] = None, sink: Any = None,
               retries: int = 3, chunk_size: int = CHUNK_SIZE, sleep: Callable[[float], Any] = time.sleep,
               what: Optional[str] = None, result: Optional[FetchResult] = None) -> FetchResult:
    """Stream a blob from the registry into ``sink``, hashing and counting it; return a FetchResult.

    - a sink that cannot take ``size`` bytes (``sink.reserve``) fails before
      anything is requested;
    - ``Content-Length`` that disagrees with ``size`` fails before any byte is read;
    - never more than ``size`` (+1) bytes are read, with or without a ``Content-Length``;
    - the client's BlobReader resumes a dropped connection (or a missed
      deadline) with ``Range``, at most ``retries`` times;
    - raises IntegrityError when the bytes do not verify, NotFoundError for a
      blob the registry does not have, TransportError when the retries are spent.

    Pass a FetchResult as ``result`` to learn what happened when it raises.
    """
    sink = sink if sink is not None else NullSink()
    check = BlobCheck(digest, size, what=what or 'blob %s in %s' % (digest, repository))
    result = result if result is not None else FetchResult()
    result.check = check
    reserve = getattr(sink, 'reserve', None)
    if reserve is not None:
        reserve(check.size)
    reader = client.blob_reader(repository, digest, check.size, what=check.what, retries=retries, sleep=sleep,
                                deadline_what='the transfer')
    try:
        reader.open()
        _stream(reader, check, sink, chunk_size)
    finally:
        reader.close()
        result.count(reader)
    check.verify(reader.url)
    return result


def _stream(reader: BlobReader, check: BlobCheck, sink: Any, chunk_size: int) -> None:
    """Read the blob from ``reader`` into ``sink`` through ``check``; a failure the reader gave up on, in words."""
    try:
        for chunk in iter_verified_into(reader.readinto, check, chunk_size, url=reader.url, verify=False):
            sink.write(chunk)
    except BLOB_READ_ERRORS as exc:
        raise TransportError(
            'Reading the %s failed after %d attempt%s, %d of %s bytes received: %s'
            % (check.what, reader.attempts, '' if reader.attempts == 1 else 's', check.count,
               'unknown' if check.size is None else check.size, describe_exception(exc)),
            url=reader.url, attempts=reader.attempts,
            details={'expected_digest': check.digest, 'expected_size': check.size, 'actual_size': check.count})
