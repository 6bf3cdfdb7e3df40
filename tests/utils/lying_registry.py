#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A loopback registry that lies about manifest digests, for the digest lookup's integration test.

Whatever manifest is asked for (tag or digest), it serves the same small OCI manifest,
whose digest it prints in the info file, and:

- ``/v2/lie/head/manifests/*``: HEAD and GET answer ``Docker-Content-Digest`` of that manifest,
  so a reference pinned to another digest gets another digest back;
- ``/v2/lie/nodigest/manifests/*``: no ``Docker-Content-Digest`` header at all, so a client has
  to hash what the GET returns.

    lying_registry.py --info-file /tmp/lie.json --log /tmp/lie.log [--lifetime 240]

Binds 127.0.0.1 only, on any free port. Writes ``{"port", "pid", "served_digest"}`` to
--info-file once it listens, appends ``METHOD PATH STATUS`` lines to --log, and exits by itself
after --lifetime seconds or on SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import _daemon

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
EMPTY = {'mediaType': 'application/vnd.oci.empty.v1+json', 'size': 2,
         'digest': 'sha256:' + hashlib.sha256(b'{}').hexdigest()}
SERVED = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': EMPTY, 'layers': [EMPTY],
                     'annotations': {'what': 'not the image you pinned'}}, sort_keys=True).encode()
SERVED_DIGEST = 'sha256:' + hashlib.sha256(SERVED).hexdigest()


def make_handler(log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def _answer(self, status, headers, body):
            log.line('%s %s %d' % (self.command, self.path, status))
            _daemon.respond(self, status, headers, body)

        def do_GET(self):
            path = self.path.split('?', 1)[0]
            if path == '/v2/':
                return self._answer(200, {'Content-Type': 'application/json'}, b'{}')
            if path.startswith('/v2/lie/head/manifests/'):
                return self._answer(200, {'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': SERVED_DIGEST},
                                    SERVED)
            if path.startswith('/v2/lie/nodigest/manifests/'):
                return self._answer(200, {'Content-Type': OCI_MANIFEST}, SERVED)
            return self._answer(404, {'Content-Type': 'application/json'},
                                b'{"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}')

        do_HEAD = do_GET

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--info-file', required=True, help='write {"port", "pid", "served_digest"} here once listening')
    parser.add_argument('--log', required=True, help='append "METHOD PATH STATUS" lines here')
    parser.add_argument('--lifetime', type=float, default=240.0, help='exit after this many seconds')
    options = parser.parse_args(argv)

    log = _daemon.AppendLog(options.log, create=True)
    server = ThreadingHTTPServer(('127.0.0.1', 0), make_handler(log))
    _daemon.publish(options.info_file, json.dumps({'port': server.server_address[1], 'pid': os.getpid(),
                                                   'served_digest': SERVED_DIGEST}))
    _daemon.serve(server, lifetime=options.lifetime, poll_interval=0.1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
