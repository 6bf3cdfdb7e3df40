#!/usr/bin/env python
"""Registries with real authentication and TLS for the credential tests, all on 127.0.0.1.

    auth_servers.py start --state DIR [--lifetime SECONDS]   prints the JSON of DIR/servers.json
    auth_servers.py stop --state DIR

``start`` generates (once per DIR) a CA, a server certificate for 127.0.0.1/localhost, a client
certificate, a token-signing certificate (``openssl``) and an htpasswd file (``htpasswd -B``), then runs:

- ``tls``:   distribution with htpasswd auth behind TLS (users alice, reader)
- ``mtls``:  distribution behind TLS that requires a client certificate signed by the CA (no auth)
- ``token``: distribution (plain HTTP) with ``auth: token`` trusting the signing certificate
- ``tokensrv``: tests/utils/token_server.py, the realm of ``token`` (plain HTTP)
- ``proxy``: tests/utils/fault_proxy.py in front of ``token`` (state in DIR/proxy)
- ``token_tls``: tests/utils/scheme_trap.py in front of ``token``: the token registry over TLS (its realm
  stays plain HTTP), for the ``token`` option, which is never sent to a plain-HTTP registry (state in DIR/token_tls)

Every process runs under ``timeout --signal=TERM LIFETIME`` (default 900 s), so nothing outlives a
crashed test run for long; ``stop`` ends them by the pids recorded in DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import _daemon

HERE = os.path.dirname(os.path.abspath(__file__))
USERS = {'alice': 'Alice-S3cret-pw-71f3', 'reader': 'Reader-S3cret-pw-0b9d'}
IDENTITY_TOKEN = 'IdTok-9a8b7c6d5e-refresh'
SERVICE = 'imagelayers-test'
ISSUER = 'imagelayers-test-issuer'


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, **kwargs)


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def make_pki(state):
    pki = os.path.join(state, 'pki')
    if os.path.exists(os.path.join(pki, 'done')):
        return pki
    os.makedirs(pki, exist_ok=True)

    def p(name):
        return os.path.join(pki, name)

    run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', '/CN=imagelayers test CA',
         '-keyout', p('ca.key'), '-out', p('ca.crt'),
         '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    with open(p('server.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
                'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n')
    with open(p('client.ext'), 'w') as f:
        f.write('extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n')
    for name, subject in (('server', '/CN=127.0.0.1'), ('client', '/CN=imagelayers-test-client')):
        run(['openssl', 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subject, '-keyout', p(name + '.key'),
             '-out', p(name + '.csr')])
        run(['openssl', 'x509', '-req', '-in', p(name + '.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'),
             '-CAcreateserial', '-days', '30', '-extfile', p(name + '.ext'), '-out', p(name + '.crt')])
    # A client certificate from a CA the registry does not trust.
    run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', '/CN=untrusted client',
         '-keyout', p('untrusted.key'), '-out', p('untrusted.crt')])
    # RS256: the token server signs with `openssl dgst -sha256 -sign`, whose RSA output is the JWS signature.
    run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=token signer',
         '-keyout', p('signing.key'), '-out', p('signing.crt')])
    htpasswd = p('htpasswd')
    for index, (user, password) in enumerate(sorted(USERS.items())):
        run(['htpasswd', '-B', '-b'] + (['-c'] if index == 0 else []) + [htpasswd, user, password])
    open(p('done'), 'w').close()
    return pki


REGISTRY_BASE = '''version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %(dir)s/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
health:
  storagedriver:
    enabled: false
http:
  addr: 127.0.0.1:%(port)d
  secret: imagelayers-auth-test-secret
'''


def registry_config(name, state, port, pki):
    directory = os.path.join(state, name)
    os.makedirs(os.path.join(directory, 'storage'), exist_ok=True)
    text = REGISTRY_BASE % {'dir': directory, 'port': port}
    tls = '  tls:\n    certificate: %s/server.crt\n    key: %s/server.key\n' % (pki, pki)
    # http: is the last section of REGISTRY_BASE, so tls: lands in it.
    if name == 'tls':
        text += tls + 'auth:\n  htpasswd:\n    realm: imagelayers-test\n    path: %s/htpasswd\n' % pki
    elif name == 'mtls':
        text += tls + '    clientcas:\n      - %s/ca.crt\n' % pki
    elif name == 'token':
        text += ('auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n'
                 % ('http://127.0.0.1:%d/token' % port_of(state, 'tokensrv'), SERVICE, ISSUER,
                    os.path.join(pki, 'signing.crt')))
    path = os.path.join(directory, 'config.yml')
    with open(path, 'w') as f:
        f.write(text)
    return path


_PORTS = {}


def port_of(state, name):
    return _PORTS[name]


def spawn(state, name, argv, lifetime):
    return _daemon.spawn(['timeout', '--signal=TERM', '--kill-after=5', str(lifetime)] + argv,
                         os.path.join(state, name + '.log'), os.path.join(state, name + '.pid'), append=True)


def wait_ready(name, url, process, pki, state):
    context = ssl.create_default_context(cafile=os.path.join(pki, 'ca.crt'))
    if name == 'mtls':
        context.load_cert_chain(os.path.join(pki, 'client.crt'), os.path.join(pki, 'client.key'))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            urllib.request.urlopen(url, timeout=2, context=context if url.startswith('https') else None)
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    with open(os.path.join(state, name + '.log'), 'rb') as f:
        tail = f.read()[-3000:].decode('utf-8', 'replace')
    raise SystemExit('auth_servers: %s did not come up on %s\n%s' % (name, url, tail))


def start(args):
    state = os.path.abspath(args.state)
    os.makedirs(state, exist_ok=True)
    stop(args, quiet=True)
    pki = make_pki(state)
    for name in ('tls', 'mtls', 'token', 'tokensrv'):
        _PORTS[name] = free_port()
    with open(os.path.join(state, 'token_config.json'), 'w') as f:
        json.dump({'service': SERVICE, 'issuer': ISSUER, 'users': USERS,
                   'refresh_tokens': {IDENTITY_TOKEN: 'alice'},
                   'acl': {'alice': ['pull', 'push'], 'reader': ['pull'], '': []},
                   'public_prefix': 'public/', 'oauth_post': True}, f)
    open(os.path.join(state, 'token_log.jsonl'), 'w').close()
    processes = {}
    processes['tokensrv'] = spawn(state, 'tokensrv', [
        sys.executable, os.path.join(HERE, 'token_server.py'), 'serve', '--state', state,
        '--port', str(_PORTS['tokensrv']), '--key', os.path.join(pki, 'signing.key'),
        '--cert', os.path.join(pki, 'signing.crt')], args.lifetime)
    for name in ('tls', 'mtls', 'token'):
        config = registry_config(name, state, _PORTS[name], pki)
        processes[name] = spawn(state, name, ['docker-registry', 'serve', config], args.lifetime)
    urls = {'tokensrv': 'http://127.0.0.1:%d/token' % _PORTS['tokensrv'],
            'tls': 'https://127.0.0.1:%d/v2/' % _PORTS['tls'],
            'mtls': 'https://127.0.0.1:%d/v2/' % _PORTS['mtls'],
            'token': 'http://127.0.0.1:%d/v2/' % _PORTS['token']}
    for name, url in urls.items():
        wait_ready(name, url, processes[name], pki, state)
    proxy_state = os.path.join(state, 'proxy')
    proxy = json.loads(run([sys.executable, os.path.join(HERE, 'fault_proxy.py'), 'start', '--state', proxy_state,
                            '--upstream', '127.0.0.1:%d' % _PORTS['token']]).stdout)
    token_tls_state = os.path.join(state, 'token_tls')
    token_tls = json.loads(run([sys.executable, os.path.join(HERE, 'scheme_trap.py'), 'start', '--state',
                                token_tls_state, '--upstream', '127.0.0.1:%d' % _PORTS['token'],
                                '--cert', os.path.join(pki, 'server.crt'), '--key', os.path.join(pki, 'server.key'),
                                '--lifetime', str(args.lifetime)]).stdout)
    info = {
        'state': state,
        'token_tls_host': token_tls['host'],
        'token_tls_log': token_tls['log'],
        'tls_host': '127.0.0.1:%d' % _PORTS['tls'],
        'mtls_host': '127.0.0.1:%d' % _PORTS['mtls'],
        'token_host': '127.0.0.1:%d' % _PORTS['token'],
        'proxy_host': '127.0.0.1:%d' % proxy['port'],
        'proxy_state': proxy_state,
        'realm': urls['tokensrv'],
        'token_log': os.path.join(state, 'token_log.jsonl'),
        'token_config': os.path.join(state, 'token_config.json'),
        'registry_logs': {name: os.path.join(state, name + '.log') for name in ('tls', 'mtls', 'token')},
        'ca': os.path.join(pki, 'ca.crt'),
        'client_cert': os.path.join(pki, 'client.crt'),
        'client_key': os.path.join(pki, 'client.key'),
        'untrusted_cert': os.path.join(pki, 'untrusted.crt'),
        'untrusted_key': os.path.join(pki, 'untrusted.key'),
        'users': USERS,
        'identity_token': IDENTITY_TOKEN,
        'service': SERVICE,
    }
    with open(os.path.join(state, 'servers.json'), 'w') as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))
    return 0


def stop(args, quiet=False):
    state = os.path.abspath(args.state)
    stopped = []
    for name in ('tls', 'mtls', 'token', 'tokensrv'):
        # The pid of the `timeout` wrapper we started; it passes TERM on to the server.
        if _daemon.stop(state, name + '.pid') is not None:
            stopped.append(name)
    # The scheme trap and the fault proxy, started through their own `start` (state in their directories).
    for name in ('token_tls', 'proxy'):
        _daemon.stop(os.path.join(state, name))
    if not quiet:
        print(json.dumps({'stopped': stopped}))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('start')
    p.add_argument('--state', required=True)
    p.add_argument('--lifetime', type=int, default=900)
    sub.add_parser('stop').add_argument('--state', required=True)
    args = parser.parse_args(argv)
    return start(args) if args.command == 'start' else stop(args)


if __name__ == '__main__':
    sys.exit(main())
