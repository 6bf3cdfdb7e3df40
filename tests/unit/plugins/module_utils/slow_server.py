# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A misbehaving HTTP server on 127.0.0.1, port 0, scripted byte by byte.

Each request is answered by ``server.plan(request)``, a :class:`Plan`: a status
line and headers, then a body that may be dripped (one byte every ``drip``
seconds), cut short (``send`` bytes of it) or sent without a Content-Length
(``length=None``: the end of the body is the connection closing). Every
answer closes the connection. Every loop is bounded: a drip stops after
``max_seconds`` or when the client hung up.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time


class Plan:
    """How to answer one request."""

    def __init__(self, status=200, headers=None, body=b'', length='auto', send=None, drip=None, max_seconds=10.0):
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.length = len(body) if length == 'auto' else length  # None: no Content-Length header
        self.send = len(body) if send is None else send         # body bytes actually sent
        self.drip = drip
        self.max_seconds = max_seconds


class SlowServer:
    """Serves ``plan(request) -> Plan``; records each request (method, path, headers, body bytes received)."""

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

        self.tcp = Server(('127.0.0.1', 0), Handler)
        self.port = self.tcp.server_address[1]
        self.host = '127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.tcp.serve_forever, kwargs={'poll_interval': 0.05})
        self.thread.daemon = True
        self.thread.start()

    def close(self):
        self.tcp.shutdown()
        self.tcp.server_close()

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
