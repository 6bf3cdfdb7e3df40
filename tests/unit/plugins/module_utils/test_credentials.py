# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stored credentials (config.json, credential helpers, auth.json) and the identity-token flow."""

from __future__ import annotations

import base64
import json
import os
import stat
from urllib.parse import parse_qs

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._credentials import (
    lookup,
    normalize_key,
    server_url,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    InvalidInputError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.api import RegistryAPI
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def env(tmp_path):
    """An environment with its own DOCKER_CONFIG, XDG_RUNTIME_DIR and a bin dir on PATH."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    (tmp_path / 'docker').mkdir()
    (tmp_path / 'run' / 'containers').mkdir(parents=True)
    return {
        'DOCKER_CONFIG': str(tmp_path / 'docker'),
        'XDG_RUNTIME_DIR': str(tmp_path / 'run'),
        'PATH': str(bindir) + os.pathsep + os.environ.get('PATH', ''),
        'HOME': str(tmp_path),
        '_bin': str(bindir),
        '_log': str(tmp_path / 'helper.log'),
    }


def write_docker(env, config):
    with open(os.path.join(env['DOCKER_CONFIG'], 'config.json'), 'w') as f:
        json.dump(config, f)


def write_podman(env, config):
    with open(os.path.join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json'), 'w') as f:
        json.dump(config, f)


def add_helper(env, name, answers, exit_code=0, stderr=''):
    """A docker-credential-NAME that logs its stdin and prints answers[server url] (or not-found)."""
    path = os.path.join(env['_bin'], 'docker-credential-' + name)
    script = '''#!/usr/bin/env python3
import json, sys
url = sys.stdin.read()
with open(%r, 'a') as log:
    log.write(json.dumps({'argv': sys.argv[1:], 'url': url}) + '\\n')
answers = %r
if %d:
    sys.stderr.write(%r)
    sys.exit(%d)
if url not in answers:
    print('credentials not found in native keychain')
    sys.exit(1)
print(json.dumps(answers[url]))
''' % (env['_log'], answers, exit_code, stderr, exit_code)
    with open(path, 'w') as f:
        f.write(script)
    os.chmod(path, stat.S_IRWXU)


def helper_calls(env):
    if not os.path.exists(env['_log']):
        return []
    with open(env['_log']) as f:
        return [json.loads(line) for line in f]


def test_nothing_stored_is_anonymous(env):
    assert lookup('registry.example.com', 'team/app', environ=env) is None


def test_auths_base64_auth(env):
    write_docker(env, {'auths': {'registry.example.com': {'auth': b64('ci:s3cr:et')}}})
    creds = lookup('registry.example.com', 'team/app', environ=env)
    assert (creds.username, creds.password) == ('ci', 's3cr:et')
    assert 'config.json' in creds.source and 's3cr' not in creds.source


def test_auths_username_password_and_url_keys(env):
    write_docker(env, {'auths': {'https://registry.example.com:5000/v2/': {'username': 'u', 'password': 'p'}}})
    creds = lookup('registry.example.com:5000', 'app', environ=env)
    assert (creds.username, creds.password) == ('u', 'p')
    assert lookup('registry.example.com', 'app', environ=env) is None  # another port is another registry


def test_identity_token_and_registry_token(env):
    write_docker(env, {'auths': {
        'a.example.com': {'auth': b64('ci:'), 'identitytoken': 'refresh-me'},
        'b.example.com': {'registrytoken': 'bearer-me'}}})
    a = lookup('a.example.com', 'x', environ=env)
    assert a.identity_token == 'refresh-me' and a.password is None and not a.has_basic
    b = lookup('b.example.com', 'x', environ=env)
    assert b.token == 'bearer-me' and b.username is None


@pytest.mark.parametrize('key', ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io',
                                 'registry-1.docker.io', 'https://registry-1.docker.io'])
def test_docker_hub_aliases(env, key):
    write_docker(env, {'auths': {key: {'auth': b64('hubuser:hubpass')}}})
    creds = lookup('docker.io', 'library/alpine', environ=env)
    assert creds.username == 'hubuser'


def test_cred_helper_per_host_beats_store_and_auths(env):
    add_helper(env, 'per', {'registry.example.com': {'Username': 'from-helper', 'Secret': 'hs'}})
    add_helper(env, 'store', {'registry.example.com': {'Username': 'from-store', 'Secret': 'ss'}})
    write_docker(env, {'credHelpers': {'registry.example.com': 'per'}, 'credsStore': 'store',
                       'auths': {'registry.example.com': {'auth': b64('from-auths:x')}}})
    creds = lookup('registry.example.com', 'app', environ=env)
    assert (creds.username, creds.password) == ('from-helper', 'hs')
    assert 'docker-credential-per' in creds.source
    assert helper_calls(env) == [{'argv': ['get'], 'url': 'registry.example.com'}]


def test_creds_store_is_the_default_and_hub_gets_the_index_url(env):
    add_helper(env, 'store', {'https://index.docker.io/v1/': {'Username': '<token>', 'Secret': 'idtok'}})
    write_docker(env, {'credsStore': 'store', 'auths': {'https://index.docker.io/v1/': {}}})
    creds = lookup('docker.io', 'library/alpine', environ=env)
    assert creds.identity_token == 'idtok' and creds.username is None and creds.password is None
    assert helper_calls(env)[0]['url'] == 'https://index.docker.io/v1/'


def test_helper_not_found_falls_back_to_auths_then_podman(env):
    add_helper(env, 'store', {})
    write_docker(env, {'credsStore': 'store', 'auths': {'other.example.com': {'auth': b64('o:p')}}})
    write_podman(env, {'auths': {'registry.example.com': {'auth': b64('podman:pw')}}})
    creds = lookup('registry.example.com', 'app', environ=env)
    assert creds.username == 'podman' and 'auth.json' in creds.source


def test_docker_config_wins_over_podman(env):
    write_docker(env, {'auths': {'registry.example.com': {'auth': b64('docker:pw')}}})
    write_podman(env, {'auths': {'registry.example.com': {'auth': b64('podman:pw')}}})
    assert lookup('registry.example.com', 'app', environ=env).username == 'docker'


def test_registry_auth_file_replaces_xdg_runtime_dir(env, tmp_path):
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'auths': {'registry.example.com': {'auth': b64('fromenv:pw')}}}))
    write_podman(env, {'auths': {'registry.example.com': {'auth': b64('xdg:pw')}}})
    env['REGISTRY_AUTH_FILE'] = str(other)
    assert lookup('registry.example.com', 'app', environ=env).username == 'fromenv'


def test_podman_repository_scoped_keys_longest_match_wins(env):
    write_podman(env, {'auths': {'quay.io': {'auth': b64('org:pw')},
                                 'quay.io/team': {'auth': b64('team:pw')},
                                 'quay.io/team/app': {'auth': b64('app:pw')}}})
    assert lookup('quay.io', 'team/app', environ=env).username == 'app'
    assert lookup('quay.io', 'team/other', environ=env).username == 'team'
    assert lookup('quay.io', 'teamx/app', environ=env).username == 'org'


def test_config_path_is_the_only_file_read(env, tmp_path):
    write_docker(env, {'auths': {'registry.example.com': {'auth': b64('docker:pw')}}})
    only = tmp_path / 'only.json'
    only.write_text(json.dumps({'auths': {}}))
    assert lookup('registry.example.com', 'app', config_path=str(only), environ=env) is None


@pytest.mark.parametrize('content, words', [
    ('{not json', 'not valid JSON'),
    ('[]', 'must hold a JSON object'),
    ('{"auths": []}', '"auths"'),
    ('{"auths": {"registry.example.com": {"auth": "bm9jb2xvbg=="}}}', 'not base64 of'),
    ('{"credsStore": "../../bin/sh"}', 'Invalid credential helper name'),
    ('{"credsStore": "missing"}', 'docker-credential-missing'),
])
def test_broken_config_is_one_clear_error(env, content, words):
    with open(os.path.join(env['DOCKER_CONFIG'], 'config.json'), 'w') as f:
        f.write(content)
    with pytest.raises(InvalidInputError) as excinfo:
        lookup('registry.example.com', 'app', environ=env)
    assert words in excinfo.value.msg and 'config.json' in excinfo.value.msg


def test_unreadable_config_and_missing_config_path(env, tmp_path):
    with pytest.raises(InvalidInputError) as excinfo:
        lookup('r.example.com', 'a', config_path=str(tmp_path / 'nope.json'), environ=env)
    assert 'does not exist' in excinfo.value.msg
    with pytest.raises(InvalidInputError) as excinfo:
        lookup('r.example.com', 'a', config_path=str(tmp_path), environ=env)
    assert 'is a directory' in excinfo.value.msg
    if os.geteuid() != 0:  # root reads anything
        path = os.path.join(env['DOCKER_CONFIG'], 'config.json')
        write_docker(env, {})
        os.chmod(path, 0)
        with pytest.raises(InvalidInputError):
            lookup('r.example.com', 'a', environ=env)


def test_failing_helper_says_which_and_why_without_secrets(env):
    add_helper(env, 'broken', {}, exit_code=3, stderr='keychain locked')
    write_docker(env, {'credsStore': 'broken'})
    with pytest.raises(AuthenticationError) as excinfo:
        lookup('registry.example.com', 'app', environ=env)
    assert 'docker-credential-broken' in excinfo.value.msg and 'exit code 3' in excinfo.value.msg
    assert 'keychain locked' in excinfo.value.msg


def test_helper_answering_garbage(env):
    path = os.path.join(env['_bin'], 'docker-credential-garbage')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\necho "Secret: hunter2"\n')
    os.chmod(path, stat.S_IRWXU)
    write_docker(env, {'credsStore': 'garbage'})
    with pytest.raises(AuthenticationError) as excinfo:
        lookup('registry.example.com', 'app', environ=env)
    assert 'not JSON' in excinfo.value.msg and 'hunter2' not in excinfo.value.msg


def test_normalize_key_and_server_url():
    assert normalize_key('https://index.docker.io/v1/') == ('docker.io', '')
    assert normalize_key('Quay.io/team/') == ('quay.io', 'team')
    assert normalize_key('http://localhost:5000') == ('localhost:5000', '')
    assert server_url('docker.io') == 'https://index.docker.io/v1/'
    assert server_url('ghcr.io') == 'ghcr.io'


# -- the identity token at the token service ---------------------------------------------------------

def _token_flow(server, oauth_status):
    realm = 'http://%s/token' % server.host

    def handler(request):
        auth = request['headers'].get('Authorization', '')
        if request['path'].startswith('/token'):
            if request['method'] == 'POST':
                if oauth_status != 200:
                    return oauth_status, {}, b''
                form = parse_qs(request['body'].decode())
                assert form['grant_type'] == ['refresh_token'] and form['refresh_token'] == ['idtok']
                return 200, {'Content-Type': 'application/json'}, json.dumps(
                    {'access_token': 'at-post', 'expires_in': 300}).encode()
            if auth == 'Basic ' + b64('<token>:idtok'):
                return 200, {'Content-Type': 'application/json'}, b'{"token": "at-get"}'
            return 401, {}, b''
        if auth in ('Bearer at-post', 'Bearer at-get'):
            return 200, {}, b'{}'
        return 401, {'WWW-Authenticate': 'Bearer realm="%s",service="svc"' % realm}, b''
    server.handler = handler


def _api(server, credentials):
    options = ConnectionConfig(credentials=credentials, timeout=5, retries=0)
    return RegistryAPI(HTTPSession(sleep=lambda s: None), server.host, options, loopback=True)


def test_identity_token_uses_oauth_post(server):
    _token_flow(server, 200)
    api = _api(server, Credentials(identity_token='idtok'))
    api.request('GET', '/v2/team/app/tags/list', scopes=['repository:team/app:pull,push', 'repository:team/src:pull'])
    posts = [r for r in server.requests if r['method'] == 'POST']
    assert len(posts) == 1
    form = parse_qs(posts[0]['body'].decode())
    assert form['service'] == ['svc']
    assert form['scope'] == ['repository:team/app:pull,push repository:team/src:pull']
    assert 'Authorization' not in posts[0]['headers']
    assert server.requests[-1]['headers']['Authorization'] == 'Bearer at-post'


def test_identity_token_falls_back_to_get_on_404(server):
    _token_flow(server, 404)
    api = _api(server, Credentials(identity_token='idtok'))
    api.request('GET', '/v2/', scopes=['repository:team/app:pull'])
    methods = [(r['method'], r['path'].split('?')[0]) for r in server.requests]
    assert ('POST', '/token') in methods and ('GET', '/token') in methods
    assert server.requests[-1]['headers']['Authorization'] == 'Bearer at-get'


def test_identity_token_refused_names_the_source_not_the_secret(server):
    _token_flow(server, 401)
    api = _api(server, Credentials(identity_token='idtok', source='/x/config.json (auths entry r)'))
    with pytest.raises(AuthenticationError) as excinfo:
        api.request('GET', '/v2/', scopes=['repository:team/app:pull'])
    assert 'identity token from /x/config.json' in excinfo.value.msg and 'idtok' not in excinfo.value.msg


def test_identity_token_against_basic_registry_is_explained(server):
    server.handler = lambda r: (401, {'WWW-Authenticate': 'Basic realm="r"'}, b'')
    with pytest.raises(AuthenticationError) as excinfo:
        _api(server, Credentials(identity_token='idtok')).request('GET', '/v2/')
    assert 'identity token' in excinfo.value.msg


def test_client_cert_is_passed_to_requests(tmp_path):
    options = ConnectionConfig(client_cert='/c.pem', client_key='/k.pem')
    assert options.cert == ('/c.pem', '/k.pem')
    assert ConnectionConfig(client_cert='/both.pem').cert == '/both.pem'
    assert ConnectionConfig().cert is None
    copy = options.with_credentials(Credentials('u', 'p'))
    assert copy.cert == options.cert and copy.credentials.username == 'u' and options.credentials is None


def test_a_helper_name_with_a_line_break_is_refused_before_running_anything(env):
    add_helper(env, 'pass', {})
    write_docker(env, {'credsStore': 'pass\n'})
    with pytest.raises(InvalidInputError, match='Invalid credential helper name'):
        lookup('registry.example.com', 'app', environ=env)
