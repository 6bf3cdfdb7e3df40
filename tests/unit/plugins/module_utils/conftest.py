# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real HTTP server on 127.0.0.1, port 0, whose answers each test scripts."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.loopback_server import LoopbackServer


class ScriptedServer:
    """Answers requests with ``handler(request) -> (status, headers, body)``; records every request."""

    def __init__(self):
        self.requests = []
        self.handler = lambda request: (404, {}, b'')
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            # Headers and body go out as two writes: without this, each answer waits 40 ms on delayed ACKs.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                request = {'method': self.command, 'path': self.path, 'headers': dict(self.headers), 'body': body}
                server.requests.append(request)
                status, headers, payload = server.handler(request)
                self.send_response(status)
                headers = dict(headers)
                headers.setdefault('Content-Length', str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        self.loopback = LoopbackServer(Handler)
        self.port = self.loopback.port
        self.host = self.loopback.host

    def close(self):
        self.loopback.close()


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.fixture
def other_server():
    srv = ScriptedServer()
    yield srv
    srv.close()
