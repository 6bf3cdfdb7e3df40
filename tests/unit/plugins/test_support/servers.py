# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real HTTP servers on 127.0.0.1, port 0, for the unit tests: scripted, dual-scheme and byte-by-byte slow.

- :class:`ScriptedServer` answers each request with ``handler(request) -> (status, headers, body)``
  and records every request; ``fault(request)`` may shape how a successful body goes out (see
  :data:`FAULTS`). The fake registry (``registry.Registry``) is one of these.
- :class:`DualServer` is a scripted server whose one port speaks both TLS and plain HTTP.
- :class:`SlowServer` writes raw bytes as a :class:`Plan` says: dripped, cut short, without a length.
"""

from __future__ import annotations

import os
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = """Faults are dicts returned by ``server.fault(request)`` (None: behave):
``status``: answer this status, empty, whatever the handler says; ``ignore_range``: the handler does
not see the Range header (a registry answering 200 with the whole blob). The others shape a 200/206
body: ``corrupt``: flip the body byte at this offset; ``content_length``: announce this length;
``chunked``: send without Content-Length, with ``extra`` bytes appended; ``truncate``: close after
this many body bytes; ``drip``: one byte every ``drip`` seconds (at most ``drip_bytes`` of them,
then hang up)."""


class Served:
    """Closes on leaving a ``with`` block: what the fixtures use."""

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class LoopbackServer(Served):
    """Serves ``handler_class`` with ``server_class`` on a free loopback port until ``close()``."""

    def __init__(self, handler_class, server_class=ThreadingHTTPServer):
        self.httpd = server_class(('127.0.0.1', 0), handler_class)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = '127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05})
        self.thread.daemon = True
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedServer(Served):
    """Answers with ``handler(request) -> (status, headers, body)``; ``requests`` records each one.

    A request is ``{'method', 'path', 'headers', 'body', 'client', 'scheme'}``; ``fault(request)``
    answers or shapes it as :data:`FAULTS` says.
    """

    server_class = ThreadingHTTPServer

    def __init__(self):
        self.requests = []
        self.handler = lambda request: (404, {}, b'')
        self.fault = lambda request: None
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            # Headers and body go out as two writes: without this, each answer waits 40 ms on delayed ACKs.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _serve(self):
                try:
                    owner.answer(self)
                except OSError:  # the client hung up, as a verifier that stopped reading does
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        self.loopback = LoopbackServer(Handler, self.server_class)
        self.port = self.loopback.port
        self.host = self.loopback.host

    def close(self):
        self.loopback.close()

    def answer(self, connection):
        """Record the request, then send what the fault or the handler says."""
        length = int(connection.headers.get('Content-Length') or 0)
        request = {'method': connection.command, 'path': connection.path, 'headers': dict(connection.headers),
                   'body': connection.rfile.read(length) if length else b'', 'client': connection.client_address,
                   'scheme': 'https' if isinstance(connection.connection, ssl.SSLSocket) else 'http'}
        with self.lock:
            self.requests.append(request)
        fault = self.fault(request) or {}
        if fault.get('status'):
            return send(connection, fault['status'], {}, b'')
        if fault.get('ignore_range'):
            request = dict(request, headers=dict((k, v) for k, v in request['headers'].items() if k != 'Range'))
        status, headers, body = self.handler(request)
        return send(connection, status, headers, body, fault if status in (200, 206) else {})

    def over(self, scheme):
        """The requests that came over ``scheme`` ('http' or 'https')."""
        return [r for r in self.requests if r['scheme'] == scheme]


def send(connection, status, headers, body, fault=None):
    """Send one answer on a BaseHTTPRequestHandler, its body shaped by ``fault`` (see FAULTS)."""
    fault = fault or {}
    if 'corrupt' in fault:
        body = bytearray(body)
        body[fault['corrupt']] ^= 0xff
        body = bytes(body)
    headers = dict(headers)
    if fault.get('chunked'):
        headers.update({'Transfer-Encoding': 'chunked', 'Connection': 'close'})
        headers.pop('Content-Length', None)
        body += b'\0' * fault.get('extra', 0)
    else:
        headers.setdefault('Content-Length', str(len(body)))
        if 'content_length' in fault:
            headers['Content-Length'] = str(fault['content_length'])
    if 'truncate' in fault:
        headers['Connection'] = 'close'
    connection.send_response(status)
    for name, value in headers.items():
        connection.send_header(name, value)
    connection.end_headers()
    if connection.command != 'HEAD':
        _write_body(connection, body, fault)
    if fault.get('chunked') or 'truncate' in fault or 'drip' in fault:
        connection.close_connection = True


def _write_body(connection, body, fault):
    if fault.get('chunked'):
        for offset in range(0, len(body), 65536):
            piece = body[offset:offset + 65536]
            connection.wfile.write(b'%x\r\n' % len(piece) + piece + b'\r\n')
        connection.wfile.write(b'0\r\n\r\n')
    elif 'drip' in fault:
        for offset in range(min(len(body), fault.get('drip_bytes', 50))):
            connection.wfile.write(body[offset:offset + 1])
            connection.wfile.flush()
            time.sleep(fault['drip'])
    elif 'truncate' in fault:
        connection.wfile.write(body[:fault['truncate']])
        connection.wfile.flush()
    else:
        connection.wfile.write(body)


# -- one port, two schemes -----------------------------------------------------------------------------
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


class _SniffingServer(ThreadingHTTPServer):
    """Tells TLS from plain HTTP by the first byte of each connection (0x16 starts a TLS handshake)."""

    tls_context = None

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


class DualServer(ScriptedServer):
    """A scripted server on ONE loopback port that speaks both TLS and plain HTTP.

    ``https://127.0.0.1:P`` and ``http://127.0.0.1:P`` are the same host and port with different
    schemes: exactly what a malicious or misconfigured registry can redirect to. Each recorded
    request says the scheme it came over.
    """

    server_class = _SniffingServer

    def __init__(self, cert, key):
        ScriptedServer.__init__(self)
        self.loopback.httpd.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.loopback.httpd.tls_context.load_cert_chain(cert, key)


# -- byte by byte ----------------------------------------------------------------------------------------
class Plan:
    """How :class:`SlowServer` answers one request."""

    def __init__(self, status=200, headers=None, body=b'', length='auto', send=None, drip=None, max_seconds=10.0):
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.length = len(body) if length == 'auto' else length  # None: no Content-Length header
        self.send = len(body) if send is None else send         # body bytes actually sent
        self.drip = drip
        self.max_seconds = max_seconds


class SlowServer(Served):
    """A misbehaving server scripted byte by byte: ``plan(request) -> Plan``.

    A plan is a status line and headers, then a body that may be dripped (one byte every
    ``drip`` seconds), cut short (``send`` bytes of it) or sent without a Content-Length
    (``length=None``: the end of the body is the connection closing). Every answer closes the
    connection; every loop is bounded (a drip stops after ``max_seconds`` or when the client hung
    up). Records each request (method, path, lower-case headers, body bytes received).
    """

    def __init__(self):
        self.requests = []
        self.plan = lambda request: Plan(404)
        self.sent = []  # body bytes sent per answer
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    server.answer(self.request)
                except OSError:  # the client hung up: what a deadline does
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.loopback = LoopbackServer(Handler, Server)
        self.port = self.loopback.port
        self.host = self.loopback.host

    def close(self):
        self.loopback.close()

    def answer(self, sock):
        sock.settimeout(10)
        request = _read_request(sock)
        if request is None:
            return
        self.requests.append(request)
        plan = self.plan(request)
        head = ['HTTP/1.1 %d X' % plan.status, 'Connection: close']
        if plan.length is not None:
            head.append('Content-Length: %d' % plan.length)
        head.extend('%s: %s' % item for item in plan.headers.items())
        sock.sendall(('\r\n'.join(head) + '\r\n\r\n').encode('latin-1'))
        sent = 0
        if request['method'] != 'HEAD':
            sent = self._send_body(sock, plan)
        self.sent.append(sent)
        sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _send_body(sock, plan):
        body = plan.body[:plan.send]
        if not plan.drip:
            sock.sendall(body)
            return len(body)
        stop = time.monotonic() + plan.max_seconds
        sent = 0
        for index in range(len(body)):
            if time.monotonic() > stop:
                break
            sock.sendall(body[index:index + 1])
            sent += 1
            time.sleep(plan.drip)
        return sent


def dripping_then_ranges(data, drip=0.2):
    """A SlowServer plan: a request without Range gets ``data`` dripped; one with Range the rest at once (206)."""
    size = len(data)

    def plan(request):
        if 'range' not in request['headers']:
            return Plan(body=data, drip=drip, max_seconds=10)
        start = int(request['headers']['range'].split('=')[1].split('-')[0])
        return Plan(206, {'Content-Range': 'bytes %d-%d/%d' % (start, size - 1, size)}, body=data[start:])
    return plan


def _read_request(sock):
    """The request line, headers and body (by Content-Length) of one request, or None."""
    data = b''
    for dummy in range(1024):
        if b'\r\n\r\n' in data:
            break
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, dummy, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    method, path = lines[0].split(' ')[:2]
    headers = {}
    for line in lines[1:]:
        name, dummy, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    wanted = int(headers.get('content-length') or 0)
    for dummy in range(4096):
        if len(body) >= wanted:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return {'method': method, 'path': path, 'headers': headers, 'body': body}
