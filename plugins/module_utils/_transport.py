# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What every transfer shares: one way to describe a failure, and a total deadline per request.

``describe_exception(exc)``
    one readable line for a transport failure: the innermost readable reason
    (an OSError's strerror, urllib3's ``(text, inner)`` pairs as
    ``text: inner reason``), never a Python tuple or repr, query strings of
    URLs cut (they may carry pre-signed credentials).

Deadlines
---------
The ``timeout`` option bounds each wait: connecting, and every read of the
socket. A server that sends one byte every half second never trips it, and a
``read(1 MiB)`` from it blocks for days. So every body read also has a total
deadline, from the moment the request is sent::

    deadline = timeout + expected_bytes / MIN_RATE        MIN_RATE = 64 KiB/s

``expected_bytes`` is the size of what is read: the descriptor's size for a
blob (what is left of it when a transfer resumes), otherwise the most that is
read of the answer (the read limit: 4 MiB for a manifest, i.e. timeout + 64 s;
64 KiB for an error body, timeout + 1 s). When a read asks for more than
that (a blob of unknown size), the allowance grows with what was received
plus what is asked for, so the body must keep coming at MIN_RATE on average.

MIN_RATE, 64 KiB/s (half a megabit per second), is far below any link an
image is pulled over in practice (a 100 MiB layer at that rate takes 26
minutes) and far above a trickle meant to hold a task: an honest transfer
finishes long before its deadline, a dripping one fails at
``timeout + size / 64 KiB`` seconds. A 1 GiB layer may take 4.5 hours.

A deadline is enforced while a read is blocked inside http.client: one shared
watchdog thread shuts the response's socket down (``SHUT_RDWR``) when the
deadline passes, which makes the blocked read return at once; the reader then
raises :class:`DeadlineExceeded`. Finding that socket takes private
attributes of urllib3 and http.client, read only here (:func:`_find_socket`).
Without them, the watchdog closes the response instead (from a helper
thread: the close may wait for the blocked read) and the clock is checked
between reads.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import re
import socket
import threading
import time

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import RegistryError, TransportError

try:
    import urllib3.exceptions
    _INCOMPLETE_READS = (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)
except ImportError:  # the module reports missing_required_lib('requests')
    _INCOMPLETE_READS = (http.client.IncompleteRead,)

MIN_RATE = 64 * 1024  # bytes per second
# The watchdog thread exits after this long without deadlines (and starts again when needed).
WATCHDOG_IDLE = 30.0
_QUERY = re.compile(r'\?[^\s\'"()<>]*')
_MAX_DEPTH = 8


# -- describing failures --------------------------------------------------------------
def describe_exception(exc):
    """A one-line reason for a transport failure: no tuple, no repr, no query string."""
    text = _QUERY.sub('', _describe(exc, 0)).strip()
    return text or exc.__class__.__name__


def _describe(exc, depth):
    if isinstance(exc, RegistryError):
        return exc.msg
    if isinstance(exc, _INCOMPLETE_READS):
        return _incomplete_read(exc)
    if isinstance(exc, OSError) and isinstance(exc.strerror, str) and exc.strerror:
        return exc.strerror
    if depth >= _MAX_DEPTH:
        return _plain(exc)
    reason = getattr(exc, 'reason', None)
    if isinstance(reason, BaseException) and reason is not exc:
        # urllib3's MaxRetryError: its text repeats the URL, its reason says what went wrong.
        return _describe(reason, depth + 1)
    args = getattr(exc, 'args', None) or ()
    if args and isinstance(args[0], BaseException) and args[0] is not exc:
        # requests wraps the urllib3 error, which wraps the socket error.
        return _describe(args[0], depth + 1)
    if args and isinstance(args[0], str):
        return _text_and_reason(args, depth)
    return _plain(exc)


def _text_and_reason(args, depth):
    """``('Connection broken: IncompleteRead(...)', IncompleteRead(...))`` as ``Connection broken: <reason>``."""
    text = args[0]
    for inner in args[1:]:
        if isinstance(inner, BaseException):
            inner_text = _describe(inner, depth + 1)
        elif isinstance(inner, str):
            inner_text = inner
        else:
            continue
        for shown in (repr(inner), str(inner)):
            if shown and shown in text:
                text = text.replace(shown, '')
                break
        text = text.strip().rstrip(':.,;').strip()
        text = '%s: %s' % (text, inner_text) if text and inner_text else (text or inner_text)
    return text


def _incomplete_read(exc):
    partial = exc.partial
    received = len(partial) if isinstance(partial, (bytes, bytearray)) else partial
    if isinstance(received, int) and isinstance(exc.expected, int):
        return 'the body ended after %d bytes, %d more were expected' % (received, exc.expected)
    return 'the body ended early'


def _plain(exc):
    args = getattr(exc, 'args', None) or ()
    if len(args) > 1:
        return ': '.join(str(arg) for arg in args if not isinstance(arg, (bytes, bytearray)))
    return str(exc) or exc.__class__.__name__


# -- deadlines ---------------------------------------------------------------------------
def deadline_seconds(timeout, expected_bytes):
    """``timeout + expected_bytes / MIN_RATE``: how long a request for that many bytes may take in all."""
    return float(timeout) + float(expected_bytes or 0) / MIN_RATE


def _number(value):
    if value >= 10:
        return '%d' % round(value)
    return ('%.1f' % value).rstrip('0').rstrip('.')


class DeadlineExceeded(TransportError):
    """A request that did not finish within ``timeout + expected_bytes / MIN_RATE``."""


class Deadline:
    """The total deadline of one request, started when it is created.

    ``watch(response)`` arms the watchdog on the response's socket,
    ``cancel()`` disarms it (always, before the connection is reused), and
    ``check()`` raises DeadlineExceeded once it has passed.
    """

    def __init__(self, timeout, expected_bytes, what='the transfer', clock=time.monotonic):
        self.timeout = float(timeout)
        self.expected_bytes = int(expected_bytes or 0)
        self.what = what
        self.clock = clock
        self.start = clock()
        self.fired = False
        self._active = False
        self._done = False
        self._lock = threading.Lock()
        self._socket = None
        self._response = None

    @property
    def seconds(self):
        return deadline_seconds(self.timeout, self.expected_bytes)

    @property
    def end(self):
        return self.start + self.seconds

    @property
    def expired(self):
        """Passed (and the request not over before it did)."""
        return self.fired or (not self._done and self.clock() >= self.end)

    def allow(self, total_bytes):
        """Let the request read ``total_bytes`` in all (never less than before): a later end."""
        if total_bytes > self.expected_bytes:
            self.expected_bytes = int(total_bytes)

    def watch(self, response):
        """Arm the watchdog on ``response``; False when its socket was not found (it is closed instead)."""
        sock = _find_socket(response)
        with self._lock:
            self._socket = sock
            self._response = response if sock is None else None
            self._active = True
        _WATCHDOG.add(self)
        return sock is not None

    def cancel(self):
        """The request is over: the watchdog must not touch its connection any more."""
        with self._lock:
            self._active = False
            self._done = True
            self._socket = None
            self._response = None

    def check(self):
        if self.expired:
            raise self.error()

    def error(self):
        return DeadlineExceeded(
            '%s did not finish within its deadline of %s s (timeout %s s + %d bytes at %d KiB/s, the slowest '
            'rate accepted)'
            % (self.what, _number(self.seconds), _number(self.timeout), self.expected_bytes, MIN_RATE // 1024),
            details={'deadline': round(self.seconds, 3), 'timeout': self.timeout,
                     'expected_bytes': self.expected_bytes, 'min_rate': MIN_RATE})

    def _fire(self):
        """Called by the watchdog when the deadline has passed: make the blocked read return."""
        with self._lock:
            if not self._active:
                return
            self.fired = True
            self._active = False
            sock, response = self._socket, self._response
            self._socket = self._response = None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the read has returned
        elif response is not None:
            closer = threading.Thread(target=_close_quietly, args=(response,), name='deadline-close')
            closer.daemon = True
            closer.start()


def _close_quietly(response):
    try:
        response.close()
    except Exception:  # the request has failed already; its close must not add another error
        pass


def _find_socket(response):
    """The socket under a requests (or urllib3) response, or None.

    Private attributes, looked up with care: the http.client response's file
    (``raw._fp.fp.raw._sock``, there as long as the body is open, also after
    http.client let go of a ``Connection: close`` connection), else urllib3's
    connection (``raw._connection.sock``).
    """
    raw = getattr(response, 'raw', response)
    fp = getattr(getattr(raw, '_fp', None), 'fp', None)
    candidates = (getattr(getattr(fp, 'raw', None), '_sock', None),
                  getattr(getattr(raw, '_connection', None), 'sock', None))
    for sock in candidates:
        if sock is not None and callable(getattr(sock, 'shutdown', None)):
            try:
                if sock.fileno() < 0:
                    continue
            except (OSError, AttributeError):
                continue
            return sock
    return None


class _Watchdog:
    """One daemon thread for every deadline of the process: a heap of ends, a condition to wait on."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._cond = threading.Condition()
        self._heap = []
        self._order = itertools.count()
        self._thread = None

    def add(self, deadline):
        with self._cond:
            heapq.heappush(self._heap, (deadline.end, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name='imagelayers-deadlines')
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify()

    def _next_due(self):
        """The next deadline that has passed, or None after waiting a while; runs with the lock held."""
        while self._heap and not self._heap[0][2]._active:
            heapq.heappop(self._heap)
        if not self._heap:
            self._cond.wait(WATCHDOG_IDLE)
            return None
        when, dummy, deadline = self._heap[0]
        now = self.clock()
        if when > now:
            self._cond.wait(min(when - now, WATCHDOG_IDLE))
            return None
        heapq.heappop(self._heap)
        if deadline.end > when:
            # Its allowance grew since it was queued: queue it again for the new end.
            heapq.heappush(self._heap, (deadline.end, next(self._order), deadline))
            return None
        return deadline

    def _run(self):
        idle_since = self.clock()
        while True:
            with self._cond:
                due = self._next_due()
                if due is None and not self._heap and self.clock() - idle_since >= WATCHDOG_IDLE:
                    self._thread = None
                    return
            if due is not None:
                due._fire()
            if self._heap:
                idle_since = self.clock()


_WATCHDOG = _Watchdog()


# -- readers ------------------------------------------------------------------------------
def guard(read, deadline, grow=False):
    """``read(n)`` (or ``readinto(buffer)``) that raises DeadlineExceeded once ``deadline`` has passed.

    The clock is checked before each read, and after a read that failed: a
    read the watchdog cut short raises the deadline, or returns the bytes it
    got (they are good, and a resumed transfer keeps them), and the next read
    raises. The deadline is cancelled when the body ends. With ``grow`` (a body of
    unknown size), each read extends the allowance to what was received
    plus what it asks for.
    """
    received = [0]

    def expired():
        deadline.cancel()
        return deadline.error()

    def guarded(amount):
        if deadline.expired:
            raise expired()
        if grow:
            deadline.allow(received[0] + (amount if isinstance(amount, int) else len(amount)))
        try:
            data = read(amount)
        except Exception:
            if deadline.expired:
                raise expired() from None
            raise
        count = data if isinstance(data, int) else len(data)
        if not count:
            if deadline.expired:
                raise expired()  # cut short by the watchdog, not the end of the body
            deadline.cancel()
        received[0] += count
        return data
    return guarded


def deadline_reader(response, timeout, expected_bytes, what):
    """``(read, close)`` over a streaming requests response, with a total deadline.

    ``read(n)`` returns raw bytes (no decoding); ``expected_bytes`` None means
    a body of unknown size (the allowance grows with the reads). ``close``
    disarms the deadline, then closes the response.
    """
    deadline = Deadline(timeout, expected_bytes, what)
    deadline.watch(response)
    raw_read = response.raw.read

    def read(amount):
        return raw_read(amount, decode_content=False)

    def close():
        deadline.cancel()
        response.close()
    return guard(read, deadline, grow=expected_bytes is None), close


def read_with_deadline(response, limit, timeout, what, decode_content=True):
    """At most ``limit`` bytes of a streaming response's body, within ``timeout`` + its size at MIN_RATE.

    For small documents (manifests, configs, error bodies, token answers) read in
    one go; the caller closes the response. The size is the ``Content-Length``
    when the answer gives one below ``limit`` (http.client never reads past it),
    else ``limit``.
    """
    announced = (response.headers.get('Content-Length') or '').strip()
    expected = min(limit, int(announced)) if announced.isdigit() else limit
    deadline = Deadline(timeout, expected, what)
    deadline.watch(response)
    try:
        return guard(lambda amount: response.raw.read(amount, decode_content=decode_content), deadline)(limit)
    finally:
        deadline.cancel()


def load_content(response, limit, timeout, what):
    """Load a non-streamed answer's body (at most ``limit`` bytes) within its deadline, as ``response.content``.

    ``requests`` would load it with no total deadline and no size limit. The
    loaded bytes are handed to ``requests`` through its private ``_content``,
    the one place outside urllib3's socket that this module sets; where a
    ``requests`` without it is met, the bytes are only returned.
    """
    data = read_with_deadline(response, limit, timeout, what)
    if hasattr(response, '_content') and hasattr(response, '_content_consumed'):
        response._content = data
        response._content_consumed = True
    return data
