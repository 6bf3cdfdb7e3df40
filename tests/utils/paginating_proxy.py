#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A loopback HTTP proxy in front of a test registry that paginates tag listings.

distribution 2.8 returns every tag in one answer; real registries (Docker Hub,
GHCR, ECR, Harbor) page them with ``Link: <...>; rel="next"``. This proxy
forwards every request to the upstream registry unchanged, except
``GET /v2/<name>/tags/list``, which it answers itself from the upstream's full
list, in pages of ``n`` (or ``--page-size``) after ``last``, the way the OCI
distribution spec describes. The ``next`` link is relative on odd pages and
absolute on even ones, so clients must handle both. ``--junk`` adds ``null``
and digest-looking entries to the first page, as some registries do.
``--endless`` plays a hostile registry instead: every tag list answer (of any
repository, without asking the upstream) has one new tag and a ``Link`` to a
URL never used before, so a client without a page bound never stops.

``--referrers`` makes it a registry WITH the OCI 1.1 referrers API in front of one without
(distribution 2.8): a manifest PUT whose body has a ``subject`` is forwarded, then its descriptor
(mediaType, digest, size, artifactType or else config.mediaType, annotations) is recorded under
(repository, subject digest) and the answer carries ``OCI-Subject: <subject digest>``;
``GET /v2/<name>/referrers/<digest>`` is answered from what was recorded, as an OCI image index,
in pages of ``--page-size`` linked with ``Link: <...>; rel="next"``, with the ``artifactType``
query filter applied and ``OCI-Filters-Applied: artifactType`` (``--no-filter`` ignores the
filter and omits the header, as registries that do not filter do). What it records lives in
memory, and in ``--referrers-state`` (a JSON file, rewritten on every record) when given.

``--no-catalog`` plays a registry that does not offer its catalog (GHCR, Docker Hub): every
``GET /v2/_catalog`` is answered 404 with a ``NOT_FOUND`` error body, without asking the upstream.

    paginating_proxy.py --upstream 127.0.0.1:5100 --info-file /tmp/proxy.json [--page-size 3] [--junk | --endless]
    paginating_proxy.py --upstream 127.0.0.1:5100 --info-file /tmp/proxy.json --referrers [--no-filter]

Binds 127.0.0.1 only, on --port (0: any free port). Writes
``{"port": N, "pid": P}`` to --info-file once it listens, appends
``METHOD PATH STATUS`` lines to --log, and exits by itself after --lifetime
seconds (default 600) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import _daemon

HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailers',
              'transfer-encoding', 'upgrade', 'host', 'content-length'}
MAX_BODY = 256 * 1024 * 1024
JUNK = [None, 'sha256:' + 'a' * 64, '']
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MANIFEST_PATH = re.compile(r'^/v2/(.+)/manifests/([^/]+)$')
REFERRERS_PATH = re.compile(r'^/v2/(.+)/referrers/([^/]+)$')


class Referrers:
    """What the proxy recorded: {(repository, subject digest): [descriptor]}, in memory and optionally a file."""

    def __init__(self, state_file=None):
        self.lock = threading.Lock()
        self.state_file = state_file
        self.entries = {}

    def record(self, repository, media_type, body):
        """Record a manifest PUT; returns its subject digest, or None when it has none."""
        try:
            document = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            return None
        subject = document.get('subject') if isinstance(document, dict) else None
        if not isinstance(subject, dict) or not isinstance(subject.get('digest'), str):
            return None
        descriptor = {'mediaType': document.get('mediaType') or media_type,
                      'digest': 'sha256:' + hashlib.sha256(body).hexdigest(), 'size': len(body)}
        artifact_type = document.get('artifactType') or (document.get('config') or {}).get('mediaType')
        if artifact_type:
            descriptor['artifactType'] = artifact_type
        if document.get('annotations'):
            descriptor['annotations'] = document['annotations']
        with self.lock:
            listed = self.entries.setdefault((repository, subject['digest']), [])
            if not any(entry['digest'] == descriptor['digest'] for entry in listed):
                listed.append(descriptor)
            self._save()
        return subject['digest']

    def _save(self):
        if self.state_file:
            state = [{'repository': r, 'subject': s, 'manifests': m} for (r, s), m in sorted(self.entries.items())]
            _daemon.publish(self.state_file, json.dumps(state, indent=1))

    def of(self, repository, subject):
        with self.lock:
            return list(self.entries.get((repository, subject), []))


def make_handler(options, log):
    counter = itertools.count(1)
    referrers = Referrers(options.referrers_state) if options.referrers else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle and delayed ACKs add
        # 40 ms to every answer, 40 s to the thousand pages of --endless.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def _log(self, status):
            if log:
                log.line('%s %s %s' % (self.command, self.path, status))

        def _upstream(self, method, path, headers, body):
            conn = http.client.HTTPConnection(options.upstream, timeout=60)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(MAX_BODY) if method != 'HEAD' else b''
                return response.status, response.getheaders(), data
            finally:
                conn.close()

        def _send(self, status, headers, data):
            self.send_response(status)
            length = str(len(data))
            for key, value in headers:
                if key.lower() == 'content-length' and self.command == 'HEAD':
                    length = value  # a HEAD answer tells the size of what a GET would send
                elif key.lower() not in HOP_BY_HOP and key.lower() not in ('date', 'server'):
                    self.send_header(key, value)
            self.send_header('Content-Length', length)
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(data)
            self._log(status)

        def _serve(self):
            length = int(self.headers.get('Content-Length') or 0)
            if length > MAX_BODY:
                self._send(413, [], b'')
                return
            body = self.rfile.read(length) if length else None
            headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP)
            parts = urlsplit(self.path)
            if self.command == 'GET' and parts.path.startswith('/v2/') and parts.path.endswith('/tags/list'):
                self._tags(parts, headers)
                return
            if options.no_catalog and parts.path == '/v2/_catalog':
                self._send(404, [('Content-Type', 'application/json')],
                           b'{"errors":[{"code":"NOT_FOUND","message":"catalog not offered"}]}')
                return
            if referrers is not None and self.command == 'GET' and REFERRERS_PATH.match(parts.path):
                self._referrers(parts)
                return
            status, response_headers, data = self._upstream(self.command, self.path, headers, body)
            manifest = MANIFEST_PATH.match(parts.path)
            if referrers is not None and self.command == 'PUT' and manifest and status == 201 and body:
                subject = referrers.record(manifest.group(1), self.headers.get('Content-Type'), body)
                if subject:
                    response_headers = list(response_headers) + [('OCI-Subject', subject)]
            self._send(status, response_headers, data)

        def _referrers(self, parts):
            """The referrers index of a subject from what was recorded: paged, filtered unless --no-filter."""
            match = REFERRERS_PATH.match(parts.path)
            entries = referrers.of(match.group(1), match.group(2))
            query = parse_qs(parts.query)
            out = [('Content-Type', OCI_INDEX)]
            wanted = query.get('artifactType', [None])[0]
            if wanted and not options.no_filter:
                entries = [entry for entry in entries if entry.get('artifactType') == wanted]
                out.append(('OCI-Filters-Applied', 'artifactType'))
            start = int(query.get('_page', ['0'])[0])
            page = entries[start:start + options.page_size]
            if start + options.page_size < len(entries):
                params = [('_page', start + options.page_size)] + ([('artifactType', wanted)] if wanted else [])
                out.append(('Link', '<%s?%s>; rel="next"' % (parts.path, urlencode(params))))
            self._send(200, out, json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX,
                                             'manifests': page}).encode('utf-8'))

        def _endless(self, parts):
            number = next(counter)
            target = '%s?%s' % (parts.path, urlencode({'n': 1, 'last': 'endless-%d' % number}))
            out = [('Content-Type', 'application/json'), ('Link', '<%s>; rel="next"' % target)]
            name = parts.path[len('/v2/'):-len('/tags/list')]
            self._send(200, out, json.dumps({'name': name, 'tags': ['endless-%d' % number]}).encode('utf-8'))

        def _tags(self, parts, headers):
            if options.endless:
                self._endless(parts)
                return
            status, response_headers, data = self._upstream('GET', parts.path, headers, None)
            if status != 200:
                self._send(status, response_headers, data)
                return
            listing = json.loads(data.decode('utf-8'))
            tags = sorted(listing.get('tags') or [])
            query = parse_qs(parts.query)
            size = int(query['n'][0]) if 'n' in query else options.page_size
            last = query.get('last', [None])[0]
            remaining = [t for t in tags if last is None or t > last]
            page = remaining[:size]
            first = last is None
            entries = list(page)
            if first and options.junk:
                entries = JUNK[:2] + entries + [JUNK[0]]
                if page:
                    entries.append(page[0])  # a duplicate, as some registries repeat the boundary
            out = [('Content-Type', 'application/json')]
            if len(remaining) > size and page:
                target = '%s?%s' % (parts.path, urlencode({'n': size, 'last': page[-1]}))
                page_number = 1 + (len(tags) - len(remaining)) // max(size, 1)
                if page_number % 2 == 0:
                    target = 'http://%s%s' % (self.headers.get('Host'), target)
                out.append(('Link', '<%s>; rel="next"' % target))
            self._send(200, out, json.dumps({'name': listing.get('name'), 'tags': entries}).encode('utf-8'))

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--upstream', required=True, help='host:port of the plain-HTTP upstream registry')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--page-size', type=int, default=3, help='tags per page when the client sends no n')
    parser.add_argument('--junk', action='store_true', help='add null and digest entries to the first page')
    parser.add_argument('--endless', action='store_true',
                        help='answer every tag list with one new tag and a link to a new page, forever')
    parser.add_argument('--referrers', action='store_true',
                        help='play a registry with the OCI 1.1 referrers API (OCI-Subject, GET .../referrers/...)')
    parser.add_argument('--no-filter', action='store_true',
                        help='with --referrers: ignore the artifactType filter and omit OCI-Filters-Applied')
    parser.add_argument('--referrers-state', help='with --referrers: also keep what was recorded in this JSON file')
    parser.add_argument('--no-catalog', action='store_true',
                        help='answer GET /v2/_catalog with 404, as registries without a catalog do')
    parser.add_argument('--info-file', help='write {"port", "pid"} here once listening')
    parser.add_argument('--log', help='append "METHOD PATH STATUS" lines here')
    parser.add_argument('--lifetime', type=float, default=600.0, help='exit after this many seconds')
    options = parser.parse_args(argv)
    if options.page_size < 1:
        parser.error('--page-size must be positive')

    log = _daemon.AppendLog(options.log) if options.log else None
    server = ThreadingHTTPServer(('127.0.0.1', options.port), make_handler(options, log))
    if options.info_file:
        _daemon.publish(options.info_file, json.dumps({'port': server.server_address[1], 'pid': os.getpid()}))
    _daemon.serve(server, lifetime=options.lifetime, poll_interval=0.1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
