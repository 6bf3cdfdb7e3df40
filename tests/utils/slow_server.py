#!/usr/bin/env python
"""A slow, lying HTTP proxy for tests: sits in front of a registry on 127.0.0.1.

Every request is forwarded to the upstream registry. A ``GET`` of a blob that
upstream answers with 200 is passed on according to ``--mode``:

    drip      the upstream status and headers (Content-Length included), then
              the body one byte every ``--interval`` seconds, for at most
              ``--max-seconds``, then the connection is closed
    nolength  the upstream status and headers without Content-Length, then the
              body followed by ``--extra`` zero bytes, then the connection is
              closed (the end of the body is the close)

Everything else is passed on unchanged. Every answer closes its connection.
Every request is logged to ``STATE/log.jsonl``: method, path, mode, status,
body bytes sent, seconds spent sending it.

CLI::

    slow_server.py start --state DIR --upstream 127.0.0.1:5100 --mode drip [--interval 0.3] [--max-seconds 60]
    slow_server.py start --state DIR --upstream 127.0.0.1:5100 --mode nolength [--extra 4194304]
    slow_server.py log --state DIR      # the JSON lines logged so far, as one JSON list
    slow_server.py stop --state DIR
    slow_server.py serve ...            # foreground

``start`` prints ``{"port": N, "pid": P}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import socketserver
import sys
import time

import _daemon

HOP_HEADERS = frozenset(('connection', 'keep-alive', 'transfer-encoding', 'content-length'))


def read_request(sock):
    """``(method, path, headers, body)`` of one request, or None."""
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
    headers = []
    for line in lines[1:]:
        name, dummy, value = line.partition(':')
        headers.append((name.strip(), value.strip()))
    wanted = int(dict((k.lower(), v) for k, v in headers).get('content-length') or 0)
    for dummy in range(65536):
        if len(body) >= wanted:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, path, headers, body


class Proxy:
    def __init__(self, args):
        self.args = args
        os.makedirs(args.state, exist_ok=True)
        self.log = _daemon.AppendLog(os.path.join(args.state, 'log.jsonl'))

    def handle(self, sock):
        sock.settimeout(30)
        request = read_request(sock)
        if request is None:
            return
        method, path, headers, body = request
        host, port = self.args.upstream.rsplit(':', 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in HOP_HEADERS:
                    upstream.putheader(name, value)
            upstream.putheader('Content-Length', str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            payload = response.read() if method != 'HEAD' else b''
        finally:
            upstream.close()
        mode = self.args.mode if method == 'GET' and '/blobs/' in path and response.status == 200 else 'pass'
        head = ['HTTP/1.1 %d %s' % (response.status, response.reason), 'Connection: close']
        head.extend('%s: %s' % (k, v) for k, v in response.getheaders() if k.lower() not in HOP_HEADERS)
        if mode != 'nolength':
            head.append('Content-Length: %s' % (response.getheader('Content-Length') or len(payload)))
        started = time.monotonic()
        sent = 0
        try:
            sock.sendall(('\r\n'.join(head) + '\r\n\r\n').encode('latin-1'))
            sent = self.send_body(sock, mode, payload)
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client hung up
        self.log.entry({'method': method, 'path': path, 'mode': mode, 'status': response.status, 'sent': sent,
                        'seconds': round(time.monotonic() - started, 3)}, sort_keys=False)

    def send_body(self, sock, mode, payload):
        if mode == 'nolength':
            payload += b'\0' * self.args.extra
        if mode != 'drip':
            sock.sendall(payload)
            return len(payload)
        stop = time.monotonic() + self.args.max_seconds
        sent = 0
        for index in range(len(payload)):
            if time.monotonic() > stop:
                break
            sock.sendall(payload[index:index + 1])
            sent += 1
            time.sleep(self.args.interval)
        return sent


def serve(args):
    proxy = Proxy(args)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                proxy.handle(self.request)
            except OSError:
                pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    host, port = args.listen.rsplit(':', 1)
    server = Server((host, int(port)), Handler)
    if args.portfile:
        _daemon.publish(args.portfile, str(server.server_address[1]))
    _daemon.serve(server, poll_interval=0.1)


def start(args):
    portfile = os.path.join(args.state, _daemon.PORTFILE)
    argv = [sys.executable, os.path.abspath(__file__), 'serve', '--state', args.state, '--upstream', args.upstream,
            '--listen', args.listen, '--mode', args.mode, '--interval', str(args.interval),
            '--max-seconds', str(args.max_seconds), '--extra', str(args.extra), '--portfile', portfile]
    failure = 'slow_server: did not start, see %s' % os.path.join(args.state, 'server.log')
    port, pid = _daemon.start('slow_server', args.state, argv, 'server.log', seconds=10, append=True, failure=failure)
    print(json.dumps({'port': port, 'pid': pid}))
    return 0


def stop(args):
    pid = _daemon.stop(args.state)
    if pid is not None:
        print('slow_server: stopped pid %d' % pid)
    return 0


def show_log(args):
    print(json.dumps(_daemon.read_entries(os.path.join(args.state, 'log.jsonl'))))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    commands = parser.add_subparsers(dest='command', required=True)
    for name in ('start', 'serve'):
        sub = commands.add_parser(name)
        sub.add_argument('--state', required=True)
        sub.add_argument('--upstream', required=True)
        sub.add_argument('--listen', default='127.0.0.1:0')
        sub.add_argument('--mode', choices=('drip', 'nolength'), required=True)
        sub.add_argument('--interval', type=float, default=0.3)
        sub.add_argument('--max-seconds', type=float, default=60.0)
        sub.add_argument('--extra', type=int, default=4 * 1024 * 1024)
        sub.add_argument('--portfile')
    for name in ('stop', 'log'):
        commands.add_parser(name).add_argument('--state', required=True)
    args = parser.parse_args()
    return {'start': start, 'serve': serve, 'stop': stop, 'log': show_log}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
