# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""HTTP underneath the registry client: what every request shares, whoever sends it.

- ``HTTPSession``: the one ``requests.Session`` of a run, its connection pools,
  redirects followed by hand (``Authorization`` only to its own origin, no step
  down from HTTPS), proxies from the environment read once per origin;
- ``backoff``: the one wait between two attempts, with jitter;
- ``describe_exception``: one readable line for any transport failure;
- deadlines: a total deadline per request, enforced while a read is blocked;
- ``body_readinto``: the fast read path for blob bodies (guarded, with a fallback);
- ``decode_error_body``: the ``errors`` of a registry's (or token service's) JSON answer.

This is the only module that reads private attributes of ``requests``,
``urllib3`` or ``http.client``; each such read is guarded and has a fallback.

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
attributes of urllib3 and http.client (:func:`_find_socket`). Without them,
the watchdog closes the response instead (from a helper thread: the close may
wait for the blocked read) and the clock is checked between reads.
"""

from __future__ import annotations

import email.utils
import heapq
import http.client
import itertools
import json
import os
import random
import re
import socket
import threading
import time
import traceback
import warnings
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urljoin, urlsplit

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    RegistryError,
    TransportError,
    mask_secrets,
    redact_url,
)

if TYPE_CHECKING:
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig

HAS_REQUESTS: bool
REQUESTS_IMPORT_ERROR: str | None
# What ends a transfer without an answer: to be told in words, and for a blob, resumed.
TRANSFER_ERRORS: tuple[type[BaseException], ...]
_INCOMPLETE_READS: tuple[type[BaseException], ...]
try:
    import requests
    import requests.adapters
    import requests.exceptions
    import requests.utils
    import urllib3
    import urllib3.exceptions
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
    TRANSFER_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                       http.client.HTTPException, OSError)
    _INCOMPLETE_READS = (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)
except ImportError:  # the module reports missing_required_lib('requests')
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    TRANSFER_ERRORS = (http.client.HTTPException, OSError)
    _INCOMPLETE_READS = (http.client.IncompleteRead,)

COLLECTION_VERSION = '0.1.0'
USER_AGENT = 'imagelayers.registry/%s (Ansible collection)' % COLLECTION_VERSION

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
MAX_REDIRECTS = 5
DEFAULT_PORTS = {'http': 80, 'https': 443}
# requests keeps this many connections per host unless told otherwise.
DEFAULT_POOL_SIZE = 10
# Backoff: 0.5 s, 1 s, 2 s, ... with jitter, and no single wait longer than this,
# whatever Retry-After asks for.
BACKOFF_BASE = 0.5
MAX_RETRY_WAIT = 30.0
ERROR_BODY_LIMIT = 65536
MIN_RATE = 64 * 1024  # bytes per second
# The watchdog thread exits after this long without deadlines (and starts again when needed).
WATCHDOG_IDLE = 30.0
_QUERY = re.compile(r'\?[^\s\'"()<>]*')
_MAX_DEPTH = 8


# -- waiting between attempts ---------------------------------------------------------
def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): doubling, with +-25 % jitter.

    The jitter keeps parallel workers that failed together from retrying in step.
    """
    return min(MAX_RETRY_WAIT, BACKOFF_BASE * (2 ** (attempt - 1))) * (0.75 + random.random() / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


# -- origins and schemes --------------------------------------------------------------
def url_origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of ``url``, default ports filled in; None when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or '').lower(), port if port is not None else DEFAULT_PORTS.get(scheme)


def check_scheme(method: str, url: str, allow_plain: bool, came_from: str | None = None) -> None:
    """Refuse ``url`` when it is not http(s), or plain HTTP where that is not allowed.

    ``came_from`` is the URL that redirected to ``url``: then only a step down from
    HTTPS is refused. Without it, ``url`` is the registry's own (an absolute URL from
    an answer, a realm) and plain HTTP needs ``allow_plain``.
    """
    origin = url_origin(url)
    if origin is None or origin[0] not in DEFAULT_PORTS:
        raise TransportError('%s %s: %s an URL that is neither http nor https; refusing it'
                             % (method, redact_url(came_from or url),
                                'redirected to' if came_from else 'asked for'), url=came_from or None)
    if origin[0] != 'http' or allow_plain:
        return
    if came_from is None:
        raise TransportError(
            '%s %s refused: the registry is reached over HTTPS, and this URL from its answer is plain HTTP; '
            'credentials and content are not sent unencrypted' % (method, redact_url(url)), url=url)
    previous = url_origin(came_from)
    if previous is not None and previous[0] == 'https':
        raise TransportError(
            '%s %s was redirected to plain HTTP (%s); refusing to follow it: the registry is reached over HTTPS, '
            'and credentials and content are not sent unencrypted' % (method, redact_url(came_from), redact_url(url)),
            url=url, details={'redirected_from': redact_url(came_from)})


# -- the session ------------------------------------------------------------------------
class HTTPSession:
    """The one requests.Session of a module run, shared by every registry it talks to."""

    def __init__(self, session: Any = None, sleep: Callable[[float], Any] = time.sleep) -> None:
        if session is None:
            session = requests.Session()
            session.headers['User-Agent'] = USER_AGENT
        # The environment (proxy variables, REQUESTS_CA_BUNDLE) is read here, once per
        # origin, instead of by requests on every request: walking os.environ twice per
        # request was half of the client's CPU time when tagging 50 tags. It also keeps
        # ~/.netrc from silently replacing the Authorization header this client sets.
        session.trust_env = False
        self.session = session
        self.sleep = sleep
        self.request_count = 0
        self.pool_size = DEFAULT_POOL_SIZE
        self._proxies: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self.session.close()

    def ensure_pool_size(self, size: int) -> None:
        """Keep at least ``size`` connections per host (never fewer than before).

        requests keeps 10 connections per host by default; more workers than that
        would open and throw away connections all the time. The size mounted is
        remembered here, so no adapter needs to be asked for it.
        """
        if size <= self.pool_size or not HAS_REQUESTS or not callable(getattr(self.session, 'mount', None)):
            return
        for prefix in ('https://', 'http://'):
            self.session.mount(prefix, requests.adapters.HTTPAdapter(pool_connections=DEFAULT_POOL_SIZE,
                                                                     pool_maxsize=size))
        self.pool_size = size

    def send(self, method: str, url: str, headers: dict[str, str], options: ConnectionConfig, data: Any = None,
             auth_origin: tuple[str, str, int | None] | None = None, allow_plain: bool = False,
             direct: bool = False) -> 'requests.Response':
        """Send one request, following redirects by hand.

        ``Authorization`` goes only to ``auth_origin`` (``url_origin`` of where the
        credentials belong): a hop to any other scheme, host or port (a storage
        backend serving a blob, or the same host over plain HTTP) goes without it. A
        redirect from HTTPS to plain HTTP is refused unless ``allow_plain``. A plain
        HTTP hop never goes through a proxy when it carries credentials, nor when it
        is to ``auth_origin`` and ``direct`` (a loopback registry).
        """
        current_method = method
        current_url = url
        came_from = None
        verify = _environment_verify(options.verify)
        for hop in range(MAX_REDIRECTS + 1):
            if came_from is not None:
                check_scheme(method, current_url, allow_plain, came_from=came_from)
            origin = url_origin(current_url)
            own = auth_origin is not None and origin == auth_origin
            hop_headers = dict(headers)
            if not own:
                hop_headers.pop('Authorization', None)
            plain = origin is not None and origin[0] == 'http'
            proxies = {} if plain and ((direct and own) or 'Authorization' in hop_headers) else \
                self._proxies_for(current_url)
            self.request_count += 1
            # Always streamed: error bodies are then read with a size limit, and the
            # caller decides whether to load the content (see RegistryAPI.request).
            with _QUIET_INSECURE if verify is False else nullcontext():
                response = self.session.request(
                    current_method, current_url, headers=hop_headers, data=data if hop == 0 else None,
                    stream=True, allow_redirects=False, timeout=(options.timeout, options.timeout),
                    verify=verify, proxies=proxies, cert=getattr(options, 'cert', None))
            if response.status_code not in REDIRECT_STATUSES or 'Location' not in response.headers:
                return response
            location = urljoin(current_url, response.headers['Location'])
            response.close()
            if response.status_code == 303 and current_method != 'HEAD':
                current_method = 'GET'
            came_from, current_url = current_url, location
        raise TransportError('%s %s: more than %d redirects' % (method, redact_url(url), MAX_REDIRECTS), url=url)

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The proxies the environment sets for ``url``'s origin (honouring no_proxy), cached."""
        parts = urlsplit(url)
        origin = '%s://%s' % (parts.scheme, parts.netloc)
        if origin not in self._proxies:
            self._proxies[origin] = requests.utils.get_environ_proxies(origin + '/')
        return self._proxies[origin]


def _environment_verify(verify: bool | str) -> bool | str:
    """What requests would verify with: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when ``verify`` is True."""
    if verify is True:
        return os.environ.get('REQUESTS_CA_BUNDLE') or os.environ.get('CURL_CA_BUNDLE') or True
    return verify


class _QuietInsecure:
    """Silence urllib3's InsecureRequestWarning during the requests that do not verify, and only then.

    The user chose not to verify; the warning on stderr would only add noise. But
    the filter is the process's (a lookup runs in the controller, whose other
    requests keep their warnings): it is added when the first such request starts
    and removed, that one entry only, when the last one in flight ends. A lock and
    a count instead of ``warnings.catch_warnings()``, which restores a saved list
    and so, with requests in parallel threads, could leave a filter behind or drop
    one added meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._entry: tuple[Any, ...] | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0 and HAS_REQUESTS:
                entry = ('ignore', None, urllib3.exceptions.InsecureRequestWarning, None, 0)
                if entry not in warnings.filters:  # already there (the user's): leave it as it is
                    warnings.filterwarnings('ignore', category=urllib3.exceptions.InsecureRequestWarning)
                    self._entry = warnings.filters[0]
            self._users += 1

    def __exit__(self, *exc_info: Any) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._entry is not None:
                filters = warnings.filters
                if isinstance(filters, list) and self._entry in filters:  # else reset meanwhile: nothing of ours
                    filters.remove(self._entry)
                self._entry = None


_QUIET_INSECURE = _QuietInsecure()


# -- describing failures --------------------------------------------------------------
def describe_exception(exc: BaseException) -> str:
    """A one-line reason for a transport failure: no tuple, no repr, no query string."""
    text = _QUERY.sub('', _describe(exc, 0)).strip()
    return text or exc.__class__.__name__


def _describe(exc: BaseException, depth: int) -> str:
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


def _text_and_reason(args: tuple[Any, ...], depth: int) -> str:
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


def _incomplete_read(exc: Any) -> str:
    partial = exc.partial
    received = len(partial) if isinstance(partial, (bytes, bytearray)) else partial
    if isinstance(received, int) and isinstance(exc.expected, int):
        return 'the body ended after %d bytes, %d more were expected' % (received, exc.expected)
    return 'the body ended early'


def _plain(exc: BaseException) -> str:
    args = getattr(exc, 'args', None) or ()
    if len(args) > 1:
        return ': '.join(str(arg) for arg in args if not isinstance(arg, (bytes, bytearray)))
    return str(exc) or exc.__class__.__name__


# -- deadlines ---------------------------------------------------------------------------
def deadline_seconds(timeout: float, expected_bytes: int | None) -> float:
    """``timeout + expected_bytes / MIN_RATE``: how long a request for that many bytes may take in all."""
    return float(timeout) + float(expected_bytes or 0) / MIN_RATE


def _number(value: float) -> str:
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

    def __init__(self, timeout: float, expected_bytes: int | None, what: str = 'the transfer',
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = float(timeout)
        self.expected_bytes = int(expected_bytes or 0)
        self.what = what
        self.clock = clock
        self.start = clock()
        self.fired = False
        self._active = False
        self._done = False
        self._lock = threading.Lock()
        self._socket: Any = None
        self._response: Any = None

    @property
    def seconds(self) -> float:
        return deadline_seconds(self.timeout, self.expected_bytes)

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def expired(self) -> bool:
        """Passed (and the request not over before it did)."""
        return self.fired or (not self._done and self.clock() >= self.end)

    def allow(self, total_bytes: int) -> None:
        """Let the request read ``total_bytes`` in all (never less than before): a later end."""
        if total_bytes > self.expected_bytes:
            self.expected_bytes = int(total_bytes)

    def watch(self, response: Any) -> bool:
        """Arm the watchdog on ``response``; False when its socket was not found (it is closed instead)."""
        sock = _find_socket(response)
        with self._lock:
            self._socket = sock
            self._response = response if sock is None else None
            self._active = True
        _WATCHDOG.add(self)
        return sock is not None

    def cancel(self) -> None:
        """The request is over: the watchdog must not touch its connection any more."""
        with self._lock:
            self._active = False
            self._done = True
            self._socket = None
            self._response = None

    def check(self) -> None:
        if self.expired:
            raise self.error()

    def error(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            '%s did not finish within its deadline of %s s (timeout %s s + %d bytes at %d KiB/s, the slowest '
            'rate accepted)'
            % (self.what, _number(self.seconds), _number(self.timeout), self.expected_bytes, MIN_RATE // 1024),
            details={'deadline': round(self.seconds, 3), 'timeout': self.timeout,
                     'expected_bytes': self.expected_bytes, 'min_rate': MIN_RATE})

    def _fire(self) -> None:
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


def _close_quietly(response: Any) -> None:
    try:
        response.close()
    except Exception:  # the request has failed already; its close must not add another error
        pass


def _find_socket(response: Any) -> socket.socket | None:
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

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.end, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name='imagelayers-deadlines')
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify()

    def _next_due(self) -> Deadline | None:
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

    def _run(self) -> None:
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
def guard(read: Callable[[Any], Any], deadline: Deadline, grow: bool = False) -> Callable[[Any], Any]:
    """``read(n)`` (or ``readinto(buffer)``) that raises DeadlineExceeded once ``deadline`` has passed.

    The clock is checked before each read, and after a read that failed: a
    read the watchdog cut short raises the deadline, or returns the bytes it
    got (they are good, and a resumed transfer keeps them), and the next read
    raises. The deadline is cancelled when the body ends. With ``grow`` (a body of
    unknown size), each read extends the allowance to what was received
    plus what it asks for.
    """
    received = [0]

    def expired() -> DeadlineExceeded:
        deadline.cancel()
        return deadline.error()

    def guarded(amount: Any) -> Any:
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


def content_length(response: 'requests.Response') -> int | None:
    """The ``Content-Length`` an answer announces, or None (absent or not a number)."""
    value = (response.headers.get('Content-Length') or '').strip()
    return int(value) if value.isdigit() else None


def read_with_deadline(response: 'requests.Response', limit: int, timeout: float, what: str,
                       decode_content: bool = True) -> bytes:
    """At most ``limit`` bytes of a streaming response's body, within ``timeout`` + its size at MIN_RATE.

    For small documents (manifests, configs, error bodies, token answers) read in
    one go; the caller closes the response. The size is the ``Content-Length``
    when the answer gives one below ``limit`` (http.client never reads past it),
    else ``limit``.
    """
    announced = content_length(response)
    expected = limit if announced is None else min(limit, announced)
    deadline = Deadline(timeout, expected, what)
    deadline.watch(response)
    try:
        return guard(lambda amount: response.raw.read(amount, decode_content=decode_content), deadline)(limit)
    finally:
        deadline.cancel()


def load_content(response: 'requests.Response', limit: int, timeout: float, what: str) -> bytes:
    """Load a non-streamed answer's body (at most ``limit`` bytes) within its deadline, as ``response.content``.

    ``requests`` would load it with no total deadline and no size limit. The
    loaded bytes are handed to ``requests`` through its private ``_content``
    (set only where it exists; else the bytes are only returned).
    """
    data = read_with_deadline(response, limit, timeout, what)
    if hasattr(response, '_content') and hasattr(response, '_content_consumed'):
        response._content = data
        response._content_consumed = True
    return data


# -- the fast read path of blob bodies -----------------------------------------------------
# The urllib3 major versions whose HTTPResponse keeps the http.client response in ``_fp``
# with ``_fp_bytes_read`` and ``_decoder`` beside it (1.26 and 2.x). Any other: the fallback.
_FAST_READ_URLLIB3 = ('1', '2')


def fast_read_supported(version: str | None) -> bool:
    """Whether :func:`body_readinto` knows the layout of urllib3 ``version``."""
    return bool(version) and str(version).split('.', 1)[0] in _FAST_READ_URLLIB3


FAST_READ = HAS_REQUESTS and fast_read_supported(getattr(urllib3, '__version__', None) if HAS_REQUESTS else None)


def body_readinto(response: 'requests.Response') -> Callable[[memoryview], int] | None:
    """``readinto(buffer)`` straight on the http.client response under requests/urllib3, or None.

    Used only for a plain (not decoded) body that nothing has read yet; then
    urllib3 adds nothing to the bytes but a copy per read (measured: about 15 %
    of a 256 MiB blob's fetch on loopback). None, and the caller reads
    ``raw.read`` instead, for any urllib3 this was not written against or any
    response that does not look as expected.
    """
    if not FAST_READ:
        return None
    raw = getattr(response, 'raw', None)
    fp = getattr(raw, '_fp', None)
    if not isinstance(fp, http.client.HTTPResponse) or getattr(raw, '_fp_bytes_read', None) != 0:
        return None
    if getattr(raw, '_decoder', True) is not None:  # a decoder, or no such attribute
        return None
    return fp.readinto


def release_after_fast_read(response: 'requests.Response') -> None:
    """Hand the connection of a body read through :func:`body_readinto` back to the pool.

    urllib3 did not see the body end (it was read past it), so it does not do it
    itself; only once http.client has closed its side, i.e. the body ended.
    """
    raw = getattr(response, 'raw', None)
    fp = getattr(raw, '_fp', None)
    release = getattr(raw, 'release_conn', None)
    if isinstance(fp, http.client.HTTPResponse) and fp.isclosed() and callable(release):
        release()


# -- error answers ----------------------------------------------------------------------------
def decode_error_body(response: 'requests.Response', secrets: Any = (), timeout: float = 60.0) -> list[dict[str, Any]]:
    """Return the ``errors`` list of a registry JSON error body, or [].

    Every form of ``secrets`` is masked: a registry may echo the Authorization header.
    The body is read within its deadline.
    """
    content_type = response.headers.get('Content-Type', '')
    raw = b''
    if response.raw is not None:
        try:
            raw = read_with_deadline(response, ERROR_BODY_LIMIT, timeout,
                                     'the error answer of %s' % redact_url(response.url))
        except DeadlineExceeded:
            raise  # a body that does not arrive in time is an error of its own
        except Exception:  # a broken error body must not hide the error itself
            raw = b''
    try:
        if not raw:
            return []
        if 'json' not in content_type and not raw.lstrip().startswith(b'{'):
            return []
        body = json.loads(raw.decode('utf-8', 'replace'))
    except Exception:  # a broken error body must not hide the error itself
        return []
    errors = body.get('errors') if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    result = []
    for entry in errors:
        if isinstance(entry, dict):
            item = {'code': str(entry.get('code', '')), 'message': str(entry.get('message', ''))}
            if entry.get('detail') is not None:
                item['detail'] = entry['detail']
            result.append(item)
    return mask_secrets(result, secrets)


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """``CODE: message; ...`` of a decoded error body, for a message."""
    return '; '.join('%s: %s' % (e['code'], e['message']) if e['message'] else e['code'] for e in errors)
