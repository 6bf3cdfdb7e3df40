# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to describe a transport failure, and total deadlines enforced while a read is blocked."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
import requests
import requests.exceptions
import urllib3.exceptions

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, TransportError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry import transport
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    MIN_RATE,
    Deadline,
    DeadlineExceeded,
    deadline_seconds,
    describe_exception,
    guard,
    read_with_deadline,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import Plan


def deadline_reader(response, timeout, expected_bytes, what):
    """``(read, close)`` over a response's raw body, guarded by a Deadline the way the blob reader guards it."""
    deadline = Deadline(timeout, expected_bytes, what)
    deadline.watch(response)

    def close():
        deadline.cancel()
        response.close()
    return guard(lambda amount: response.raw.read(amount, decode_content=False), deadline,
                 grow=expected_bytes is None), close


def _get(server, path='/v2/app/blobs/x'):
    return requests.get('http://%s%s' % (server.host, path), stream=True, timeout=(1, 1))


# -- describing failures ------------------------------------------------------------------
def test_incomplete_read_is_described_without_tuple_or_repr():
    inner = urllib3.exceptions.IncompleteRead(10, 90)
    exc = requests.exceptions.ChunkedEncodingError(
        urllib3.exceptions.ProtocolError('Connection broken: %r' % inner, inner))
    text = describe_exception(exc)
    assert "('" not in text and 'IncompleteRead(' not in text
    assert text == 'Connection broken: the body ended after 10 bytes, 90 more were expected'


def test_http_client_incomplete_read_counts_the_partial_bytes():
    text = describe_exception(http.client.IncompleteRead(b'x' * 7, 3))
    assert text == 'the body ended after 7 bytes, 3 more were expected'


def test_protocol_error_with_os_error_reads_text_then_reason():
    exc = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer')))
    assert describe_exception(exc) == 'Connection aborted: Connection reset by peer'


def test_max_retry_error_gives_its_reason_not_the_url():
    reason = urllib3.exceptions.NewConnectionError(
        None, 'Failed to establish a new connection: [Errno 111] Connection refused')
    exc = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, '/v2/app/blobs/x?X-Amz-Signature=secret', reason))
    text = describe_exception(exc)
    assert 'Connection refused' in text and 'secret' not in text and "('" not in text


def test_query_strings_are_cut_from_any_text():
    exc = requests.exceptions.ConnectionError(
        'Max retries exceeded with url: /blob?X-Amz-Signature=secret&x=1 (Caused by oops)')
    text = describe_exception(exc)
    assert 'secret' not in text and text.startswith('Max retries exceeded with url: /blob')
    assert 'Caused by oops' in text


def test_os_error_is_its_strerror_and_registry_error_its_msg():
    assert describe_exception(OSError(28, 'No space left on device', '/x')) == 'No space left on device'
    assert describe_exception(IntegrityError('bad bytes')) == 'bad bytes'
    assert describe_exception(ValueError()) == 'ValueError'


def test_a_bare_tuple_of_arguments_is_never_shown():
    text = describe_exception(urllib3.exceptions.ProtocolError('one', 'two'))
    assert "('" not in text and text == 'one: two'


# -- the deadline formula ----------------------------------------------------------------------
def test_deadline_is_timeout_plus_bytes_at_the_minimum_rate():
    assert MIN_RATE == 64 * 1024
    assert deadline_seconds(3, 0) == 3
    assert deadline_seconds(3, 10 * MIN_RATE) == 13
    assert deadline_seconds(60, None) == 60


# -- the watchdog -------------------------------------------------------------------------------
class FakeSocket:
    def __init__(self):
        self.shut = threading.Event()

    def shutdown(self, how):
        self.shut.set()

    def fileno(self):
        return 99


class FakeResponse:
    """A response whose socket the watchdog can find (``raw._connection.sock``)."""

    def __init__(self, sock=None):
        self.closed = threading.Event()

        class Connection:
            pass

        class Raw:
            pass

        self.raw = Raw()
        if sock is not None:
            self.raw._connection = Connection()
            self.raw._connection.sock = sock

    def close(self):
        self.closed.set()


def test_an_expired_deadline_shuts_the_socket_down():
    sock = FakeSocket()
    deadline = Deadline(0.2, 0, 'the test')
    deadline.watch(FakeResponse(sock))
    assert sock.shut.wait(3)
    assert deadline.expired
    with pytest.raises(DeadlineExceeded) as excinfo:
        deadline.check()
    assert 'deadline of 0.2 s' in excinfo.value.msg and isinstance(excinfo.value, TransportError)


def test_a_cancelled_deadline_never_touches_the_socket():
    sock = FakeSocket()
    deadline = Deadline(0.2, 0, 'the test')
    deadline.watch(FakeResponse(sock))
    deadline.cancel()
    assert not sock.shut.wait(0.6)
    deadline.check()  # a finished transfer does not expire


def test_without_a_socket_the_response_is_closed_instead():
    response = FakeResponse(sock=None)
    deadline = Deadline(0.2, 0, 'the test')
    assert deadline.watch(response) is False
    assert response.closed.wait(3)


def test_the_socket_of_a_real_response_is_found(slow):
    slow.plan = lambda request: Plan(body=b'x' * 10)
    response = _get(slow)
    try:
        assert transport._find_socket(response) is not None
    finally:
        response.close()


# -- reads that would block far longer than the deadline -------------------------------------
def test_a_dripping_body_fails_at_its_deadline_while_the_read_is_blocked(slow):
    slow.plan = lambda request: Plan(body=b'x' * (4 * 1024 * 1024), drip=0.2, max_seconds=10)
    response = _get(slow)
    read, close = deadline_reader(response, 1, MIN_RATE, 'blob sha256:abc from the source')
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as excinfo:
        for dummy in range(10):
            if not read(1024 * 1024):
                break
    close()
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    msg = excinfo.value.msg
    assert 'blob sha256:abc from the source did not finish within its deadline of 2 s' in msg
    assert '(timeout 1 s + 65536 bytes at 64 KiB/s, the slowest rate accepted)' in msg


def test_a_read_that_finishes_in_time_is_untouched(slow):
    slow.plan = lambda request: Plan(body=b'x' * 300000)
    response = _get(slow)
    read, close = deadline_reader(response, 1, 300000, 'blob')
    data = b''
    for dummy in range(10):
        chunk = read(65536)
        if not chunk:
            break
        data += chunk
    close()
    assert data == b'x' * 300000


def test_without_the_socket_the_clock_is_checked_between_reads(slow, monkeypatch):
    # The private attributes are gone (another urllib3): the blocked read returns only when the
    # server gives up, and then the deadline, not a broken connection, is what is reported.
    monkeypatch.setattr(transport, '_find_socket', lambda response: None)
    slow.plan = lambda request: Plan(body=b'x' * 100000, drip=0.2, max_seconds=2.5)
    response = _get(slow)
    read, close = deadline_reader(response, 1, 1000, 'the source blob')
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as excinfo:
        for dummy in range(10):
            if not read(65536):
                break
    close()
    assert time.monotonic() - started < 6
    assert 'did not finish within its deadline' in excinfo.value.msg


def test_small_document_reads_have_a_deadline_from_their_limit(slow):
    slow.plan = lambda request: Plan(body=b'{' * (4 * 1024 * 1024), drip=0.2, max_seconds=10)
    response = _get(slow, '/v2/app/manifests/latest')
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as excinfo:
        read_with_deadline(response, MIN_RATE, 1, 'GET manifest app:latest')
    response.close()
    assert time.monotonic() - started < 5
    assert 'GET manifest app:latest did not finish within its deadline of 2 s' in excinfo.value.msg


def test_small_document_read_returns_the_bytes(slow):
    slow.plan = lambda request: Plan(body=b'{"a": 1}')
    response = _get(slow, '/v2/app/manifests/latest')
    assert read_with_deadline(response, 1000, 1, 'GET manifest') == b'{"a": 1}'
    response.close()


# -- backoff ---------------------------------------------------------------------------------
def test_backoff_doubles_with_jitter_and_a_ceiling(monkeypatch):
    monkeypatch.setattr(transport.random, 'random', lambda: 0.5)
    assert [transport.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert transport.backoff(20) == transport.MAX_RETRY_WAIT
    monkeypatch.setattr(transport.random, 'random', lambda: 0.0)
    assert transport.backoff(1) == 0.375  # 25 % less, and up to 25 % more with random() near 1


# -- pool size -------------------------------------------------------------------------------
def test_pool_size_is_remembered_not_read_from_the_adapter():
    http = transport.HTTPSession()
    assert http.pool_size == 10
    mounted = []
    http.session.mount = lambda prefix, adapter: mounted.append(prefix)
    http.ensure_pool_size(8)
    assert mounted == [] and http.pool_size == 10
    http.ensure_pool_size(24)
    http.ensure_pool_size(24)
    assert mounted == ['https://', 'http://'] and http.pool_size == 24


# -- the fast read path ----------------------------------------------------------------------
def test_the_fast_path_knows_urllib3_1_and_2_only():
    assert transport.fast_read_supported('2.8.0') and transport.fast_read_supported('1.26.20')
    assert not transport.fast_read_supported('3.0.0') and not transport.fast_read_supported(None)


def test_the_fast_path_is_taken_on_a_fresh_plain_body_only(slow, monkeypatch):
    slow.plan = lambda request: Plan(body=b'x' * 1000)
    response = _get(slow)
    try:
        assert transport.body_readinto(response) is not None
        response.raw.read(10)
        assert transport.body_readinto(response) is None  # urllib3 has read from it: its count would be wrong
        monkeypatch.setattr(transport, 'FAST_READ', False)
        assert transport.body_readinto(_get(slow)) is None
    finally:
        response.close()


def test_the_fast_path_refuses_a_response_that_looks_different():
    class Raw:
        _fp = object()
        _fp_bytes_read = 0
        _decoder = None

    assert transport.body_readinto(type('Response', (), {'raw': Raw()})()) is None
    assert transport.body_readinto(type('Response', (), {'raw': object()})()) is None
    transport.release_after_fast_read(type('Response', (), {'raw': object()})())  # nothing to release: no error
