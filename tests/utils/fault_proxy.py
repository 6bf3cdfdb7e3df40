#!/usr/bin/env python
"""A fault-injecting HTTP proxy for tests: sits in front of a registry on 127.0.0.1.

Requests are forwarded to the upstream registry unchanged (the Host header
too, so the Location URLs the registry builds point back at the proxy) unless
a rule matches. Rules live in ``STATE/rules.json`` (re-read when the file
changes, which also resets the counters) and are tried in order; the first
whose ``match`` fits the request and whose ``times`` is not used up applies.

Rule fields::

    match:   {method: GET, path: <regex searched in the path+query>, header: {Name: <regex>}}
    times:   how often the rule applies (default 1; 0 or null: always)
    action:  pass      forward (combine with set_headers/remove_headers/delay)
             truncate  forward status and headers, then only ``after`` body bytes, then close
             drop      close the connection without an answer
             reset     like drop, with a TCP RST
             corrupt   forward, with the body byte at ``offset`` (default 0) XOR ``xor`` (default 0xff)
             status    answer ``status`` (with ``headers`` and ``body``) without asking upstream
             redirect  answer ``status`` (default 307) with Location = ``location``; in it ``{path}`` is the
                       request path+query, ``{backend}`` is http://localhost:PORT/__backend__ (the proxy's
                       "storage backend": another host name, serving what upstream serves); with
                       ``presign: true`` a ``X-Presigned`` query parameter is added (like an S3 pre-signed URL)
                       and the backend uses the redirected request's Authorization upstream, so a registry
                       with auth can sit behind it while the client sends the backend none
    after:   bytes of body sent before a truncate
    extra:   bytes (zeros) appended to the body, Content-Length grown to match (an overlong body)
    delay:   seconds to wait before answering
    set_headers / remove_headers: changes to the forwarded response headers

Every request is logged to ``STATE/log.jsonl``: method, path, the Range header,
whether Authorization was sent, the rule applied, the status and body bytes sent.

CLI::

    fault_proxy.py start --state DIR --upstream 127.0.0.1:5100 [--listen 127.0.0.1:0]
    fault_proxy.py rules --state DIR '[{"match": {"path": "/blobs/"}, "action": "truncate", "after": 1000}]'
    fault_proxy.py log --state DIR          # the JSON lines logged so far, as one JSON list
    fault_proxy.py stop --state DIR
    fault_proxy.py serve ...                # foreground

``start`` prints ``{"port": N, "url": "http://127.0.0.1:N", "pid": P}``.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time

import _daemon

HOP_BY_HOP = frozenset(('connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
                        'transfer-encoding', 'upgrade'))
BACKEND_PREFIX = '/__backend__'
CHUNK = 256 * 1024


class Rules:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.mtime = None
        self.rules = []
        self.used = []

    def _load(self):
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            self.rules, self.used, self.mtime = [], [], None
            return
        if mtime == self.mtime:
            return
        with open(self.path) as handle:
            rules = json.load(handle)
        if not isinstance(rules, list):
            raise ValueError('rules must be a JSON list')
        self.rules, self.used, self.mtime = rules, [0] * len(rules), mtime

    def pick(self, method, path, headers):
        with self.lock:
            self._load()
            for index, rule in enumerate(self.rules):
                match = rule.get('match') or {}
                if match.get('method') and match['method'].upper() != method:
                    continue
                if match.get('path') and not re.search(match['path'], path):
                    continue
                if any(not re.search(rx, headers.get(name) or '') for name, rx in (match.get('header') or {}).items()):
                    continue
                times = rule.get('times', 1)
                if times and self.used[index] >= times:
                    continue
                self.used[index] += 1
                return index, rule
        return None, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'fault-proxy'

    def log_message(self, format, *args):  # quiet: everything goes to log.jsonl
        pass

    def _log(self, **entry):
        entry.update({'time': round(time.time(), 3), 'method': self.command, 'path': self.path,
                      'host': self.headers.get('Host'), 'range': self.headers.get('Range'),
                      'authorization': bool(self.headers.get('Authorization'))})
        self.server.log.entry(entry)

    def _read_request_body(self):
        length = self.headers.get('Content-Length')
        if length is not None:
            return self.rfile.read(int(length))
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b';', 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b''.join(parts)
        return None

    def _abort(self, rst=False):
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self):
        body = self._read_request_body()
        backend = self.path.startswith(BACKEND_PREFIX)
        upstream_path = self.path[len(BACKEND_PREFIX):] if backend else self.path
        index, rule = self.server.rules.pick(self.command, self.path, self.headers)
        rule = rule or {}
        action = rule.get('action', 'pass')
        log = {'rule': index, 'action': action if index is not None else None, 'backend': backend}
        if rule.get('delay'):
            time.sleep(float(rule['delay']))
        if action in ('drop', 'reset'):
            self._log(status=None, sent=0, **log)
            self._abort(rst=action == 'reset')
            return
        if action == 'status':
            payload = rule.get('body', '').encode('utf-8')
            _daemon.respond(self, int(rule.get('status', 500)), rule.get('headers') or {}, payload)
            self._log(status=int(rule.get('status', 500)), sent=len(payload), **log)
            return
        if action == 'redirect':
            location = rule.get('location', '{backend}{path}').format(
                path=self.path, backend='http://localhost:%d%s' % (self.server.server_address[1], BACKEND_PREFIX))
            if rule.get('presign'):
                ticket = '%016x' % random.getrandbits(64)
                self.server.presigned[ticket] = self.headers.get('Authorization')
                location += ('&' if '?' in location else '?') + 'X-Presigned=' + ticket
            status = int(rule.get('status', 307))
            self.send_response(status)
            self.send_header('Location', location)
            self.send_header('Content-Length', '0')
            self.end_headers()
            self._log(status=status, sent=0, location=location, **log)
            return

        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if backend:
            # A storage backend serves the blob without registry credentials.
            headers.pop('Authorization', None)
            headers['Host'] = self.server.upstream
            match = re.search(r'[?&]X-Presigned=([0-9a-f]+)$', upstream_path)
            if match:
                upstream_path = upstream_path[:match.start()]
                if self.server.presigned.get(match.group(1)):
                    headers['Authorization'] = self.server.presigned[match.group(1)]
        if body is not None:
            headers['Content-Length'] = str(len(body))
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=self.server.timeout)
        try:
            upstream.request(self.command, upstream_path, body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status, response.reason)
            length = response.getheader('Content-Length')
            remove = set(h.lower() for h in rule.get('remove_headers') or [])
            set_headers = dict(rule.get('set_headers') or {})
            extra_bytes = int(rule.get('extra', 0)) if action != 'truncate' and self.command != 'HEAD' else 0
            if 'content-length' in remove:
                length = None
            elif extra_bytes and length is not None and 'content-length' not in set(h.lower() for h in set_headers):
                set_headers['Content-Length'] = str(int(length) + extra_bytes)
            if any(h.lower() == 'content-length' for h in set_headers):
                length = 'set'
            # Without a Content-Length (upstream chunked, or removed by the rule) the body goes out chunked.
            chunked = length is None and self.command != 'HEAD' and response.status not in (204, 304)
            for name, value in response.getheaders():
                if name.lower() in HOP_BY_HOP or name.lower() in remove:
                    continue
                if name.lower() in set(h.lower() for h in set_headers):
                    continue
                self.send_header(name, value)
            for name, value in set_headers.items():
                self.send_header(name, str(value))
            if chunked:
                self.send_header('Transfer-Encoding', 'chunked')
            if action == 'truncate':
                self.send_header('Connection', 'close')
            self.end_headers()
            sent = 0
            limit = int(rule.get('after', 0)) if action == 'truncate' else None
            offset = int(rule.get('offset', 0))
            position = 0
            while self.command != 'HEAD':
                data = response.read(CHUNK)
                if not data:
                    break
                if action == 'corrupt' and position <= offset < position + len(data):
                    data = bytearray(data)
                    data[offset - position] ^= int(rule.get('xor', 0xff))
                    data = bytes(data)
                position += len(data)
                if limit is not None and sent + len(data) > limit:
                    data = data[:limit - sent]
                self._write(data, chunked)
                sent += len(data)
                if limit is not None and sent >= limit:
                    break
            if extra_bytes:
                extra = b'\0' * extra_bytes
                self._write(extra, chunked)
                sent += len(extra)
            if action == 'truncate':
                self._log(status=response.status, sent=sent, **log)
                self._abort()
                return
            if chunked:
                self.wfile.write(b'0\r\n\r\n')
            self._log(status=response.status, sent=sent, **log)
        except (OSError, http.client.HTTPException) as exc:
            self._log(status=None, sent=0, error=str(exc), **log)
            self._abort()
        finally:
            upstream.close()

    def _write(self, data, chunked):
        if not data:
            return
        if chunked:
            self.wfile.write(b'%x\r\n' % len(data) + data + b'\r\n')
        else:
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


def serve(args):
    host, port = args.listen.rsplit(':', 1)
    if host not in ('127.0.0.1', 'localhost', '::1'):
        sys.exit('fault_proxy: listens on loopback only')
    os.makedirs(args.state, exist_ok=True)
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    server.upstream = args.upstream
    server.presigned = {}
    server.timeout = args.timeout
    server.rules = Rules(os.path.join(args.state, 'rules.json'))
    server.log = _daemon.AppendLog(os.path.join(args.state, 'log.jsonl'), create=True)
    _daemon.publish(os.path.join(args.state, _daemon.PORTFILE), str(server.server_address[1]))
    _daemon.serve(server)


def start(args):
    argv = [sys.executable, os.path.abspath(__file__), 'serve', '--state', args.state, '--listen', args.listen,
            '--upstream', args.upstream, '--timeout', str(args.timeout)]
    port, pid = _daemon.start('fault_proxy', args.state, argv, 'proxy.out', fresh=('log.jsonl', 'rules.json'))
    print(json.dumps({'port': port, 'url': 'http://127.0.0.1:%d' % port, 'pid': pid}))
    return 0


def stop(args):
    pid = _daemon.stop(args.state)
    print('fault_proxy: not running' if pid is None else 'fault_proxy: stopped pid %d' % pid)
    return 0


def set_rules(args):
    rules = json.loads(args.rules)
    if not isinstance(rules, list):
        sys.exit('fault_proxy: rules must be a JSON list')
    _daemon.publish(os.path.join(args.state, 'rules.json'), json.dumps(rules))
    return 0


def show_log(args):
    print(json.dumps(_daemon.read_entries(os.path.join(args.state, 'log.jsonl'))))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    for name in ('start', 'serve'):
        p = sub.add_parser(name)
        p.add_argument('--state', required=True)
        p.add_argument('--upstream', required=True, help='host:port of the registry')
        p.add_argument('--listen', default='127.0.0.1:0', help='127.0.0.1:PORT (0: any free port)')
        p.add_argument('--timeout', type=float, default=30.0)
    for name in ('stop', 'log'):
        sub.add_parser(name).add_argument('--state', required=True)
    p = sub.add_parser('rules')
    p.add_argument('--state', required=True)
    p.add_argument('rules', help='a JSON list of rules ([] clears them)')
    args = parser.parse_args(argv)
    return {'start': start, 'serve': serve, 'stop': stop, 'rules': set_rules, 'log': show_log}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
