# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streamed uploads whose source breaks: a readable reason, never a Python tuple or repr."""

from __future__ import annotations

import time

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._copy import RegistryBlobSource
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import TransportError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession, deadline_reader
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import BlobSource, TransferStats, ensure_blob
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.fake_registry import digest_of
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.slow_server import Plan, SlowServer

DATA = bytes(range(256)) * 1024  # 256 KiB
DIGEST = digest_of(DATA)


@pytest.fixture
def source():
    srv = SlowServer()
    yield srv
    srv.close()


@pytest.fixture
def dest():
    srv = SlowServer()
    yield srv
    srv.close()


def _client(server, timeout=5):
    return RegistryClient(HTTPSession(sleep=lambda seconds: None), server.host,
                          ConnectionConfig(timeout=timeout, retries=0), loopback=True)


def _destination(request):
    if request['method'] == 'HEAD':
        return Plan(404)
    if request['method'] == 'POST':
        return Plan(202, {'Location': '/v2/dst/blobs/uploads/u1?_state=abc'})
    return Plan(201, {'Docker-Content-Digest': DIGEST})


def test_source_hanging_up_mid_copy_is_reported_readably(source, dest):
    # The source announces the whole blob and hangs up after 1000 bytes, during the PUT.
    source.plan = lambda request: Plan(body=DATA, send=1000)
    dest.plan = _destination
    with pytest.raises(TransportError) as excinfo:
        ensure_blob(_client(dest), 'dst', {'digest': DIGEST, 'size': len(DATA)},
                    RegistryBlobSource(_client(source), 'src'), TransferStats(), retries=1)
    msg = excinfo.value.msg
    assert "('" not in msg and 'IncompleteRead(' not in msg, msg
    assert msg.startswith('Uploading to dst failed: Reading the blob %s from %s/src failed after 1000 of %d bytes: '
                          % (DIGEST, source.host, len(DATA))), msg
    assert msg.endswith('Connection broken: the body ended after 1000 bytes, %d more were expected'
                        % (len(DATA) - 1000)), msg
    assert '_state' not in msg
    # retried once, then given up; nothing was committed with a digest
    assert len([r for r in source.requests if r['method'] == 'GET']) == 2


class DeadlineSource(BlobSource):
    """RegistryBlobSource as _copy opens it with a deadline: ``deadline_reader`` over the source GET."""

    name = 'the dripping source'

    def __init__(self, client):
        self.client = client

    def open(self, descriptor):
        response = self.client.open_blob('src', descriptor['digest'])
        return deadline_reader(response, self.client.api.options.timeout, descriptor['size'],
                               'blob %s from %s' % (descriptor['digest'], self.name))


def test_a_dripping_source_fails_the_copy_at_its_deadline(source, dest):
    data = b'z' * (64 * 1024)
    digest = digest_of(data)
    source.plan = lambda request: Plan(body=data, drip=0.2, max_seconds=10)
    dest.plan = _destination
    started = time.monotonic()
    with pytest.raises(TransportError) as excinfo:
        ensure_blob(_client(dest), 'dst', {'digest': digest, 'size': len(data)},
                    DeadlineSource(_client(source, timeout=1)), TransferStats(), retries=0)
    assert time.monotonic() - started < 5
    msg = excinfo.value.msg
    assert msg.startswith('Uploading to dst failed: blob %s from the dripping source did not finish within its '
                          'deadline of 2 s (timeout 1 s + 65536 bytes at 64 KiB/s' % digest), msg
    # the PUT never completed: the destination answered no digest for a whole body
    assert all(len(r['body']) < len(data) for r in dest.requests if r['method'] == 'PUT')
