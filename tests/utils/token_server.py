#!/usr/bin/env python
"""A small registry token server for tests: issues RS256 JWTs a distribution registry verifies.

Configured by ``STATE/token_config.json`` (re-read on every request)::

    {"service": "imagelayers-test", "issuer": "imagelayers-test-issuer",
     "users": {"alice": "password"},                 # Basic credentials (GET realm, or POST grant_type=password)
     "refresh_tokens": {"<identity token>": "alice"},
     "acl": {"alice": ["pull", "push"], "reader": ["pull"], "": []},   # "" is anonymous
     "public_prefix": "public/",                     # anonymous may pull these repositories
     "oauth_post": true}                             # false: POST answers 404 (the GET fallback is tested)

The JWT header carries the signing certificate in ``x5c``; the registry trusts it through
``auth.token.rootcertbundle``. Signing runs ``openssl dgst -sha256 -sign`` (no Python crypto library needed).

Every request is logged to ``STATE/token_log.jsonl`` (method, grant, account, scopes granted, status;
never a secret).

    token_server.py serve --state DIR --port N --key signing.key --cert signing.crt
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import subprocess
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import _daemon


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def pem_to_der_b64(path):
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith('-----')]
    return ''.join(lines)


class TokenServer:
    def __init__(self, state, key, cert):
        self.state = state
        self.key = key
        self.x5c = [pem_to_der_b64(cert)]
        self.requests = _daemon.AppendLog(os.path.join(state, 'token_log.jsonl'))

    def config(self):
        with open(os.path.join(self.state, 'token_config.json')) as f:
            return json.load(f)

    def log(self, **entry):
        entry['time'] = time.time()
        self.requests.entry(entry)

    def sign(self, claims):
        header = {'typ': 'JWT', 'alg': 'RS256', 'x5c': self.x5c}
        signing_input = (b64url(json.dumps(header, separators=(',', ':')).encode()) + '.'
                         + b64url(json.dumps(claims, separators=(',', ':')).encode()))
        proc = subprocess.run(['openssl', 'dgst', '-sha256', '-sign', self.key], input=signing_input.encode(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=30)
        return signing_input + '.' + b64url(proc.stdout)

    def grant(self, config, account, scopes):
        allowed = set(config.get('acl', {}).get(account or '', []))
        access = []
        for scope in scopes:
            parts = scope.split(':')
            if len(parts) < 3 or parts[0] != 'repository':
                continue
            name, actions = ':'.join(parts[1:-1]), parts[-1].split(',')
            granted = [a for a in actions if a in allowed
                       or (a == 'pull' and name.startswith(config.get('public_prefix') or '\0'))]
            access.append({'type': 'repository', 'name': name, 'actions': granted})
        return access

    def issue(self, config, account, service, scopes):
        now = int(time.time())
        claims = {'iss': config['issuer'], 'sub': account or '', 'aud': service or config['service'],
                  'exp': now + 300, 'nbf': now - 10, 'iat': now, 'jti': uuid.uuid4().hex,
                  'access': self.grant(config, account, scopes)}
        return self.sign(claims), claims['access']


def make_handler(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def _answer(self, status, body=None, log=None):
            _daemon.respond(self, status, {'Content-Type': 'application/json'}, json.dumps(body or {}).encode())
            entry = dict(log or {})
            entry.update(method=self.command, path=urlsplit(self.path).path, status=status)
            server.log(**entry)

        def _basic(self, config):
            header = self.headers.get('Authorization') or ''
            if not header.startswith('Basic '):
                return None, False
            try:
                user, password = base64.b64decode(header[6:]).decode().split(':', 1)
            except Exception:
                return None, True
            if config.get('users', {}).get(user) == password and user:
                return user, False
            if config.get('refresh_tokens', {}).get(password):
                return config['refresh_tokens'][password], False   # identity token as password (GET fallback)
            return None, True

        def do_GET(self):
            config = server.config()
            query = parse_qs(urlsplit(self.path).query)
            scopes = [s for value in query.get('scope', []) for s in value.split(' ')]
            account, refused = self._basic(config)
            if refused:
                return self._answer(401, {'details': 'invalid credentials'}, {'grant': 'basic', 'scopes': scopes})
            token, access = server.issue(config, account, (query.get('service') or [None])[0], scopes)
            self._answer(200, {'token': token, 'access_token': token, 'expires_in': 300},
                         {'grant': 'basic' if account else 'anonymous', 'account': account, 'scopes': scopes,
                          'access': access})

        def do_POST(self):
            config = server.config()
            length = int(self.headers.get('Content-Length') or 0)
            form = parse_qs(self.rfile.read(length).decode()) if length else {}
            if not config.get('oauth_post', True):
                return self._answer(404, {'details': 'no OAuth2 here'}, {'grant': (form.get('grant_type') or [''])[0]})
            grant = (form.get('grant_type') or [''])[0]
            scopes = [s for value in form.get('scope', []) for s in value.split(' ')]
            account = None
            if grant == 'refresh_token':
                account = config.get('refresh_tokens', {}).get((form.get('refresh_token') or [''])[0])
            elif grant == 'password':
                user = (form.get('username') or [''])[0]
                if config.get('users', {}).get(user) == (form.get('password') or [''])[0]:
                    account = user
            if not account:
                return self._answer(401, {'error': 'invalid_grant'}, {'grant': grant, 'scopes': scopes})
            token, access = server.issue(config, account, (form.get('service') or [None])[0], scopes)
            self._answer(200, {'access_token': token, 'expires_in': 300, 'scope': ' '.join(scopes)},
                         {'grant': grant, 'account': account, 'scopes': scopes, 'access': access,
                          'client_id': (form.get('client_id') or [''])[0]})

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    serve = sub.add_parser('serve')
    serve.add_argument('--state', required=True)
    serve.add_argument('--port', type=int, required=True)
    serve.add_argument('--key', required=True)
    serve.add_argument('--cert', required=True)
    serve.add_argument('--tls-cert', help='serve HTTPS with this certificate (and --tls-key)')
    serve.add_argument('--tls-key')
    args = parser.parse_args(argv)
    token_server = TokenServer(args.state, args.key, args.cert)
    httpd = ThreadingHTTPServer(('127.0.0.1', args.port), make_handler(token_server))
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    _daemon.serve(httpd)


if __name__ == '__main__':
    main()
