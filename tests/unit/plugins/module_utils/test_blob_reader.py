# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client's one resumable blob reader, for every consumer: a sink (fetch_blob) and an upload's VerifiedBody."""

from __future__ import annotations

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import MemorySink, fetch_blob
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import RegistryHTTPError, TransportError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry import reader as reader_module
from ansible_collections.imagelayers.registry.plugins.module_utils._registry import transport
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import BlobSource, TransferStats, ensure_blob
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    client_for,
    digest_of,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import Plan, dripping_then_ranges

DATA = bytes(range(256)) * 4096  # 1 MiB
DIGEST = digest_of(DATA)


class ReaderSource(BlobSource):
    """A copy's source that reads through the client's blob reader (what RegistryBlobSource.open does with it)."""

    def __init__(self, client, repository):
        self.client = client
        self.repository = repository
        self.name = '%s/%s' % (client.api_host, repository)

    def open(self, descriptor):
        return self.client.blob_reader(self.repository, descriptor['digest'], descriptor['size'],
                                       what='blob %s from %s' % (descriptor['digest'], self.name)).open()


def _destination(server):
    """An upload target: no blob yet, one upload location, and the digest of what was PUT."""
    def handler(request):
        if request['method'] == 'HEAD':
            return 404, {}, b''
        if request['method'] == 'POST':
            return 202, {'Location': '/v2/dst/blobs/uploads/u1?_state=abc'}, b''
        return 201, {'Docker-Content-Digest': digest_of(request['body'])}, b''
    server.handler = handler


def _copy(registry, server, retries=1):
    return ensure_blob(client_for(server),
                       'dst', {'digest': DIGEST, 'size': len(DATA)},
                       ReaderSource(client_for(registry, retries=retries), 'src'), TransferStats(), retries=0)


def _blob_requests(registry):
    return [r['headers'].get('Range') for r in registry.requests if DIGEST in r['path']]


def test_a_source_dropping_mid_blob_once_is_copied_with_one_range_request(registry, server):
    registry.add_blob(DATA)
    registry.fault = lambda request: {'truncate': 300000} if 'Range' not in request['headers'] else None
    _destination(server)
    assert _copy(registry, server) == 'copied'
    puts = [r for r in server.requests if r['method'] == 'PUT']
    assert len(puts) == 1 and puts[0]['body'] == DATA  # one upload, verified, complete
    assert _blob_requests(registry) == [None, 'bytes=300000-']


def test_a_source_ignoring_the_range_is_read_again_and_the_copy_still_whole(registry, server):
    registry.add_blob(DATA)
    calls = []

    def fault(request):
        calls.append(request)
        return {'truncate': 300000} if len(calls) == 1 else {'ignore_range': True}

    registry.fault = fault
    _destination(server)
    assert _copy(registry, server) == 'copied'
    assert [r['body'] for r in server.requests if r['method'] == 'PUT'] == [DATA]


def test_without_retries_the_drop_reaches_the_upload_as_before(registry, server):
    registry.add_blob(DATA)
    registry.fault = lambda request: {'truncate': 1000}
    _destination(server)
    with pytest.raises(TransportError) as excinfo:
        _copy(registry, server, retries=0)
    msg = excinfo.value.msg
    assert msg.startswith('Uploading to dst failed: Reading the blob %s from %s/src failed after 1000 of %d bytes: '
                          % (DIGEST, registry.host, len(DATA))), msg
    assert msg.endswith('Connection broken: the body ended after 1000 bytes, %d more were expected'
                        % (len(DATA) - 1000)), msg
    assert _blob_requests(registry) == [None]


def test_a_range_answered_from_a_later_byte_fails(slow):
    def plan(request):
        if 'range' not in request['headers']:
            return Plan(body=DATA, send=1000)
        return Plan(206, {'Content-Range': 'bytes 5000-%d/%d' % (len(DATA) - 1, len(DATA))}, body=DATA[5000:])

    slow.plan = plan
    client = client_for(slow)
    with pytest.raises(RegistryHTTPError) as excinfo:
        fetch_blob(client, 'app', DIGEST, len(DATA), retries=1, sleep=lambda s: None)
    assert 'cannot resume from it' in excinfo.value.msg


def test_each_request_has_its_own_deadline(slow):
    size = 64 * 1024
    data = bytes(range(256)) * 256
    digest = digest_of(data)
    slow.plan = dripping_then_ranges(data)
    client = client_for(slow, timeout=1, retries=1)
    reader = client.blob_reader('app', digest, size)
    read, close = reader.open()
    try:
        received = b''.join(iter(lambda: read(65536), b''))
    finally:
        close()
    assert received == data and reader.attempts == 2 and reader.resumed == 1


# -- the fast path, and its fallback --------------------------------------------------------
def test_fetch_reads_through_the_fast_path_where_it_can(registry, monkeypatch):
    registry.add_blob(DATA)
    taken = []

    def spy(response):
        found = transport.body_readinto(response)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(reader_module, 'body_readinto', spy)
    sink = MemorySink(len(DATA))
    fetch_blob(client_for(registry), 'app', DIGEST, len(DATA), sink=sink)
    assert sink.getvalue() == DATA and taken == [True]


@pytest.mark.parametrize('truncate', [None, 300000])
def test_without_the_fast_path_fetch_reads_through_urllib3(registry, monkeypatch, truncate):
    monkeypatch.setattr(transport, 'FAST_READ', False)
    first = registry.add_blob(DATA)
    second = registry.add_blob(DATA[::-1])
    if truncate:
        registry.fault = lambda request: {'truncate': truncate} if 'Range' not in request['headers'] else None
    client = client_for(registry)
    for digest, data in ((first, DATA), (second, DATA[::-1]), (first, DATA)):
        sink = MemorySink(len(DATA))
        result = fetch_blob(client, 'app', digest, len(DATA), sink=sink, retries=1, sleep=lambda s: None)
        assert sink.getvalue() == data and result.bytes_transferred == len(DATA)
        assert result.resumed == (1 if truncate else 0)
    if not truncate:
        assert len(set(r['client'] for r in registry.requests)) == 1  # the connection went back to the pool
