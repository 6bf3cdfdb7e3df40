# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where credentials may go: origins, scheme changes, token realms, loopback and proxies, masking.

The "HTTPS registry" of these tests is a real TLS server on 127.0.0.1 whose port also answers
plain HTTP (test_support.servers.DualServer), so a redirect to ``http://`` on the same host and port reaches a
server that records whatever it was sent.
"""

from __future__ import annotations

import json
import socket
import warnings

import pytest
import urllib3.exceptions

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    RegistryError,
    TransportError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._registry import scheme
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.api import RegistryAPI
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    basic_authorization,
    requiring_basic,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import DualServer, make_pki

BLOB = '/v2/team/app/blobs/sha256:' + 'a' * 64
PASSWORD = 'Pw-0rigin-7d1c'
BASIC = basic_authorization('ci', PASSWORD)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp('pki')))


@pytest.fixture
def dual(pki):
    with DualServer(pki[1], pki[2]) as served:
        yield served


def https_api(dual, pki, credentials=None, loopback=False, **options):
    """The API of an HTTPS registry on the dual server (loopback=False: never plain HTTP)."""
    options.setdefault('timeout', 5)
    options.setdefault('retries', 0)
    options.setdefault('ca_path', pki[0])
    opts = ConnectionConfig(credentials=credentials or Credentials('ci', PASSWORD), **options)
    return RegistryAPI(HTTPSession(sleep=lambda s: None), dual.host, opts, loopback=loopback)


def basic_registry(answer):
    """A handler: 401 Basic without credentials, else ``answer(request)``."""
    return requiring_basic('ci', PASSWORD, answer)


def sent_authorization(requests):
    return [r['headers']['Authorization'] for r in requests if 'Authorization' in r['headers']]


# -- item 2: scheme changes --------------------------------------------------
def test_redirect_from_https_to_plain_http_on_the_same_host_is_refused(dual, pki):
    def answer(request):
        if request['scheme'] == 'http':
            return 200, {}, b'blob-bytes'
        return 307, {'Location': 'http://%s%s' % (dual.host, request['path'])}, b''

    dual.handler = lambda r: basic_registry(answer)(r) if r['scheme'] == 'https' else answer(r)
    api = https_api(dual, pki)
    with pytest.raises(TransportError) as excinfo:
        api.request('GET', BLOB, scopes=['repository:team/app:pull'])
    assert dual.over('http') == []
    assert 'plain HTTP' in excinfo.value.msg and 'http://%s' % dual.host in excinfo.value.msg
    assert 'Traceback' not in excinfo.value.msg
    # The registry itself did get the credentials, over TLS.
    assert sent_authorization(dual.over('https')) == [BASIC]


def test_absolute_plain_http_url_of_an_https_registry_is_refused(dual, pki):
    """A tag list ``Link`` to ``http://`` on the registry's own host."""
    dual.handler = basic_registry(lambda r: (200, {'Content-Type': 'application/json'}, b'{"tags": []}'))
    api = https_api(dual, pki)
    api.request('GET', '/v2/team/app/tags/list', scopes=['repository:team/app:pull'])
    with pytest.raises(TransportError) as excinfo:
        api.request('GET', 'http://%s/v2/team/app/tags/list?last=a' % dual.host, scopes=['repository:team/app:pull'])
    assert dual.over('http') == []
    assert 'plain HTTP' in excinfo.value.msg
    assert excinfo.value.url == 'http://%s/v2/team/app/tags/list' % dual.host


def test_absolute_https_url_on_the_registry_keeps_the_credentials(dual, pki):
    dual.handler = basic_registry(lambda r: (200, {}, b'{}'))
    api = https_api(dual, pki)
    api.request('GET', '/v2/')
    api.request('GET', 'https://%s/v2/team/app/tags/list?last=a' % dual.host)
    assert sent_authorization(dual.requests) == [BASIC, BASIC]


def test_scheme_change_of_a_plain_loopback_registry_drops_the_credentials(dual, pki):
    """Plain HTTP is allowed for this loopback registry, but https://same-host is another origin."""
    def answer(request):
        if request['scheme'] == 'https':
            return 200, {}, b'from-tls'
        return 307, {'Location': 'https://%s/storage%s' % (dual.host, request['path'])}, b''

    dual.handler = lambda r: basic_registry(answer)(r) if r['scheme'] == 'http' else answer(r)
    api = https_api(dual, pki, loopback=True, ca_path=None, validate_certs=False)
    response = api.request('GET', BLOB)
    assert response.content == b'from-tls'
    assert api.scheme == 'http'
    assert sent_authorization(dual.over('https')) == []


def test_redirect_to_another_port_of_the_same_host_drops_the_credentials(dual, pki, server):
    server.handler = lambda r: (200, {}, b'other-port')
    dual.handler = basic_registry(lambda r: (307, {'Location': 'https://127.0.0.1:%d/x' % dual.port}, b'')
                                  if r['path'] == BLOB else (200, {}, b'same'))
    api = https_api(dual, pki)
    assert api.request('GET', BLOB).content == b'same'
    assert sent_authorization(dual.requests) == [BASIC, BASIC]


def test_a_plain_loopback_registry_may_redirect_to_plain_http_elsewhere(server, other_server):
    other_server.handler = lambda r: (200, {}, b'storage')
    server.handler = lambda r: (307, {'Location': 'http://%s/s?sig=1' % other_server.host}, b'')
    api = RegistryAPI(HTTPSession(), server.host, ConnectionConfig(retries=0, timeout=5), loopback=True)
    assert api.request('GET', BLOB).content == b'storage'


# -- item 3: token realms ----------------------------------------------------
def test_plain_http_realm_of_an_https_registry_gets_nothing(dual, pki):
    def handler(request):
        if request['scheme'] == 'http':
            return 200, {'Content-Type': 'application/json'}, b'{"token": "stolen"}'
        if request['headers'].get('Authorization') == 'Bearer stolen':
            return 200, {}, b'{}'
        return 401, {'WWW-Authenticate': 'Bearer realm="http://%s/token",service="s"' % dual.host}, b''

    dual.handler = handler
    with pytest.raises(AuthenticationError) as excinfo:
        https_api(dual, pki).request('GET', '/v2/team/app/manifests/v1', scopes=['repository:team/app:pull'])
    assert dual.over('http') == []
    assert 'http://%s/token' % dual.host in excinfo.value.msg and 'plain HTTP' in excinfo.value.msg


def test_realm_redirecting_to_plain_http_gets_nothing(dual, pki):
    def handler(request):
        if request['scheme'] == 'http':
            return 200, {'Content-Type': 'application/json'}, b'{"token": "stolen"}'
        if request['path'].startswith('/token'):
            return 302, {'Location': 'http://%s%s' % (dual.host, request['path'])}, b''
        return 401, {'WWW-Authenticate': 'Bearer realm="https://%s/token",service="s"' % dual.host}, b''

    dual.handler = handler
    with pytest.raises(RegistryError) as excinfo:
        https_api(dual, pki).request('GET', '/v2/team/app/manifests/v1', scopes=['repository:team/app:pull'])
    assert dual.over('http') == []
    assert 'plain HTTP' in excinfo.value.msg


def test_https_realm_of_an_https_registry_gets_the_credentials(dual, pki):
    def handler(request):
        if request['path'].startswith('/token'):
            assert request['headers'].get('Authorization') == BASIC
            return 200, {'Content-Type': 'application/json'}, b'{"token": "tok"}'
        if request['headers'].get('Authorization') == 'Bearer tok':
            return 200, {}, b'{}'
        return 401, {'WWW-Authenticate': 'Bearer realm="https://%s/token",service="s"' % dual.host}, b''

    dual.handler = handler
    https_api(dual, pki).request('GET', '/v2/team/app/manifests/v1', scopes=['repository:team/app:pull'])
    assert [r['scheme'] for r in dual.requests] == ['https'] * 3


# -- item 12: secrets echoed by a registry ----------------------------------
def _echo(request, status=403):
    header = request['headers'].get('Authorization', '')
    body = {'errors': [{'code': 'DENIED', 'message': 'you sent %s' % header,
                        'detail': {'authorization': header, 'nested': [header.split(' ', 1)[-1]]}}]}
    return status, {'Content-Type': 'application/json'}, json.dumps(body).encode()


def _assert_masked(error, *secrets):
    text = error.msg + json.dumps(error.to_result())
    for secret in secrets:
        assert secret not in text
    assert '********' in text


def test_echoed_basic_authorization_is_masked(server):
    server.handler = basic_registry(_echo)
    api = RegistryAPI(HTTPSession(), server.host, ConnectionConfig(credentials=Credentials('ci', PASSWORD),
                                                                   retries=0, timeout=5), loopback=True)
    with pytest.raises(AuthenticationError) as excinfo:
        api.request('GET', '/v2/team/app/manifests/v1')
    _assert_masked(excinfo.value, BASIC.split(' ')[1], PASSWORD)


def test_echoed_bearer_token_from_the_token_service_is_masked(server):
    realm = 'http://%s/token' % server.host

    def handler(request):
        if request['path'].startswith('/token'):
            return 200, {'Content-Type': 'application/json'}, b'{"token": "Issued-Tok-31f6e"}'
        if request['headers'].get('Authorization', '').startswith('Bearer '):
            return _echo(request, status=400)
        return 401, {'WWW-Authenticate': 'Bearer realm="%s",service="s"' % realm}, b''

    server.handler = handler
    api = RegistryAPI(HTTPSession(), server.host, ConnectionConfig(retries=0, timeout=5), loopback=True)
    with pytest.raises(RegistryError) as excinfo:
        api.request('GET', '/v2/team/app/manifests/v1', scopes=['repository:team/app:pull'])
    _assert_masked(excinfo.value, 'Issued-Tok-31f6e')


def test_token_service_echoing_the_credentials_is_masked(server):
    realm = 'http://%s/token' % server.host

    def handler(request):
        if request['path'].startswith('/token'):
            return _echo(request, status=401)
        return 401, {'WWW-Authenticate': 'Bearer realm="%s",service="s"' % realm}, b''

    server.handler = handler
    api = RegistryAPI(HTTPSession(), server.host, ConnectionConfig(credentials=Credentials('ci', PASSWORD),
                                                                   retries=0, timeout=5), loopback=True)
    with pytest.raises(AuthenticationError) as excinfo:
        api.request('GET', '/v2/team/app/manifests/v1', scopes=['repository:team/app:pull'])
    _assert_masked(excinfo.value, BASIC.split(' ')[1], PASSWORD)
    assert 'DENIED' in excinfo.value.msg  # what the token service said is kept, masked


def test_echoed_option_token_is_masked_in_the_reason_too(dual, pki):
    dual.handler = lambda r: (400, {'Content-Type': 'application/json'},
                              json.dumps({'errors': [{'code': 'X', 'message': r['headers']['Authorization']}]}).encode())
    api = https_api(dual, pki, credentials=Credentials(token='Opt-Token-88a1'))
    with pytest.raises(RegistryError) as excinfo:
        api.request('GET', '/v2/')
    _assert_masked(excinfo.value, 'Opt-Token-88a1')


# -- item 13: no plain fallback once a token or CA is given -----------------
def test_token_never_goes_to_a_plain_loopback_registry(server):
    server.handler = lambda r: (200, {}, b'{}')
    options = ConnectionConfig(credentials=Credentials(token='Plain-Tok-4b2'), retries=0, timeout=5)
    api = RegistryAPI(HTTPSession(), server.host, options, loopback=True)
    with pytest.raises(TransportError) as excinfo:
        api.request('GET', '/v2/')
    # At most a probe without credentials (to tell a TLS server from a plain one) came over plain HTTP.
    assert sent_authorization(server.requests) == []
    assert [r['path'] for r in server.requests] == ['/v2/']
    assert 'TLS' in excinfo.value.msg and 'token' in excinfo.value.msg
    assert excinfo.value.url.startswith('https://')


def test_ca_path_means_tls_only_for_a_loopback_registry(server, pki):
    server.handler = basic_registry(lambda r: (200, {}, b'{}'))
    options = ConnectionConfig(credentials=Credentials('ci', PASSWORD), ca_path=pki[0], retries=0, timeout=5)
    api = RegistryAPI(HTTPSession(), server.host, options, loopback=True)
    with pytest.raises(TransportError) as excinfo:
        api.request('GET', '/v2/')
    assert sent_authorization(server.requests) == [] and len(server.requests) <= 1
    assert 'ca_path' in excinfo.value.msg


def test_token_and_a_tls_loopback_registry_work(dual, pki):
    dual.handler = lambda r: (200, {}, b'{}') if r['headers'].get('Authorization') == 'Bearer t' else (401, {}, b'')
    api = https_api(dual, pki, credentials=Credentials(token='t'), loopback=True)
    api.request('GET', '/v2/')
    assert api.scheme == 'https' and dual.over('http') == []


# -- item 14: loopback by address, never through a proxy ---------------------
def _fake_resolver(table):
    def getaddrinfo(host, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
        return [(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_STREAM, 6, '', (a, 0))
                for a in table[host]]
    return getaddrinfo


def test_loopback_is_decided_by_the_resolved_addresses(monkeypatch):
    monkeypatch.setattr(scheme.socket, 'getaddrinfo', _fake_resolver({
        'localhost': ['127.0.0.1', '::1'], 'mirror.internal': ['127.0.0.2'],
        'split.example': ['127.0.0.1', '10.1.2.3'], 'registry.example': ['93.184.216.34']}))
    is_loopback_host = scheme.is_loopback_host
    assert is_loopback_host('localhost') and is_loopback_host('mirror.internal')
    assert not is_loopback_host('registry.localhost')  # not resolvable: not trusted on its name alone
    assert not is_loopback_host('split.example') and not is_loopback_host('registry.example')
    assert is_loopback_host('127.0.0.1') and is_loopback_host('::1') and not is_loopback_host('10.0.0.1')


def test_an_unresolved_localhost_name_is_https_only(monkeypatch):
    monkeypatch.setattr(scheme.socket, 'getaddrinfo', _fake_resolver({}))
    client = RegistryClient.for_reference(HTTPSession(), ImageReference.parse('registry.localhost:5000/app:v1'),
                                          ConnectionConfig())
    assert client.api.scheme == 'https'


def test_a_plain_loopback_registry_is_never_reached_through_a_proxy(server, other_server, monkeypatch):
    for name in ('no_proxy', 'NO_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('http_proxy', 'http://%s' % other_server.host)
    monkeypatch.setenv('HTTP_PROXY', 'http://%s' % other_server.host)
    other_server.handler = lambda r: (200, {}, b'{}')
    server.handler = basic_registry(lambda r: (200, {}, b'{}'))
    options = ConnectionConfig(credentials=Credentials('ci', PASSWORD), retries=0, timeout=5)
    client = RegistryClient.for_reference(HTTPSession(), ImageReference.parse(server.host + '/team/app:v1'), options)
    client.api.request('GET', '/v2/')
    assert other_server.requests == []
    assert sent_authorization(server.requests) == [BASIC]


# -- item 15a: the scheme actually used, in errors ---------------------------
def test_errors_of_a_plain_loopback_registry_show_http(server):
    server.handler = lambda r: (404, {}, b'')
    api = RegistryAPI(HTTPSession(), server.host, ConnectionConfig(retries=0, timeout=5), loopback=True)
    with pytest.raises(NotFoundError) as excinfo:
        api.request('GET', '/v2/team/app/manifests/v1')
    assert excinfo.value.url == 'http://%s/v2/team/app/manifests/v1' % server.host
    assert 'https://' not in excinfo.value.msg


def test_integrity_errors_of_a_plain_loopback_registry_show_http(server):
    server.handler = lambda r: (200, {'Content-Type': 'application/vnd.oci.image.manifest.v1+json'}, b'{}')
    client = RegistryClient(HTTPSession(), server.host, ConnectionConfig(retries=0, timeout=5), loopback=True)
    with pytest.raises(IntegrityError) as excinfo:
        client.get_manifest('team/app', 'sha256:' + 'b' * 64)
    assert excinfo.value.url.startswith('http://%s/' % server.host)


# -- validate_certs: false ------------------------------------------------------------
def test_not_verifying_silences_its_own_requests_only(dual, pki):
    dual.handler = lambda request: (200, {}, b'{}')
    api = https_api(dual, pki, credentials=Credentials(), validate_certs=False, ca_path=None)
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        during = list(warnings.filters)
        api.request('GET', '/v2/')
        api.request('GET', '/v2/')
        assert warnings.filters == during  # the request's filter is gone once it is over
        warnings.warn('a warning of somebody else', urllib3.exceptions.InsecureRequestWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ['a warning of somebody else']
    assert warnings.filters == before
    assert len(dual.over('https')) == 2
