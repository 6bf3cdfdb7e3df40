#!/usr/bin/env python
"""A TLS front for a registry whose port ALSO answers plain HTTP: a trap for credentials in clear text.

One port on 127.0.0.1 speaks TLS (with the given certificate) and plain HTTP, told apart by
the first byte of each connection. So ``https://127.0.0.1:P`` and ``http://127.0.0.1:P`` are
the same host and port: what a registry (or someone in between) redirects to when it wants a
client to repeat its credentials without TLS. Requests are forwarded to the upstream registry
(plain, or TLS verified with ``--upstream-ca``), over either scheme, unless a trap applies:

    --redirect-blobs   a blob GET over TLS is answered 307 to the same URL with http://
    --echo-auth        a manifest request that carries Authorization is answered 400 with a JSON
                       error body quoting the header (a registry that echoes what it was sent)

Every request is logged to ``STATE/log.jsonl``: scheme, method, path, whether Authorization was
sent and its scheme word (``Basic``/``Bearer``), never its value.

    scheme_trap.py start --state DIR --upstream 127.0.0.1:PORT --cert C --key K [--upstream-ca CA] [traps]
    scheme_trap.py stop --state DIR
    scheme_trap.py serve ...            # foreground

``start`` prints ``{"port": N, "host": "127.0.0.1:N", "pid": P}``; the server ends by itself after
``--lifetime`` seconds (default 900), should a run be killed before ``stop``.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import socket
import ssl
import sys
import time

import _daemon

HOP_BY_HOP = frozenset(('connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
                        'transfer-encoding', 'upgrade'))
CHUNK = 256 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'scheme-trap'

    def log_message(self, format, *args):  # quiet: everything goes to log.jsonl
        pass

    @property
    def scheme(self):
        return 'https' if isinstance(self.connection, ssl.SSLSocket) else 'http'

    def _log(self, **entry):
        authorization = self.headers.get('Authorization') or ''
        entry.update({'time': round(time.time(), 3), 'scheme': self.scheme, 'method': self.command,
                      'path': self.path, 'authorization': bool(authorization),
                      'auth_scheme': authorization.split(' ', 1)[0] if authorization else None})
        self.server.log.entry(entry)

    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        server = self.server
        if server.redirect_blobs and self.scheme == 'https' and self.command == 'GET' and '/blobs/sha256:' in self.path:
            location = 'http://%s%s' % (self.headers.get('Host') or server.host, self.path)
            self._log(status=307, trap='redirect', location=location)
            _daemon.respond(self, 307, {'Location': location})
            return
        if server.echo_auth and '/manifests/' in self.path and self.headers.get('Authorization'):
            error = {'errors': [{'code': 'DENIED', 'message': 'you sent: %s' % self.headers['Authorization'],
                                 'detail': {'Authorization': self.headers['Authorization']}}]}
            self._log(status=400, trap='echo')
            _daemon.respond(self, 400, {'Content-Type': 'application/json'}, json.dumps(error).encode())
            return
        self._forward(body)

    def _forward(self, body):
        server = self.server
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers['Content-Length'] = str(len(body))
        if server.upstream_context is not None:
            upstream = http.client.HTTPSConnection(server.upstream, timeout=30, context=server.upstream_context)
        else:
            upstream = http.client.HTTPConnection(server.upstream, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read() if self.command != 'HEAD' else b''
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != 'content-length':
                    self.send_header(name, value)
            self.send_header('Content-Length', response.getheader('Content-Length') if self.command == 'HEAD'
                             and response.getheader('Content-Length') else str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
            self._log(status=response.status, sent=len(payload))
        except (OSError, http.client.HTTPException) as exc:
            self._log(status=None, error=str(exc))
            self.close_connection = True
        finally:
            upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class Server(http.server.ThreadingHTTPServer):
    def finish_request(self, request, client_address):
        # In the request's thread: peek at the first byte, and speak TLS when it starts a handshake.
        request.settimeout(30)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b'\x16':
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        self.RequestHandlerClass(request, client_address, self)


def serve(args):
    os.makedirs(args.state, exist_ok=True)
    server = Server(('127.0.0.1', 0), Handler)
    server.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.tls_context.load_cert_chain(args.cert, args.key)
    server.upstream = args.upstream
    server.upstream_context = ssl.create_default_context(cafile=args.upstream_ca) if args.upstream_ca else None
    server.redirect_blobs = args.redirect_blobs
    server.echo_auth = args.echo_auth
    server.host = '127.0.0.1:%d' % server.server_address[1]
    server.log = _daemon.AppendLog(os.path.join(args.state, 'log.jsonl'), create=True)
    _daemon.publish(os.path.join(args.state, _daemon.PORTFILE), str(server.server_address[1]))
    _daemon.serve(server, lifetime=args.lifetime)


def start(args):
    argv = [sys.executable, os.path.abspath(__file__), 'serve', '--state', args.state, '--upstream', args.upstream,
            '--cert', args.cert, '--key', args.key, '--lifetime', str(args.lifetime)]
    argv += ['--upstream-ca', args.upstream_ca] if args.upstream_ca else []
    argv += ['--redirect-blobs'] if args.redirect_blobs else []
    argv += ['--echo-auth'] if args.echo_auth else []
    port, pid = _daemon.start('scheme_trap', args.state, argv, 'trap.out', fresh=('log.jsonl',))
    print(json.dumps({'port': port, 'host': '127.0.0.1:%d' % port, 'pid': pid,
                      'log': os.path.join(args.state, 'log.jsonl')}))
    return 0


def stop(args):
    print(json.dumps({'stopped': _daemon.stop(args.state)}))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    for name in ('start', 'serve'):
        p = sub.add_parser(name)
        p.add_argument('--state', required=True)
        p.add_argument('--upstream', required=True, help='host:port of the registry')
        p.add_argument('--upstream-ca', help='speak TLS to the upstream, verified with this CA')
        p.add_argument('--cert', required=True)
        p.add_argument('--key', required=True)
        p.add_argument('--redirect-blobs', action='store_true')
        p.add_argument('--echo-auth', action='store_true')
        p.add_argument('--lifetime', type=float, default=900.0)
    sub.add_parser('stop').add_argument('--state', required=True)
    args = parser.parse_args(argv)
    return {'start': start, 'serve': serve, 'stop': stop}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
