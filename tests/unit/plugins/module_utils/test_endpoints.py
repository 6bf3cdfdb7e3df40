# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Endpoints of the client: the catalog, the referrers API and the OCI-Subject answer, against a scripted server."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import OCI_INDEX, OCI_MANIFEST
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import next_link
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for

SUBJECT = 'sha256:' + 'a' * 64
SIGNATURE = 'application/vnd.example.signature'
INDEX = {'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
    {'mediaType': OCI_MANIFEST, 'digest': 'sha256:' + 'b' * 64, 'size': 321, 'artifactType': SIGNATURE}]}
JSON = {'Content-Type': 'application/json'}


def _client(server):
    return client_for(server)


# -- catalog ----------------------------------------------------------------------------------
def _catalog(request):
    query = parse_qs(urlsplit(request['path']).query)
    if urlsplit(request['path']).path != '/v2/_catalog':
        return 404, {}, b''
    if query.get('last') == ['b']:
        return 200, JSON, json.dumps({'repositories': ['c']}).encode()
    headers = dict(JSON, Link='</v2/_catalog?n=2&last=b>; rel="next"')
    return 200, headers, json.dumps({'repositories': ['a', 'b']}).encode()


def test_catalog_pages_follow_the_link(server):
    server.handler = _catalog
    client = _client(server)
    first = client.catalog_page(page_size=2)
    assert json.loads(first.body) == {'repositories': ['a', 'b']}
    assert first.url == 'http://%s/v2/_catalog?n=2' % server.host
    second = client.catalog_page(url=urljoin(first.url, next_link(first.link)))
    assert json.loads(second.body) == {'repositories': ['c']} and second.link is None
    assert client.catalog_page(page_size=2, last='b').body == second.body
    assert [r['path'] for r in server.requests] == ['/v2/_catalog?n=2', '/v2/_catalog?n=2&last=b',
                                                    '/v2/_catalog?n=2&last=b']


def test_catalog_asks_the_token_service_for_the_catalog_scope(server):
    def handler(request):
        if request['path'].startswith('/token'):
            return 200, JSON, json.dumps({'token': 'catalog-token'}).encode()
        if request['headers'].get('Authorization') != 'Bearer catalog-token':
            return 401, {'WWW-Authenticate': 'Bearer realm="http://%s/token",service="reg"' % server.host}, b''
        return _catalog(request)

    server.handler = handler
    page = _client(server).catalog_page()
    assert json.loads(page.body)['repositories'] == ['a', 'b']
    token_requests = [r for r in server.requests if r['path'].startswith('/token')]
    assert len(token_requests) == 1
    assert parse_qs(urlsplit(token_requests[0]['path']).query)['scope'] == ['registry:catalog:*']


def test_a_catalog_page_is_read_up_to_the_limit(server):
    server.handler = _catalog
    assert len(_client(server).catalog_page(limit=5).body) == 5


# -- referrers ----------------------------------------------------------------------------------
def test_referrers_page_returns_the_index_its_link_and_whether_it_was_filtered(server):
    link = '</v2/team/app/referrers/%s?page=2>; rel="next"' % SUBJECT
    answers = iter([(200, {'Content-Type': OCI_INDEX, 'Link': link}, json.dumps(INDEX).encode()),
                    (200, {'Content-Type': OCI_INDEX, 'OCI-Filters-Applied': 'artifactType'},
                     json.dumps(INDEX).encode())])
    server.handler = lambda request: next(answers)
    client = _client(server)
    first = client.referrers_page('team/app', SUBJECT)
    assert first.document == INDEX and first.link == link and not first.filtered
    assert first.url == 'http://%s/v2/team/app/referrers/%s' % (server.host, SUBJECT)
    assert client.referrers_page('team/app', SUBJECT, artifact_type=SIGNATURE).filtered
    assert [r['path'] for r in server.requests] == [
        '/v2/team/app/referrers/%s' % SUBJECT,
        '/v2/team/app/referrers/%s?artifactType=application%%2Fvnd.example.signature' % SUBJECT]
    assert server.requests[0]['headers']['Accept'] == OCI_INDEX


def test_referrers_page_follows_the_url_it_is_given(server):
    server.handler = lambda request: (200, {'Content-Type': OCI_INDEX}, json.dumps(INDEX).encode())
    client = _client(server)
    url = 'http://%s/v2/team/app/referrers/%s?page=2' % (server.host, SUBJECT)
    assert client.referrers_page('team/app', SUBJECT) is not None  # the first page: the scheme is known
    assert client.referrers_page('team/app', SUBJECT, url=url).url == url
    assert [r['path'] for r in server.requests] == [
        '/v2/team/app/referrers/%s' % SUBJECT, '/v2/team/app/referrers/%s?page=2' % SUBJECT]


def test_referrers_of_a_registry_without_the_api_is_none(server):
    server.handler = lambda request: (404, JSON, json.dumps({'errors': [{'code': 'NOT_FOUND', 'message': ''}]}).encode())
    assert _client(server).referrers_page('team/app', SUBJECT) is None


def test_referrers_refuse_what_is_not_an_index(server):
    server.handler = lambda request: (200, JSON, b'["not", "an", "index"]')
    with pytest.raises(IntegrityError) as excinfo:
        _client(server).referrers_page('team/app', SUBJECT)
    assert 'is not an image index' in excinfo.value.msg


def test_referrers_want_a_digest(server):
    with pytest.raises(InvalidInputError) as excinfo:
        _client(server).referrers_page('team/app', 'latest')
    assert 'Invalid subject digest' in excinfo.value.msg
    assert server.requests == []


def test_a_manifest_put_tells_the_oci_subject_header(server):
    answers = iter([(201, {'Docker-Content-Digest': SUBJECT, 'OCI-Subject': 'sha256:' + 'c' * 64}, b''),
                    (201, {'Docker-Content-Digest': SUBJECT}, b'')])
    server.handler = lambda request: next(answers)
    client = _client(server)
    assert client.put_manifest_subject('team/app', SUBJECT, b'{}', OCI_MANIFEST) == (SUBJECT, 'sha256:' + 'c' * 64)
    assert client.put_manifest_subject('team/app', SUBJECT, b'{}', OCI_MANIFEST) == (SUBJECT, None)
    assert [(r['method'], r['path'], r['headers']['Content-Type']) for r in server.requests] == [
        ('PUT', '/v2/team/app/manifests/%s' % SUBJECT, OCI_MANIFEST)] * 2
