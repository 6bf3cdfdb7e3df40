# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streamed uploads whose source breaks: a readable reason, never a Python tuple or repr."""

from __future__ import annotations

import time

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._copy import RegistryBlobSource
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import TransportError
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import TransferStats, ensure_blob
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for, digest_of
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import Plan, SlowServer

DATA = bytes(range(256)) * 1024  # 256 KiB
DIGEST = digest_of(DATA)


@pytest.fixture
def source(slow):
    return slow


@pytest.fixture
def dest():
    with SlowServer() as served:
        yield served


def _client(server, timeout=5):
    return client_for(server, timeout=timeout)


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


def dripping_source(client):
    """The copy's own blob source (a resumable reader with a deadline per request) over the dripping server."""
    source = RegistryBlobSource(client, 'src')
    source.name = 'the dripping source'
    return source


def test_a_dripping_source_fails_the_copy_at_its_deadline(source, dest):
    data = b'z' * (64 * 1024)
    digest = digest_of(data)
    source.plan = lambda request: Plan(body=data, drip=0.2, max_seconds=10)
    dest.plan = _destination
    started = time.monotonic()
    with pytest.raises(TransportError) as excinfo:
        ensure_blob(_client(dest), 'dst', {'digest': digest, 'size': len(data)},
                    dripping_source(_client(source, timeout=1)), TransferStats(), retries=0)
    assert time.monotonic() - started < 5
    msg = excinfo.value.msg
    assert msg.startswith('Uploading to dst failed: blob %s from the dripping source did not finish within its '
                          'deadline of 2 s (timeout 1 s + 65536 bytes at 64 KiB/s' % digest), msg
    # the PUT never completed: the destination answered no digest for a whole body
    assert all(len(r['body']) < len(data) for r in dest.requests if r['method'] == 'PUT')
