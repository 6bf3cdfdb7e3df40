# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small in-process registry on 127.0.0.1 serving blobs and manifests, with scripted faults.

Faults are dicts returned by ``registry.fault(request)`` (None: behave):
``truncate``: close after N body bytes; ``corrupt``: flip the body byte at an
offset; ``content_length``: announce this length; ``ignore_range``: answer a
Range request with the whole blob (200); ``chunked``: send without
Content-Length, with ``extra`` bytes appended; ``status``: answer this status; ``drip``: send the body
one byte every ``drip`` seconds (at most ``drip_bytes`` of them, then hang up).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.loopback_server import LoopbackServer


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    def __init__(self):
        self.blobs = {}
        self.manifests = {}
        self.requests = []
        self.fault = lambda request: None
        self.lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    registry.serve(self)
                except OSError:  # the client hung up, as a verifier that stopped reading does
                    self.close_connection = True

            do_HEAD = do_GET

        self.loopback = LoopbackServer(Handler)
        self.host = self.loopback.host

    def close(self):
        self.loopback.close()

    # -- content -----------------------------------------------------------
    def add_blob(self, data):
        digest = digest_of(data)
        self.blobs[digest] = data
        return digest

    def add_manifest(self, repository, reference, data, media_type):
        digest = digest_of(data)
        self.manifests[(repository, digest)] = (media_type, data)
        if reference and not reference.startswith('sha256:'):
            self.manifests[(repository, reference)] = (media_type, data)
        return digest

    def add_image(self, repository, tag, layers, platform=('linux', 'amd64', None), oci=True):
        """Push an image whose layers are the given bytes; return (manifest digest, config digest, layer digests)."""
        os_name, arch, variant = platform
        config = {'os': os_name, 'architecture': arch, 'rootfs': {'type': 'layers', 'diff_ids': []}}
        if variant:
            config['variant'] = variant
        config_bytes = json.dumps(config).encode()
        config_digest = self.add_blob(config_bytes)
        layer_digests = [self.add_blob(layer) for layer in layers]
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        manifest = json.dumps({
            'schemaVersion': 2, 'mediaType': media_type,
            'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': config_digest,
                       'size': len(config_bytes)},
            'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': d, 'size': len(l)}
                       for d, l in zip(layer_digests, layers)],
        }).encode()
        return self.add_manifest(repository, tag, manifest, media_type), config_digest, layer_digests

    def add_index(self, repository, tag, children):
        """children: [(manifest digest, platform tuple)]."""
        entries = []
        for digest, (os_name, arch, variant) in children:
            media_type, data = self.manifests[(repository, digest)]
            platform = {'os': os_name, 'architecture': arch}
            if variant:
                platform['variant'] = variant
            entries.append({'mediaType': media_type, 'digest': digest, 'size': len(data), 'platform': platform})
        data = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': entries}).encode()
        return self.add_manifest(repository, tag, data, OCI_INDEX)

    # -- serving -------------------------------------------------------------
    def serve(self, handler):
        path = handler.path
        request = {'method': handler.command, 'path': path, 'headers': dict(handler.headers),
                   'client': handler.client_address}
        with self.lock:
            self.requests.append(request)
        fault = self.fault(request) or {}
        parts = path.split('/')
        if fault.get('status'):
            return self._answer(handler, fault['status'], {}, b'')
        if '/blobs/' in path:
            digest = parts[-1]
            data = self.blobs.get(digest)
            if data is None:
                body = json.dumps({'errors': [{'code': 'BLOB_UNKNOWN', 'message': 'blob unknown to registry',
                                               'detail': digest}]}).encode()
                return self._answer(handler, 404, {'Content-Type': 'application/json'}, body)
            return self._send_blob(handler, data, fault)
        if '/manifests/' in path:
            repository = '/'.join(parts[2:-2])
            found = self.manifests.get((repository, parts[-1]))
            if found is None:
                body = json.dumps({'errors': [{'code': 'MANIFEST_UNKNOWN', 'message': 'manifest unknown'}]}).encode()
                return self._answer(handler, 404, {'Content-Type': 'application/json'}, body)
            media_type, data = found
            return self._answer(handler, 200, {'Content-Type': media_type, 'Docker-Content-Digest': digest_of(data)},
                                data)
        return self._answer(handler, 404, {}, b'')

    def _answer(self, handler, status, headers, body):
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header('Content-Length', str(len(body)))
        handler.end_headers()
        if handler.command != 'HEAD':
            handler.wfile.write(body)

    def _send_blob(self, handler, data, fault):
        start = 0
        status = 200
        range_header = handler.headers.get('Range')
        if range_header and not fault.get('ignore_range'):
            start = int(range_header.split('=', 1)[1].split('-', 1)[0])
            status = 206
        body = data[start:]
        if 'corrupt' in fault:
            body = bytearray(body)
            body[fault['corrupt']] ^= 0xff
            body = bytes(body)
        handler.send_response(status)
        handler.send_header('Content-Type', 'application/octet-stream')
        handler.send_header('Docker-Content-Digest', digest_of(data))
        if status == 206:
            handler.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))
        if fault.get('chunked'):
            handler.send_header('Transfer-Encoding', 'chunked')
            handler.send_header('Connection', 'close')
            handler.end_headers()
            if handler.command != 'HEAD':
                payload = body + b'\0' * fault.get('extra', 0)
                for offset in range(0, len(payload), 65536):
                    piece = payload[offset:offset + 65536]
                    handler.wfile.write(b'%x\r\n' % len(piece) + piece + b'\r\n')
                handler.wfile.write(b'0\r\n\r\n')
            handler.close_connection = True
            return
        handler.send_header('Content-Length', str(fault.get('content_length', len(body))))
        if 'truncate' in fault:
            handler.send_header('Connection', 'close')
        handler.end_headers()
        if handler.command == 'HEAD':
            return
        if 'drip' in fault:
            for offset in range(min(len(body), fault.get('drip_bytes', 50))):
                handler.wfile.write(body[offset:offset + 1])
                handler.wfile.flush()
                time.sleep(fault['drip'])
            handler.close_connection = True
            return
        if 'truncate' in fault:
            handler.wfile.write(body[:fault['truncate']])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)


def client_for(registry, retries=0, session=None):
    http = session or HTTPSession(sleep=lambda seconds: None)
    return RegistryClient(http, registry.host, ConnectionConfig(timeout=5, retries=retries), loopback=True)
