# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog listing: paging through the shared pager, the pattern, junk entries, bounds and refusals."""

from __future__ import annotations

import json
import socket

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._catalog import (
    catalog_info,
    catalog_target,
    clean_repositories,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryHTTPError,
    UnsupportedError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for

JSON = {'Content-Type': 'application/json'}
NAMES = ('alpha', 'team/api', 'team/web', 'team/web-worker', 'zeta/x')


def _fill(registry, names=NAMES):
    for name in names:
        registry.repository(name).add(b'{"schemaVersion": 2, "name": "%s"}' % name.encode(), tags=['v1'])


def _catalog_paths(registry):
    return [r['path'] for r in registry.requests if r['path'].startswith('/v2/_catalog')]


def test_every_page_is_followed_and_counted(registry):
    _fill(registry)
    result = catalog_info(client_for(registry), catalog_target(registry.host), page_size=2).to_result()
    assert result == {'changed': False, 'registry': registry.host, 'repositories': list(NAMES), 'total': 5, 'pages': 3}
    assert _catalog_paths(registry) == ['/v2/_catalog?n=2', '/v2/_catalog?last=team/api&n=2',
                                        '/v2/_catalog?last=team/web-worker&n=2']


def test_without_page_size_the_registry_pages_as_it_likes(registry):
    _fill(registry)
    registry.configure(catalog_page_size=4)
    result = catalog_info(client_for(registry), catalog_target(registry.host)).to_result()
    assert result['repositories'] == list(NAMES) and result['pages'] == 2
    assert _catalog_paths(registry)[0] == '/v2/_catalog'


def test_pattern_filters_with_search_and_total_counts_all(registry):
    _fill(registry)
    result = catalog_info(client_for(registry), catalog_target(registry.host), pattern='^team/w').to_result()
    assert result['repositories'] == ['team/web', 'team/web-worker'] and result['total'] == 5
    result = catalog_info(client_for(registry), catalog_target(registry.host), pattern='web$').to_result()
    assert result['repositories'] == ['team/web']


def test_a_bad_pattern_or_page_size_fails_before_any_request(registry):
    with pytest.raises(InvalidInputError) as excinfo:
        catalog_info(client_for(registry), catalog_target(registry.host), pattern='(')
    assert "Invalid pattern '('" in excinfo.value.msg
    with pytest.raises(InvalidInputError):
        catalog_info(client_for(registry), catalog_target(registry.host), page_size=0)
    assert registry.requests == []


def test_junk_entries_and_duplicates_are_left_out():
    assert clean_repositories(['a', None, 5, 'A/b', 'a', 'x/', '/x', 'x//y', 'ok/name_1', 'x\n', 'y' * 256]) \
        == ['a', 'ok/name_1']


def test_junk_across_pages_is_left_out(registry):
    pages = {'/v2/_catalog': ({'Link': '</v2/_catalog?last=b&n=2>; rel="next"'}, [None, 'b', 'Bad', 'a']),
             '/v2/_catalog?last=b&n=2': ({}, ['b', 'c', 7])}

    def handler(request):
        headers, names = pages[request['path']]
        return 200, dict(JSON, **headers), json.dumps({'repositories': names}).encode()
    registry.handler = handler
    result = catalog_info(client_for(registry), catalog_target(registry.host)).to_result()
    assert result['repositories'] == ['b', 'a', 'c'] and result['pages'] == 2


def test_an_endless_link_chain_stops_at_the_page_bound(registry):
    registry.loopback.httpd.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handler(request):
        page = len(registry.requests)
        link = '</v2/_catalog?last=r%d&n=1000>; rel="next"' % page
        return 200, dict(JSON, Link=link), json.dumps({'repositories': ['r%d' % page]}).encode()
    registry.handler = handler
    with pytest.raises(RegistryHTTPError) as excinfo:
        catalog_info(client_for(registry), catalog_target(registry.host), page_size=1000)
    message = excinfo.value.msg
    assert 'The catalog of %s has more than 1000 pages' % registry.host in message
    assert 'If the registry really has that many repositories' in message
    assert excinfo.value.details == {'pages': 1000, 'max_pages': 1000} and len(registry.requests) == 1000


def test_a_looping_catalog_fails(registry):
    registry.handler = lambda request: (200, dict(JSON, Link='</v2/_catalog>; rel="next"'), b'{"repositories":["a"]}')
    with pytest.raises(RegistryHTTPError) as excinfo:
        catalog_info(client_for(registry), catalog_target(registry.host))
    assert 'The catalog of %s loops' % registry.host in excinfo.value.msg and len(registry.requests) == 1


def test_a_next_page_on_another_host_is_refused(registry, other_server):
    _fill(other_server)
    hostile = 'http://%s/v2/_catalog?last=a' % other_server.host
    registry.handler = lambda request: (200, dict(JSON, Link='<%s>; rel="next"' % hostile), b'{"repositories":["a"]}')
    with pytest.raises(IntegrityError) as excinfo:
        catalog_info(client_for(registry), catalog_target(registry.host))
    assert 'links its next page to another host (%s)' % other_server.host in excinfo.value.msg
    assert other_server.requests == []


@pytest.mark.parametrize('status, error_class', [(401, AuthenticationError), (403, AuthenticationError),
                                                 (404, NotFoundError), (405, UnsupportedError)])
def test_a_registry_without_a_catalog_is_told_apart(registry, status, error_class):
    _fill(registry)
    registry.configure(catalog_refusal=status)
    with pytest.raises(error_class) as excinfo:
        catalog_info(client_for(registry), catalog_target(registry.host))
    error = excinfo.value
    assert error.msg.startswith('The registry %s does not offer its catalog (GET /v2/_catalog) to anonymous access: '
                                % registry.host)
    assert 'imagelayers.registry.tags_info' in error.msg and str(status) in error.msg.split(': ', 1)[1]
    assert error.to_result()['status'] == status and error.to_result()['registry'] == registry.host
    assert len(_catalog_paths(registry)) == 1


def test_a_token_service_that_refuses_the_catalog_scope(registry):
    """As distribution's token server: a token for anyone, but without catalog access unless one is admin."""
    _fill(registry)
    challenge = {'WWW-Authenticate': 'Bearer realm="http://%s/token",service="reg"' % registry.host}

    def handler(request):
        if request['path'].startswith('/token'):
            return 200, JSON, json.dumps({'token': 'no-catalog-token'}).encode()
        if request['path'].startswith('/v2/_catalog'):
            return 401, dict(JSON, **challenge), b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        return registry.handle(request)
    registry.handler = handler
    client = client_for(registry, credentials=Credentials(username='dev', password='s3cret-pass'))
    with pytest.raises(AuthenticationError) as excinfo:
        catalog_info(client, catalog_target(registry.host))
    message = excinfo.value.msg
    assert 'does not offer its catalog (GET /v2/_catalog) to the credentials from ' in message
    assert 'did not grant registry:catalog:*' in message and 's3cret-pass' not in message
    assert excinfo.value.status == 401


def test_a_refusal_after_the_first_page_is_not_called_a_disabled_catalog(registry):
    def handler(request):
        if '?' in request['path']:
            return 404, JSON, b'{"errors":[{"code":"NOT_FOUND","message":"gone"}]}'
        return 200, dict(JSON, Link='</v2/_catalog?last=a>; rel="next"'), b'{"repositories":["a"]}'
    registry.handler = handler
    with pytest.raises(NotFoundError) as excinfo:
        catalog_info(client_for(registry), catalog_target(registry.host))
    assert 'does not offer its catalog' not in excinfo.value.msg and 'HTTP 404' in excinfo.value.msg


@pytest.mark.parametrize('value, registry, api_host', [
    ('registry.example.com', 'registry.example.com', 'registry.example.com'),
    ('localhost:5000', 'localhost:5000', 'localhost:5000'),
    ('[::1]:5000', '[::1]:5000', '[::1]:5000'),
    ('docker.io', 'docker.io', 'registry-1.docker.io'),
    ('index.docker.io', 'docker.io', 'registry-1.docker.io'),
])
def test_registry_names(value, registry, api_host):
    target = catalog_target(value)
    assert (target.registry, target.api_host) == (registry, api_host)


@pytest.mark.parametrize('value', ['', 'https://registry.example.com', 'registry.example.com/team', ' r.example',
                                   'r.example:0', 'bad_host', None])
def test_registry_names_refused(value):
    with pytest.raises(InvalidInputError):
        catalog_target(value)
