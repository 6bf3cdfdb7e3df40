# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted server on ONE loopback port that speaks both TLS and plain HTTP.

It tells the two apart by the first byte of each connection (0x16 starts a TLS
handshake), so ``https://127.0.0.1:P`` and ``http://127.0.0.1:P`` are the same
host and port with different schemes: exactly what a malicious or misconfigured
registry can redirect to. Every request is recorded with the scheme it came over.
``make_pki`` writes a CA and a server certificate for 127.0.0.1 with ``openssl``.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_pki(directory):
    """``(ca_path, cert_path, key_path)``: a CA and a server certificate for 127.0.0.1 and localhost."""
    def path(name):
        return os.path.join(directory, name)

    def run(*argv):
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes')
    run('openssl', 'req', '-x509', *ec, '-days', '2', '-subj', '/CN=imagelayers unit test CA',
        '-keyout', path('ca.key'), '-out', path('ca.crt'),
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    with open(path('server.ext'), 'w') as handle:
        handle.write('subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
                     'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n')
    run('openssl', 'req', *ec, '-subj', '/CN=127.0.0.1', '-keyout', path('server.key'), '-out', path('server.csr'))
    run('openssl', 'x509', '-req', '-in', path('server.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'),
        '-CAcreateserial', '-days', '2', '-extfile', path('server.ext'), '-out', path('server.crt'))
    return path('ca.crt'), path('server.crt'), path('server.key')


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        # Runs in the request's thread: peeking here never blocks the accept loop.
        request.settimeout(5)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b'\x16':
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client gave up on our certificate
        self.RequestHandlerClass(request, client_address, self)


class DualServer:
    """Answers with ``handler(request) -> (status, headers, body)``; ``requests`` records each one."""

    def __init__(self, cert, key):
        self.requests = []
        self.handler = lambda request: (404, {}, b'')
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                scheme = 'https' if isinstance(self.connection, ssl.SSLSocket) else 'http'
                request = {'scheme': scheme, 'method': self.command, 'path': self.path,
                           'headers': dict(self.headers), 'body': body}
                owner.requests.append(request)
                status, headers, payload = owner.handler(request)
                self.send_response(status)
                headers = dict(headers)
                headers.setdefault('Content-Length', str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        self.httpd = _Server(('127.0.0.1', 0), Handler)
        self.httpd.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.httpd.tls_context.load_cert_chain(cert, key)
        self.port = self.httpd.server_address[1]
        self.host = '127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05})
        self.thread.daemon = True
        self.thread.start()

    def over(self, scheme):
        """The requests that came over ``scheme`` ('http' or 'https')."""
        return [r for r in self.requests if r['scheme'] == scheme]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
