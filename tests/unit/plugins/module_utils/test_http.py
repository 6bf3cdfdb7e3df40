# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    NotFoundError,
    RegistryHTTPError,
    TransportError,
    redact_url,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.api import RegistryAPI
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials, parse_challenges
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession, parse_retry_after
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    basic_authorization,
    requiring_basic,
)

SCOPE = 'repository:team/app:pull'


def make_api(server, credentials=None, retries=3, sleeps=None):
    recorded = sleeps if sleeps is not None else []
    http = HTTPSession(sleep=recorded.append)
    options = ConnectionConfig(credentials=credentials or Credentials(), timeout=5, retries=retries)
    return RegistryAPI(http, server.host, options, loopback=True)


def sequence(*answers):
    answers = list(answers)

    def handler(request):
        return answers.pop(0) if len(answers) > 1 else answers[0]
    return handler


def test_plain_http_on_loopback_is_detected_once(server):
    server.handler = lambda r: (200, {}, b'{}')
    api = make_api(server)
    api.request('GET', '/v2/')
    api.request('GET', '/v2/')
    assert api.scheme == 'http'
    assert len(server.requests) == 2


def test_non_loopback_is_https_only(server):
    api = RegistryAPI(HTTPSession(), 'registry.example.com', ConnectionConfig())
    assert api.scheme == 'https'
    assert api.url('/v2/') == 'https://registry.example.com/v2/'


def test_retries_5xx_then_succeeds(server):
    sleeps = []
    server.handler = sequence((503, {}, b''), (502, {}, b''), (200, {}, b'ok'))
    api = make_api(server, sleeps=sleeps)
    response = api.request('GET', '/v2/')
    assert response.status_code == 200
    assert len(server.requests) == 3
    assert len(sleeps) == 2


def test_retry_after_seconds_is_honoured(server):
    sleeps = []
    server.handler = sequence((429, {'Retry-After': '7'}, b''), (200, {}, b''))
    make_api(server, sleeps=sleeps).request('GET', '/v2/')
    assert sleeps == [7.0]


def test_retry_after_is_capped(server):
    sleeps = []
    server.handler = sequence((429, {'Retry-After': '86400'}, b''), (200, {}, b''))
    make_api(server, sleeps=sleeps).request('GET', '/v2/')
    assert sleeps == [30.0]


def test_retry_after_http_date():
    assert parse_retry_after('Wed, 21 Oct 2015 07:28:00 GMT', now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after('Wed, 21 Oct 2015 07:28:00 GMT', now=1445412490.0) == 0.0
    assert parse_retry_after('soon') is None
    assert parse_retry_after(None) is None


def test_retries_are_bounded_and_reported(server):
    server.handler = lambda r: (503, {'Content-Type': 'application/json'},
                                json.dumps({'errors': [{'code': 'UNAVAILABLE', 'message': 'busy'}]}).encode())
    with pytest.raises(RegistryHTTPError) as excinfo:
        make_api(server, retries=2).request('GET', '/v2/x/manifests/y')
    assert len(server.requests) == 3
    assert excinfo.value.attempts == 3
    assert 'after 3 attempts' in excinfo.value.msg
    assert excinfo.value.codes == ['UNAVAILABLE']


def test_zero_retries(server):
    server.handler = lambda r: (500, {}, b'')
    with pytest.raises(RegistryHTTPError):
        make_api(server, retries=0).request('GET', '/v2/')
    assert len(server.requests) == 1


def test_error_body_is_decoded(server):
    body = json.dumps({'errors': [{'code': 'MANIFEST_UNKNOWN', 'message': 'manifest unknown',
                                   'detail': {'Tag': 'nope'}}]}).encode()
    server.handler = lambda r: (404, {'Content-Type': 'application/json'}, body)
    with pytest.raises(NotFoundError) as excinfo:
        make_api(server).request('GET', '/v2/team/app/manifests/nope')
    error = excinfo.value
    assert error.status == 404
    assert error.codes == ['MANIFEST_UNKNOWN']
    assert 'MANIFEST_UNKNOWN: manifest unknown' in error.msg
    assert error.to_result()['registry_errors'][0]['detail'] == {'Tag': 'nope'}


def test_bearer_flow_with_basic_credentials_and_token_cache(server):
    realm = 'http://%s/token' % server.host

    def handler(request):
        if request['path'].startswith('/token'):
            assert request['headers']['Authorization'] == 'Basic ' + base64.b64encode(b'ci:s3cret').decode()
            return 200, {'Content-Type': 'application/json'}, json.dumps({'access_token': 'tok123'}).encode()
        if request['headers'].get('Authorization') == 'Bearer tok123':
            return 200, {}, b'{}'
        return 401, {'WWW-Authenticate': 'Bearer realm="%s",service="reg.test",scope="%s"' % (realm, SCOPE)}, b''

    server.handler = handler
    api = make_api(server, credentials=Credentials('ci', 's3cret'))
    api.request('GET', '/v2/team/app/manifests/1', scopes=[SCOPE])
    api.request('GET', '/v2/team/app/manifests/2', scopes=[SCOPE])
    paths = [r['path'] for r in server.requests]
    assert paths[0] == '/v2/team/app/manifests/1'
    assert paths[1].startswith('/token?')
    assert 'service=reg.test' in paths[1] and 'scope=repository%3Ateam%2Fapp%3Apull' in paths[1]
    assert paths[2:] == ['/v2/team/app/manifests/1', '/v2/team/app/manifests/2']


def test_new_scope_gets_a_new_token_proactively(server):
    realm = 'http://%s/token' % server.host
    issued = []

    def handler(request):
        if request['path'].startswith('/token'):
            issued.append(request['path'])
            return 200, {}, json.dumps({'token': 'tok%d' % len(issued)}).encode()
        if request['headers'].get('Authorization', '').startswith('Bearer tok'):
            return 200, {}, b'{}'
        return 401, {'WWW-Authenticate': 'Bearer realm="%s",service="svc"' % realm}, b''

    server.handler = handler
    api = make_api(server)
    api.request('GET', '/v2/a/manifests/1', scopes=['repository:a:pull'])
    api.request('GET', '/v2/b/manifests/1', scopes=['repository:b:pull'])
    # One 401 to learn the realm; the second scope's token is fetched before its request.
    assert [r['path'].split('?')[0] for r in server.requests] == [
        '/v2/a/manifests/1', '/token', '/v2/a/manifests/1', '/token', '/v2/b/manifests/1']


def test_401_without_challenge_is_a_clear_error(server):
    server.handler = lambda r: (401, {}, b'')
    with pytest.raises(AuthenticationError) as excinfo:
        make_api(server).request('GET', '/v2/x/manifests/y')
    assert 'without a WWW-Authenticate challenge' in excinfo.value.msg


def test_basic_challenge_without_credentials(server):
    server.handler = lambda r: (401, {'WWW-Authenticate': 'Basic realm="registry"'}, b'')
    with pytest.raises(AuthenticationError) as excinfo:
        make_api(server).request('GET', '/v2/')
    assert 'requires a username and password' in excinfo.value.msg


def test_wrong_basic_password_is_reported_not_looped(server):
    server.handler = lambda r: (401, {'WWW-Authenticate': 'Basic realm="registry"'}, b'')
    with pytest.raises(AuthenticationError) as excinfo:
        make_api(server, credentials=Credentials('ci', 'hunter2')).request('GET', '/v2/')
    assert len(server.requests) == 2
    assert 'refused the username and password' in excinfo.value.msg
    assert 'hunter2' not in excinfo.value.msg


def test_token_refused_by_token_service(server):
    realm = 'http://%s/token' % server.host

    def handler(request):
        if request['path'].startswith('/token'):
            return 401, {}, b''
        return 401, {'WWW-Authenticate': 'Bearer realm="%s",service="svc"' % realm}, b''

    server.handler = handler
    with pytest.raises(AuthenticationError) as excinfo:
        make_api(server, credentials=Credentials('ci', 'hunter2')).request('GET', '/v2/', scopes=[SCOPE])
    assert 'refused the given credentials' in excinfo.value.msg
    assert 'hunter2' not in excinfo.value.msg


BASIC = basic_authorization('ci', 's3cret')


def basic_only(answer):
    """A handler: 401 with a Basic challenge unless the request carries ci:s3cret."""
    return requiring_basic('ci', 's3cret', answer)


def test_redirect_to_other_host_drops_authorization(server, other_server):
    other_server.handler = lambda r: (200, {}, b'blob-bytes')
    server.handler = basic_only(lambda r: (
        307, {'Location': 'http://%s/storage/blob?X-Amz-Signature=secret' % other_server.host}, b''))
    api = make_api(server, credentials=Credentials('ci', 's3cret'))
    response = api.request('GET', '/v2/a/blobs/sha256:' + 'a' * 64, scopes=['repository:a:pull'])
    assert response.content == b'blob-bytes'
    assert server.requests[1]['headers']['Authorization'] == BASIC
    assert 'Authorization' not in other_server.requests[0]['headers']


def test_relative_redirect_on_same_host_keeps_authorization(server):
    def answer(request):
        if request['path'].startswith('/elsewhere'):
            return 200, {}, b'here'
        return 307, {'Location': '/elsewhere'}, b''

    server.handler = basic_only(answer)
    response = make_api(server, credentials=Credentials('ci', 's3cret')).request('GET', '/v2/x')
    assert response.content == b'here'
    assert server.requests[2]['headers']['Authorization'] == BASIC


def test_redirect_loop_is_bounded(server):
    server.handler = lambda r: (302, {'Location': '/again'}, b'')
    with pytest.raises(TransportError) as excinfo:
        make_api(server).request('GET', '/v2/x')
    assert 'redirects' in excinfo.value.msg
    assert len(server.requests) == 6


def test_connection_refused_is_retried_then_reported():
    sleeps = []
    http = HTTPSession(sleep=sleeps.append)
    api = RegistryAPI(http, '127.0.0.1:9', ConnectionConfig(timeout=2, retries=2), loopback=False)
    api.scheme = 'http'
    with pytest.raises(TransportError) as excinfo:
        api.request('GET', '/v2/')
    assert excinfo.value.attempts == 3
    assert len(sleeps) == 2
    assert 'failed after 3 attempts' in excinfo.value.msg


def test_redact_url():
    assert redact_url('https://user:pw@host:5000/v2/x?sig=secret#frag') == 'https://host:5000/v2/x'


def test_parse_challenges():
    challenges = parse_challenges(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push", Basic realm="x"')
    assert challenges[0] == ('bearer', {'realm': 'https://auth.example/token', 'service': 'registry.example',
                                        'scope': 'repository:a/b:pull,push'})
    assert challenges[1] == ('basic', {'realm': 'x'})
    assert parse_challenges('') == []
    assert parse_challenges('Basic') == [('basic', {})]


def test_loopback_tries_plain_http_first_and_keeps_json_400(server):
    server.handler = lambda r: (400, {'Content-Type': 'application/json'},
                                b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}')
    api = make_api(server)
    with pytest.raises(RegistryHTTPError) as excinfo:
        api.request('GET', '/v2/x/manifests/y')
    assert api.scheme == 'http'
    assert len(server.requests) == 1
    assert excinfo.value.codes == ['DIGEST_INVALID']


def test_loopback_tls_server_answer_switches_to_https(server):
    # What a Go TLS server answers a plain HTTP request with.
    server.handler = lambda r: (400, {}, b'Client sent an HTTP request to an HTTPS server.\n')
    api = make_api(server, retries=0)
    with pytest.raises(TransportError):
        api.request('GET', '/v2/')  # the scripted server is not really TLS
    assert api.scheme == 'https'
    assert len(server.requests) == 1


def test_loopback_head_400_without_body_is_asked_again_over_tls_and_kept_when_plain(server):
    # A TLS server's answer to a plain HEAD carries no body that would say "HTTPS": the module asks
    # again over TLS. This scripted server speaks plain HTTP only, so its own 400 is the answer.
    server.handler = lambda r: (400, {}, b'')
    api = make_api(server, retries=0)
    with pytest.raises(RegistryHTTPError) as excinfo:
        api.request('HEAD', '/v2/x/manifests/y')
    assert excinfo.value.status == 400
    assert api.scheme == 'http'
    assert [r['method'] for r in server.requests] == ['HEAD']


def test_loopback_with_token_never_sends_it_over_plain_http(server):
    server.handler = lambda r: (200, {}, b'{}')
    api = make_api(server, credentials=Credentials(token='secret-token'), retries=0)
    with pytest.raises(TransportError) as excinfo:
        api.request('GET', '/v2/')
    # https only: the plain server saw a TLS handshake, never a request with the token.
    assert api.scheme == 'https'
    assert [r['headers'].get('Authorization') for r in server.requests] == [None]  # the probe only
    assert 'not asked again over plain HTTP because token is given' in excinfo.value.msg


def test_proxy_environment_is_honoured(server, monkeypatch):
    monkeypatch.setenv('http_proxy', 'http://%s' % server.host)
    monkeypatch.delenv('no_proxy', raising=False)
    monkeypatch.delenv('NO_PROXY', raising=False)
    server.handler = lambda r: (200, {}, b'{}')
    api = RegistryAPI(HTTPSession(), 'registry.example.invalid:5000', ConnectionConfig(retries=0))
    api.scheme = 'http'
    api.request('GET', '/v2/')
    # A forward proxy receives the absolute URL.
    assert server.requests[0]['path'] == 'http://registry.example.invalid:5000/v2/'


def test_no_proxy_is_honoured(server, monkeypatch):
    monkeypatch.setenv('http_proxy', 'http://127.0.0.1:9')
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    server.handler = lambda r: (200, {}, b'{}')
    make_api(server).request('GET', '/v2/')
    assert server.requests[0]['path'] == '/v2/'


def test_requests_ca_bundle_is_used_for_verification(monkeypatch):
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry import transport
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/etc/ssl/private-ca.pem')
    assert transport._environment_verify(True) == '/etc/ssl/private-ca.pem'
    assert transport._environment_verify('/explicit/ca.pem') == '/explicit/ca.pem'
    assert transport._environment_verify(False) is False


def test_netrc_never_replaces_the_authorization_header(server, tmp_path, monkeypatch):
    netrc = tmp_path / '.netrc'
    netrc.write_text('machine 127.0.0.1 login netrc-user password netrc-password\n')
    netrc.chmod(0o600)
    monkeypatch.setenv('NETRC', str(netrc))
    server.handler = basic_only(lambda r: (200, {}, b'{}'))
    make_api(server, credentials=Credentials('ci', 's3cret')).request('GET', '/v2/')
    assert server.requests[1]['headers']['Authorization'] == BASIC
