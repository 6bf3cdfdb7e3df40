# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Streaming, verifying blob transfer: the one place where blob bytes are hashed and counted.

Building blocks, reused by every module that moves blobs:

``BlobCheck``
    hash-and-size accounting for the bytes of one blob, in order; ``verify()``
    raises IntegrityError naming the expected and the actual digest and size.
``iter_verified(read, check)``
    reads fixed-size chunks from a ``read(n)`` callable, never more than the
    expected size (+1 byte to detect an overlong body), hashes them and yields
    them; raises IntegrityError at the end when they do not verify.
``VerifiedBody``
    an iterable with a length, for streaming an upload body through
    ``requests`` (Content-Length, 1 MiB chunks) while it is verified, e.g.
    straight from a source registry's GET response.
``fetch_blob(client, repository, digest, size, sink)``
    a streaming GET that checks ``Content-Length`` before reading, hashes while
    reading, resumes a dropped connection with ``Range`` (or restarts), and
    feeds a sink; each request has a total deadline (see ``_transport``).
``BlobFile`` / ``MemorySink``
    sinks: a temporary file in the destination directory renamed into place
    only after verification, or a size-limited buffer for small JSON blobs.
    Both refuse, before anything is requested, a blob that cannot fit
    (``reserve(size)``: the free space of the filesystem, the buffer's limit).
``verify_file(path, digest, size)``
    checks a file already on disk.
"""

from __future__ import annotations

import errno
import functools
import http.client
import os
import tempfile
import time

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import new_hasher, validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    RegistryError,
    RegistryHTTPError,
    TransportError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._transport import (
    Deadline,
    DeadlineExceeded,
    describe_exception,
    guard,
)

try:
    import requests.adapters
    import requests.exceptions
    import urllib3.exceptions
    _TRANSFER_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                        http.client.HTTPException, OSError)
    _ADAPTER = requests.adapters.HTTPAdapter
except ImportError:  # the module reports missing_required_lib('requests')
    _TRANSFER_ERRORS = (http.client.HTTPException, OSError)
    _ADAPTER = None

# Measured on loopback with hashlib sha256: 1 MiB reads beat 64 KiB and 8 MiB ones.
CHUNK_SIZE = 1024 * 1024
BACKOFF_BASE = 0.5
MAX_BACKOFF = 30.0


def _backoff(attempt):
    return min(MAX_BACKOFF, BACKOFF_BASE * (2 ** (attempt - 1)))


def blob_path(root, digest):
    """``root/blobs/<algorithm>/<encoded>``, the OCI image layout's place for a blob."""
    algorithm, encoded = validate_digest(digest)
    return os.path.join(root, 'blobs', algorithm, encoded)


class BlobCheck:
    """Hash-and-size accounting for the bytes of one blob, fed in order.

    ``size`` None means the size is not known in advance (then nothing limits
    the read but the caller).
    """

    def __init__(self, digest, size=None, what=None):
        self.algorithm = validate_digest(digest)[0]
        self.digest = digest
        self.size = size if size is None else int(size)
        self.what = what or 'blob %s' % digest
        self.count = 0
        self.overlong = False
        self._hasher = new_hasher(self.algorithm)

    def reset(self):
        """Forget everything fed so far (a transfer restarting from byte 0)."""
        self.count = 0
        self.overlong = False
        self._hasher = new_hasher(self.algorithm)

    def update(self, chunk):
        self._hasher.update(chunk)
        self.count += len(chunk)

    @property
    def remaining(self):
        """Bytes still expected, or None when the size is unknown."""
        return None if self.size is None else self.size - self.count

    def next_read_size(self, chunk_size):
        """How much to ask for next: never past the expected end, but one byte
        more once it is reached, which is enough to tell an overlong body."""
        remaining = self.remaining
        if remaining is None:
            return chunk_size
        return min(chunk_size, remaining) if remaining > 0 else 1

    @property
    def actual_digest(self):
        return '%s:%s' % (self.algorithm, self._hasher.hexdigest())

    @property
    def ok(self):
        return (not self.overlong and (self.size is None or self.count == self.size)
                and self.actual_digest == self.digest)

    def error(self, url=None):
        """The IntegrityError describing what is wrong, or None when everything verifies."""
        if self.overlong:
            return IntegrityError(
                'The %s is longer than the %d bytes its descriptor gives: expected %s (%d bytes), '
                'received more than %d bytes; stopped reading'
                % (self.what, self.size, self.digest, self.size, self.size),
                url=url, details={'expected_digest': self.digest, 'expected_size': self.size,
                                  'actual_digest': None, 'actual_size': None, 'overlong': True,
                                  'reason': 'body longer than the descriptor size; reading stopped'})
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

    def verify(self, url=None):
        """Raise IntegrityError unless the bytes fed verify; return the digest."""
        error = self.error(url)
        if error is not None:
            raise error
        return self.digest


def iter_verified(read, check, chunk_size=CHUNK_SIZE, url=None, verify=True):
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
            check.overlong = True
            raise check.error(url)
        check.update(chunk)
        yield chunk
    if verify:
        check.verify(url)


def iter_verified_into(readinto, check, chunk_size=CHUNK_SIZE, url=None, verify=True):
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
            check.overlong = True
            raise check.error(url)
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
    ``VerifiedBody(_transport.deadline_reader(...)[0], digest, size)`` streams the
    source blob into the upload while verifying it.
    """

    def __init__(self, read, digest, size, chunk_size=CHUNK_SIZE, what=None, url=None):
        if size is None:
            raise ValueError('VerifiedBody needs the size')
        self.check = BlobCheck(digest, size, what=what)
        self._read = read
        self._chunk_size = chunk_size
        self._url = url
        self._started = False

    def __len__(self):
        return self.check.size

    def __iter__(self):
        if self._started:
            # Sending it again would send only what is left of the source stream.
            raise TransportError('The body of the %s was already sent once; it must be started over'
                                 % self.check.what, url=self._url)
        self._started = True
        return iter_verified(self._source_read, self.check, self._chunk_size, url=self._url)

    def _source_read(self, amount):
        """The source's ``read``, its failures told as the source's, in words.

        Raised inside ``requests`` while it sends the body, a RegistryError
        passes through untouched; a raw urllib3 error would be wrapped into a
        ConnectionError of the upload, its reason a Python tuple.
        """
        try:
            return self._read(amount)
        except _TRANSFER_ERRORS as exc:
            raise TransportError('Reading the %s failed after %d of %d bytes: %s'
                                 % (self.check.what, self.check.count, self.check.size, describe_exception(exc)),
                                 url=self._url, details={'expected_digest': self.check.digest,
                                                         'expected_size': self.check.size,
                                                         'actual_size': self.check.count})


# -- sinks ------------------------------------------------------------------
class NullSink:
    """Verify only: the bytes go nowhere."""

    def write(self, chunk):
        pass

    def restart(self):
        pass


class MemorySink:
    """Keep the bytes of a small blob (a config), refusing more than ``limit``."""

    def __init__(self, limit):
        self.limit = limit
        self.buffer = bytearray()

    def reserve(self, size):
        """Refuse a blob larger than the limit before anything is requested."""
        if size is not None and size > self.limit:
            raise IntegrityError('The blob is %d bytes, more than the %d bytes it may take in memory; not fetching it'
                                 % (size, self.limit),
                                 details={'expected_size': size, 'reason': 'larger than the memory limit'})

    def write(self, chunk):
        if len(self.buffer) + len(chunk) > self.limit:
            raise IntegrityError('The blob is larger than %d bytes; refusing to keep it in memory' % self.limit)
        self.buffer += chunk

    def restart(self):
        del self.buffer[:]

    def getvalue(self):
        return bytes(self.buffer)


class BlobFile:
    """Write a blob to ``root/blobs/<alg>/<hex>`` through a temporary file in the same directory.

    ``commit()`` renames the temporary file into place (atomic on POSIX);
    ``abort()`` removes it. Use it as a context manager: leaving the block
    without ``commit()`` aborts, so nothing partial is ever left behind.
    """

    def __init__(self, root, digest, mode=None):
        self.digest = digest
        self.path = blob_path(root, digest)
        self.directory = os.path.dirname(self.path)
        self.mode = mode
        self._fd = None
        self._file = None
        self.temp_path = None

    def open(self):
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, self.temp_path = tempfile.mkstemp(prefix='.tmp-', suffix='.partial', dir=self.directory)
        except OSError as exc:
            raise RegistryError('Cannot create a file in %s: %s' % (self.directory, exc.strerror or exc))
        self._file = os.fdopen(fd, 'wb')
        return self

    def reserve(self, size):
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

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        self.abort()
        return False

    def write(self, chunk):
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise RegistryError('Cannot write %s: %s' % (self.temp_path, exc.strerror or exc))

    def restart(self):
        self._file.seek(0)
        self._file.truncate()

    def commit(self):
        """Flush, fsync and rename the verified file into place."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.chmod(self.temp_path, self.mode if self.mode is not None else default_file_mode())
            os.replace(self.temp_path, self.path)
        except OSError as exc:
            raise RegistryError('Cannot move the verified blob into place at %s: %s'
                                % (self.path, exc.strerror or exc))
        self.temp_path = None
        return self.path

    def abort(self):
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


def free_space(directory):
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
def default_file_mode():
    """0666 minus the process umask, what ``open()`` would have created (read once: setting it is global)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes(root, digest, data):
    """Write small verified bytes (a manifest) into place atomically; return the path."""
    check = BlobCheck(digest, len(data))
    check.update(data)
    check.verify()
    with BlobFile(root, digest) as blob_file:
        blob_file.write(data)
        return blob_file.commit()


def verify_file(path, digest, size=None, chunk_size=CHUNK_SIZE):
    """``(state, check)`` for a file on disk: state is ``absent``, ``ok`` or ``mismatch``.

    A file larger than ``size`` is not read past ``size`` + 1 bytes.
    """
    check = BlobCheck(digest, size, what='file %s' % path)
    try:
        handle = open(path, 'rb')
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return 'absent', check
        raise RegistryError('Cannot read %s: %s' % (path, exc.strerror or exc))
    with handle:
        try:
            for dummy in iter_verified(handle.read, check, chunk_size, verify=False):
                pass
        except IntegrityError:
            return 'mismatch', check
        except OSError as exc:
            raise RegistryError('Cannot read %s: %s' % (path, exc.strerror or exc))
    return ('ok' if check.ok else 'mismatch'), check


# -- the network side ---------------------------------------------------------
def ensure_pool_size(http, size):
    """Let ``http`` (an HTTPSession) keep at least ``size`` connections per host.

    requests keeps 10 connections per host by default; more workers than that
    would open and throw away connections all the time.
    """
    session = getattr(http, 'session', None)
    if _ADAPTER is None or session is None or not hasattr(session, 'adapters'):
        return
    for prefix in ('https://', 'http://'):
        adapter = session.adapters.get(prefix)
        current = getattr(adapter, '_pool_maxsize', 10) if adapter is not None else 0
        if current < size:
            session.mount(prefix, _ADAPTER(pool_connections=10, pool_maxsize=size))


def _content_length(response):
    value = response.headers.get('Content-Length')
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def _content_range_start(response):
    """First byte position of a ``Content-Range: bytes a-b/c`` answer, or None."""
    value = (response.headers.get('Content-Range') or '').strip()
    if not value.startswith('bytes ') or '-' not in value:
        return None
    start = value[6:].split('-', 1)[0].strip()
    return int(start) if start.isdigit() else None


class _ConnectionDropped(Exception):
    """The body ended before its Content-Length: the connection was cut."""


# What ends one attempt of a blob transfer, to be resumed or started over.
_RETRYABLE = (_ConnectionDropped, DeadlineExceeded) + _TRANSFER_ERRORS


def _body_readinto(response):
    """``readinto(buffer)`` straight on the http.client response under requests/urllib3, or None.

    Used only for a plain (not decoded) body that nothing has read yet; then
    urllib3 adds nothing to the bytes but a copy per read.
    """
    raw = getattr(response, 'raw', None)
    fp = getattr(raw, '_fp', None)
    if fp is None or not hasattr(fp, 'readinto') or getattr(raw, '_fp_bytes_read', 0):
        return None
    if getattr(raw, '_decoder', None) is not None:
        return None
    return fp.readinto


class FetchResult:
    """What one blob transfer did: the check, the attempts, the bytes that went over the wire."""

    def __init__(self, check=None):
        self.check = check
        self.attempts = 0
        self.resumed = 0
        self.restarted = 0
        self.bytes_transferred = 0


def fetch_blob(client, repository, digest, size=None, sink=None, retries=3, chunk_size=CHUNK_SIZE,
               sleep=time.sleep, what=None, result=None):
    """Stream a blob from the registry into ``sink``, hashing and counting it; return a FetchResult.

    - a sink that cannot take ``size`` bytes (``sink.reserve``) fails before
      anything is requested;
    - ``Content-Length`` that disagrees with ``size`` fails before any byte is read;
    - never more than ``size`` (+1) bytes are read, with or without a ``Content-Length``;
    - each request must finish within ``timeout + bytes / MIN_RATE`` seconds
      (see ``_transport``), also while a read is blocked on a dripping server;
    - a connection that drops mid-body (or misses its deadline) is resumed with
      ``Range: bytes=N-`` (the hash state is kept), or restarted from zero when
      the registry ignores the range; at most ``retries`` times;
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
    timeout = _timeout_of(client)
    url = client.api.url('/v2/%s/blobs/%s' % (repository, digest))
    while True:
        result.attempts += 1
        offset = check.count
        headers = {'Range': 'bytes=%d-' % offset} if offset else None
        deadline = Deadline(timeout, None if check.size is None else check.size - offset, 'the transfer')
        response = client.open_blob(repository, digest, headers=headers)
        try:
            deadline.watch(response)
            url = getattr(response, 'url', None) or url
            offset = _start_of(response, check, sink, offset, result, url)
            _stream(response, check, sink, offset, result, deadline, chunk_size, url)
        except IntegrityError:
            raise
        except _RETRYABLE as exc:
            if result.attempts > retries:
                raise TransportError(
                    'Reading the %s failed after %d attempt%s, %d of %s bytes received: %s'
                    % (check.what, result.attempts, '' if result.attempts == 1 else 's', check.count,
                       'unknown' if check.size is None else check.size, describe_exception(exc)),
                    url=url, attempts=result.attempts,
                    details={'expected_digest': digest, 'expected_size': check.size, 'actual_size': check.count})
            sleep(_backoff(result.attempts))
            continue
        finally:
            deadline.cancel()
            response.close()
        check.verify(url)
        return result


def _timeout_of(client):
    """The ``timeout`` option of the client's connection (seconds)."""
    options = getattr(getattr(client, 'api', None), 'options', None)
    return float(getattr(options, 'timeout', None) or 60.0)


def _start_of(response, check, sink, offset, result, url):
    """Where the body of ``response`` starts in the blob: ``offset`` when the range was honoured, else 0."""
    if offset:
        if response.status_code == 206 and _content_range_start(response) == offset:
            result.resumed += 1
            return offset
        # The registry (or its storage backend) ignored the range: start over.
        check.reset()
        sink.restart()
        result.restarted += 1
        return 0
    if response.status_code != 200:
        raise RegistryHTTPError('GET %s answered HTTP %d to a request without Range'
                                % (check.what, response.status_code), status=response.status_code, url=url)
    return 0


def _stream(response, check, sink, offset, result, deadline, chunk_size, url):
    """Read the body of ``response`` into ``sink`` through ``check``, within ``deadline``."""
    announced = _content_length(response)
    if announced is not None and check.size is not None and announced != check.size - offset:
        raise IntegrityError(
            'The registry announced %d bytes for the %s, its descriptor says %d bytes; not reading it'
            % (announced + offset, check.what, check.size),
            url=url, details={'expected_digest': check.digest, 'expected_size': check.size,
                              'actual_digest': None, 'actual_size': announced + offset,
                              'reason': 'Content-Length disagrees with the descriptor; not read'})
    grow = check.size is None
    if not grow:
        deadline.allow(check.size - offset)  # a restart from zero may read the whole blob
    readinto = _body_readinto(response)
    if readinto is not None:
        def counted_readinto(view):
            count = readinto(view)
            result.bytes_transferred += count
            return count

        for chunk in iter_verified_into(guard(counted_readinto, deadline, grow), check, chunk_size, url=url,
                                        verify=False):
            sink.write(chunk)
        if announced is not None and check.remaining:
            # http.client ends a Content-Length body quietly when the peer hangs up early.
            raise _ConnectionDropped('Connection broken: %d of %d bytes received'
                                     % (check.count - offset, announced))
        # Fully read: hand the connection back to the pool for the next blob.
        deadline.cancel()
        release = getattr(response.raw, 'release_conn', None)
        if release is not None and response.raw._fp.isclosed():
            release()
        return
    raw_read = response.raw.read

    def read(amount):
        data = raw_read(amount, decode_content=False)
        result.bytes_transferred += len(data)
        return data

    for chunk in iter_verified(guard(read, deadline, grow), check, chunk_size, url=url, verify=False):
        sink.write(chunk)
