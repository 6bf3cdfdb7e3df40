# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The streaming verifier: hashing, size limits, resume, and files that are never left half-written."""

from __future__ import annotations

import io
import os
import time

import pytest
import requests

from ansible_collections.imagelayers.registry.plugins.module_utils import _blobs
from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import (
    BlobCheck,
    BlobFile,
    FetchResult,
    MemorySink,
    VerifiedBody,
    blob_path,
    fetch_blob,
    iter_verified,
    iter_verified_into,
    verify_file,
    write_bytes,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    NotFoundError,
    RegistryError,
    TransportError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    client_for,
    digest_of,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import Plan, dripping_then_ranges

DATA = bytes(range(256)) * 4096 + b'tail'  # 1 MiB + 4 bytes: two chunks
DIGEST = digest_of(DATA)
OTHER = digest_of(b'other')


class Reader:
    """A read(n) that records what was asked for."""

    def __init__(self, data):
        self.stream = io.BytesIO(data)
        self.asked = []

    def read(self, amount):
        self.asked.append(amount)
        return self.stream.read(amount)


# -- accounting -------------------------------------------------------------------
def test_check_accepts_the_right_bytes():
    check = BlobCheck(DIGEST, len(DATA))
    check.update(DATA[:10])
    check.update(DATA[10:])
    assert check.ok and check.verify() == DIGEST and check.count == len(DATA)


def test_wrong_content_names_expected_and_actual_digest_and_size():
    check = BlobCheck(OTHER, len(DATA))
    check.update(DATA)
    with pytest.raises(IntegrityError) as excinfo:
        check.verify()
    error = excinfo.value
    assert OTHER in error.msg and DIGEST in error.msg and str(len(DATA)) in error.msg
    assert error.details['actual_digest'] == DIGEST and error.details['actual_size'] == len(DATA)


def test_short_content_is_a_size_error_even_before_the_digest():
    check = BlobCheck(DIGEST, len(DATA))
    check.update(DATA[:-1])
    with pytest.raises(IntegrityError) as excinfo:
        check.verify()
    assert 'wrong size' in excinfo.value.msg
    assert excinfo.value.details['actual_size'] == len(DATA) - 1


def test_reads_never_ask_beyond_size_plus_one_byte():
    reader = Reader(DATA + b'x' * (5 * 1024 * 1024))
    check = BlobCheck(DIGEST, len(DATA))
    got = []
    with pytest.raises(IntegrityError) as excinfo:
        for chunk in iter_verified(reader.read, check):
            got.append(chunk)
    assert b''.join(got) == DATA  # nothing past the expected end is handed on
    assert sum(reader.asked) == len(DATA) + 1
    assert excinfo.value.details['overlong'] is True
    assert 'longer than' in excinfo.value.msg


def test_exact_body_is_read_in_fixed_chunks():
    reader = Reader(DATA)
    check = BlobCheck(DIGEST, len(DATA))
    assert b''.join(iter_verified(reader.read, check)) == DATA
    assert reader.asked == [1024 * 1024, 4, 1]


def test_reading_into_one_buffer_follows_the_same_rules():
    stream = io.BytesIO(DATA + b'x' * 10)
    asked = []

    def readinto(view):
        asked.append(len(view))
        return stream.readinto(view)

    check = BlobCheck(DIGEST, len(DATA))
    got = []
    with pytest.raises(IntegrityError) as excinfo:
        for chunk in iter_verified_into(readinto, check):
            got.append(bytes(chunk))  # a view of the reused buffer: copy it to keep it
    assert b''.join(got) == DATA and asked == [1024 * 1024, 4, 1]
    assert excinfo.value.details['overlong']


def test_unknown_size_reads_to_the_end_and_checks_the_digest():
    check = BlobCheck(DIGEST)
    assert b''.join(iter_verified(Reader(DATA).read, check)) == DATA
    with pytest.raises(IntegrityError):
        b''.join(iter_verified(Reader(DATA[:-1]).read, BlobCheck(DIGEST)))


def test_verified_body_uploads_with_a_content_length(registry):
    received = {}

    class Capture(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            received['length'] = request.headers.get('Content-Length')
            received['body'] = b''.join(request.body)
            response = requests.Response()
            response.status_code = 201
            return response

    session = requests.Session()
    session.mount('http://', Capture())
    body = VerifiedBody(io.BytesIO(DATA).read, DIGEST, len(DATA))
    session.put('http://%s/upload' % registry.host, data=body)
    assert received == {'length': str(len(DATA)), 'body': DATA}
    assert len(body) == len(DATA)


def test_verified_body_streams_a_source_response_into_an_upload(registry):
    digest = registry.add_blob(DATA)
    read, close = client_for(registry).blob_reader('app', digest, len(DATA)).open()
    body = VerifiedBody(read, digest, len(DATA))
    chunks = list(body)
    close()
    assert b''.join(chunks) == DATA and max(len(c) for c in chunks) == 1024 * 1024
    assert body.check.ok


def test_verified_body_refuses_wrong_content():
    body = VerifiedBody(io.BytesIO(DATA[:-1] + b'X').read, DIGEST, len(DATA))
    with pytest.raises(IntegrityError):
        for dummy in body:
            pass


# -- the network ----------------------------------------------------------------------
def test_fetch_verifies_while_streaming(registry):
    digest = registry.add_blob(DATA)
    sink = MemorySink(10 * 1024 * 1024)
    result = fetch_blob(client_for(registry), 'app', digest, len(DATA), sink=sink)
    assert sink.getvalue() == DATA
    assert result.attempts == 1 and result.bytes_transferred == len(DATA)
    assert registry.requests[-1]['headers']['Accept-Encoding'] == 'identity'


def test_connection_is_reused_from_blob_to_blob(registry):
    first = registry.add_blob(DATA)
    second = registry.add_blob(DATA[::-1])
    client = client_for(registry)
    for digest in (first, second, first):
        fetch_blob(client, 'app', digest, len(DATA))
    assert len(set(r['client'] for r in registry.requests)) == 1


def test_content_length_disagreeing_with_descriptor_fails_before_reading(registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'content_length': len(DATA) + 100}
    sink = MemorySink(10 * 1024 * 1024)
    with pytest.raises(IntegrityError) as excinfo:
        fetch_blob(client_for(registry), 'app', digest, len(DATA), sink=sink)
    assert 'announced %d bytes' % (len(DATA) + 100) in excinfo.value.msg
    assert 'says %d bytes' % len(DATA) in excinfo.value.msg
    assert sink.getvalue() == b''


def test_corrupted_body_names_both_digests(registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'corrupt': 1000}
    with pytest.raises(IntegrityError) as excinfo:
        fetch_blob(client_for(registry, retries=3), 'app', digest, len(DATA))
    bad = bytearray(DATA)
    bad[1000] ^= 0xff
    assert excinfo.value.details['actual_digest'] == digest_of(bytes(bad))
    assert digest in excinfo.value.msg and digest_of(bytes(bad)) in excinfo.value.msg
    # A corrupt blob is not "retried": the registry serves what it has.
    assert len(registry.requests) == 1


def test_dropped_connection_resumes_with_range(registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'truncate': 300000} if 'Range' not in request['headers'] else None
    sink = MemorySink(10 * 1024 * 1024)
    result = fetch_blob(client_for(registry), 'app', digest, len(DATA), sink=sink, retries=2, sleep=lambda s: None)
    assert sink.getvalue() == DATA
    assert result.attempts == 2 and result.resumed == 1 and result.restarted == 0
    assert [r['headers'].get('Range') for r in registry.requests] == [None, 'bytes=300000-']


def test_registry_ignoring_range_restarts_from_zero(registry):
    digest = registry.add_blob(DATA)
    calls = []

    def fault(request):
        calls.append(request)
        return {'truncate': 300000} if len(calls) == 1 else {'ignore_range': True}

    registry.fault = fault
    sink = MemorySink(10 * 1024 * 1024)
    result = fetch_blob(client_for(registry), 'app', digest, len(DATA), sink=sink, retries=1, sleep=lambda s: None)
    assert sink.getvalue() == DATA  # no duplicated prefix
    assert result.restarted == 1


def test_retries_are_bounded(registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'truncate': 1000}
    sleeps = []
    with pytest.raises(TransportError) as excinfo:
        fetch_blob(client_for(registry), 'app', digest, len(DATA), retries=2, sleep=sleeps.append)
    assert len(registry.requests) == 3 and len(sleeps) == 2
    assert 'after 3 attempts' in excinfo.value.msg and digest in excinfo.value.msg


def test_no_retry_with_retries_zero(registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'truncate': 1000}
    with pytest.raises(TransportError):
        fetch_blob(client_for(registry), 'app', digest, len(DATA), retries=0)
    assert len(registry.requests) == 1


def test_unknown_blob_is_not_found_with_blob_unknown(registry):
    with pytest.raises(NotFoundError) as excinfo:
        fetch_blob(client_for(registry), 'app', DIGEST, 10)
    assert 'BLOB_UNKNOWN' in excinfo.value.codes


def test_overlong_chunked_body_stops_at_size_plus_one(registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'chunked': True, 'extra': 4 * 1024 * 1024}
    with pytest.raises(IntegrityError) as excinfo:
        fetch_blob(client_for(registry), 'app', digest, len(DATA))
    assert excinfo.value.details['overlong']


def test_chunked_body_of_unknown_size_verifies(registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'chunked': True}
    result = fetch_blob(client_for(registry), 'app', digest, None)
    assert result.check.count == len(DATA)


def test_pool_grows_to_the_number_of_workers():
    http = HTTPSession()
    http.ensure_pool_size(24)
    assert http.session.get_adapter('http://x/')._pool_maxsize == 24
    http.ensure_pool_size(4)  # never shrinks
    assert http.session.get_adapter('https://x/')._pool_maxsize == 24


# -- files ----------------------------------------------------------------------------
def test_blob_file_appears_only_after_commit(tmp_path):
    with BlobFile(str(tmp_path), DIGEST) as blob_file:
        blob_file.write(DATA)
        assert not os.path.exists(blob_path(str(tmp_path), DIGEST))
        path = blob_file.commit()
    assert path == str(tmp_path / 'blobs' / 'sha256' / DIGEST.split(':')[1])
    with open(path, 'rb') as handle:
        assert handle.read() == DATA
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)


def test_failed_download_leaves_nothing_behind(tmp_path, registry):
    digest = registry.add_blob(DATA)
    registry.fault = lambda request: {'corrupt': 5}
    with pytest.raises(IntegrityError), BlobFile(str(tmp_path), digest) as blob_file:
        fetch_blob(client_for(registry), 'app', digest, len(DATA), sink=blob_file)
        blob_file.commit()
    assert os.listdir(str(tmp_path / 'blobs' / 'sha256')) == []


def test_verify_file_states(tmp_path):
    path = str(tmp_path / 'blob')
    assert verify_file(path, DIGEST, len(DATA))[0] == 'absent'
    with open(path, 'wb') as handle:
        handle.write(DATA)
    state, check = verify_file(path, DIGEST, len(DATA))
    assert state == 'ok' and check.count == len(DATA)
    with open(path, 'ab') as handle:
        handle.write(b'more')
    assert verify_file(path, DIGEST, len(DATA))[0] == 'mismatch'
    assert verify_file(path, OTHER)[0] == 'mismatch'


# -- page cache: a large blob file gives its pages back as it goes ---------------------------------
@pytest.fixture
def fadvise(monkeypatch):
    """Every posix_fadvise call of _blobs as (offset, length, advice), with a 1 MiB cache window."""
    calls = []
    monkeypatch.setattr(_blobs, 'CACHE_WINDOW', 1024 * 1024)
    monkeypatch.setattr(_blobs, '_FADVISE', lambda fd, offset, length, advice: calls.append((offset, length, advice)))
    return calls


def test_a_large_blob_file_starts_writeback_and_gives_its_pages_back_every_window(tmp_path, fadvise):
    window = 1024 * 1024
    with BlobFile(str(tmp_path), DIGEST) as blob_file:
        for start in range(0, len(DATA), 64 * 1024):
            blob_file.write(DATA[start:start + 64 * 1024])
        assert fadvise == [(0, window, os.POSIX_FADV_DONTNEED)]
        blob_file.commit()
    # after the fsync, the whole file: a blob of any size leaves no more than a window in the cache
    assert fadvise[1:] == [(0, len(DATA), os.POSIX_FADV_DONTNEED)]


def test_a_small_blob_file_keeps_its_pages(tmp_path, fadvise):
    with BlobFile(str(tmp_path), OTHER) as blob_file:
        blob_file.write(b'other')
        blob_file.commit()
    write_bytes(str(tmp_path), digest_of(b'{}'), b'{}')
    assert verify_file(blob_path(str(tmp_path), OTHER), OTHER)[0] == 'ok'
    assert fadvise == []


def test_verifying_a_large_file_gives_its_pages_back(tmp_path, fadvise):
    path = str(tmp_path / 'blob')
    with open(path, 'wb') as handle:
        handle.write(DATA)
    assert verify_file(path, DIGEST, len(DATA))[0] == 'ok'
    assert fadvise == [(0, 1024 * 1024, os.POSIX_FADV_DONTNEED), (0, len(DATA), os.POSIX_FADV_DONTNEED)]


# -- free space, bodies without a length, deadlines ----------------------------------------------
class _StatVFS:
    def __init__(self, free):
        self.f_frsize = 4096
        self.f_bavail = free // 4096


def test_blob_larger_than_the_free_space_is_refused_before_any_request(tmp_path, registry, monkeypatch):
    digest = registry.add_blob(DATA)
    monkeypatch.setattr(os, 'statvfs', lambda path: _StatVFS(40960))
    with pytest.raises(RegistryError) as excinfo, BlobFile(str(tmp_path), digest) as blob_file:
        fetch_blob(client_for(registry), 'app', digest, 5 * 1024 ** 3, sink=blob_file)
        blob_file.commit()
    msg = excinfo.value.msg
    assert str(5 * 1024 ** 3) in msg and '40960' in msg and 'free' in msg
    assert registry.requests == []  # nothing asked for
    assert os.listdir(str(tmp_path / 'blobs' / 'sha256')) == []  # no temporary file left


def test_blob_that_fits_the_free_space_is_fetched(tmp_path, registry, monkeypatch):
    digest = registry.add_blob(DATA)
    monkeypatch.setattr(os, 'statvfs', lambda path: _StatVFS(len(DATA) + 4096))
    with BlobFile(str(tmp_path), digest) as blob_file:
        fetch_blob(client_for(registry), 'app', digest, len(DATA), sink=blob_file)
        path = blob_file.commit()
    assert os.path.getsize(path) == len(DATA)


def test_memory_sink_refuses_a_larger_blob_before_any_request(registry):
    digest = registry.add_blob(DATA)
    with pytest.raises(IntegrityError):
        fetch_blob(client_for(registry), 'app', digest, len(DATA), sink=MemorySink(1000))
    assert registry.requests == []


def _slow_client(slow, timeout=1):
    return client_for(slow, timeout=timeout)


def test_body_without_content_length_stops_at_size_plus_one(tmp_path, slow):
    body = DATA + b'x' * (8 * 1024 * 1024)
    slow.plan = lambda request: Plan(body=body, length=None)
    result = FetchResult()
    with pytest.raises(IntegrityError) as excinfo, BlobFile(str(tmp_path), DIGEST) as blob_file:
        fetch_blob(_slow_client(slow), 'app', DIGEST, len(DATA), sink=blob_file, result=result)
        blob_file.commit()
    assert excinfo.value.details['overlong'] is True
    assert result.bytes_transferred == len(DATA) + 1
    assert os.listdir(str(tmp_path / 'blobs' / 'sha256')) == []


def test_dripping_blob_fails_at_its_deadline(tmp_path, slow):
    size = 64 * 1024
    data = b'y' * size
    digest = digest_of(data)
    slow.plan = lambda request: Plan(body=data, drip=0.2, max_seconds=10)
    started = time.monotonic()
    with pytest.raises(TransportError) as excinfo, BlobFile(str(tmp_path), digest) as blob_file:
        fetch_blob(_slow_client(slow, timeout=1), 'app', digest, size, sink=blob_file, retries=0)
        blob_file.commit()
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    msg = excinfo.value.msg
    assert 'did not finish within its deadline of 2 s (timeout 1 s + 65536 bytes at 64 KiB/s' in msg
    assert os.listdir(str(tmp_path / 'blobs' / 'sha256')) == []


def test_a_deadline_miss_resumes_like_a_dropped_connection(slow):
    size = 64 * 1024
    data = bytes(range(256)) * 256
    digest = digest_of(data)
    slow.plan = dripping_then_ranges(data)
    sink = MemorySink(size)
    result = fetch_blob(_slow_client(slow), 'app', digest, size, sink=sink, retries=1, sleep=lambda s: None)
    assert sink.getvalue() == data and result.resumed == 1
