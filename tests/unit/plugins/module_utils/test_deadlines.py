# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every answer of a registry, not only blobs, arrives in full within its deadline (issue 13, item 8)."""

from __future__ import annotations

import time

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import RegistryError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import Plan

MANIFEST = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}'


def client(server, credentials=None):
    return client_for(server, timeout=1, credentials=credentials)


def fails_in_time(call, bound=5):
    started = time.monotonic()
    with pytest.raises(RegistryError) as excinfo:
        call()
    assert time.monotonic() - started < bound
    assert 'deadline' in excinfo.value.msg
    return excinfo.value


def test_a_dripped_manifest_fails_at_its_deadline(slow):
    slow.plan = lambda request: Plan(body=MANIFEST, drip=0.2, max_seconds=20,
                                     headers={'Content-Type': 'application/vnd.oci.image.manifest.v1+json'})
    fails_in_time(lambda: client(slow).get_manifest('app', 'latest'))


def test_a_dripped_error_body_fails_at_its_deadline(slow):
    slow.plan = lambda request: Plan(status=500, body=b'{"errors": [{"code": "UNKNOWN"}]}' * 20, drip=0.2,
                                     max_seconds=20, headers={'Content-Type': 'application/json'})
    fails_in_time(lambda: client(slow).get_manifest('app', 'latest'))


def test_a_dripped_token_answer_fails_at_its_deadline(slow):
    def plan(request):
        if request['path'].startswith('/token'):
            return Plan(body=b'{"token": "abc"}' * 20, drip=0.2, max_seconds=20,
                        headers={'Content-Type': 'application/json'})
        if 'authorization' in request['headers']:
            return Plan(body=MANIFEST, headers={'Content-Type': 'application/vnd.oci.image.manifest.v1+json'})
        return Plan(status=401, headers={'WWW-Authenticate': 'Bearer realm="http://%s/token",service="r"' % slow.host})
    slow.plan = plan
    fails_in_time(lambda: client(slow, Credentials('u', 'p')).get_manifest('app', 'latest'))
