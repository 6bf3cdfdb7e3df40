# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one fake registry of the unit tests: a real HTTP server on 127.0.0.1 speaking the Registry API v2.

It reads (manifests by tag or digest, blobs with Range, tag lists with Link paging), writes (blob
uploads with a digest check, cross-repository mounts, manifest PUTs), deletes (manifests by digest,
OCI tag DELETE where ``delete_mode`` allows it) and fails on demand: ``fault(request)`` as
``servers.FAULTS`` says, or a test's own ``handler`` that answers some requests itself and hands
the others to ``registry.handle``. Every request is recorded in ``requests``. With
``referrers_api`` it is an OCI 1.1 registry: a manifest PUT with a ``subject`` is answered with
``OCI-Subject``, and ``GET /v2/<name>/referrers/<digest>`` lists what refers to a manifest, in
pages of ``referrers_page_size``, filtered by ``artifactType`` unless ``referrers_filter`` is off.
``GET /v2/_catalog`` lists the repositories as distribution does (``n``/``last``, a relative
``Link``), by default in pages of ``catalog_page_size``; ``catalog_refusal`` (401, 403, 404, 405)
answers it with that status instead, as registries that keep their catalog to themselves do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import ScriptedServer

JSON = {'Content-Type': 'application/json'}
ROUTES = [(re.compile(r'^/v2/(.+)/blobs/uploads/(.*)$'), '_upload'),
          (re.compile(r'^/v2/(.+)/blobs/([^/]+)$'), '_blob'),
          (re.compile(r'^/v2/(.+)/manifests/([^/]+)$'), '_manifest'),
          (re.compile(r'^/v2/(.+)/tags/(list)$'), '_tags'),
          (re.compile(r'^/v2/(.+)/referrers/([^/]+)$'), '_referrers')]
# delete_mode: how DELETE /v2/<name>/manifests/<reference> behaves.
#   'oci': tags and digests can be deleted; 'distribution': a tag DELETE is 400 DIGEST_INVALID;
#   'no-tag-delete': a tag DELETE is 405 UNSUPPORTED; 'tag-delete-404': a tag DELETE is not routed (404);
#   'disabled': every DELETE is 405 UNSUPPORTED, as a registry with deletion turned off answers.
DELETE_MODES = ('oci', 'distribution', 'no-tag-delete', 'tag-delete-404', 'disabled')


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def is_digest(reference):
    return reference.startswith('sha256:')


def registry_error(status, code, message=None, detail=None):
    """An answer carrying a Registry API error body."""
    error = {'code': code, 'message': message or code.lower()}
    if detail is not None:
        error['detail'] = detail
    return status, dict(JSON), json.dumps({'errors': [error]}).encode()


def basic_authorization(user, password):
    """The Authorization header of HTTP Basic authentication."""
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


def requiring_basic(user, password, answer, realm='r'):
    """A handler: 401 with a Basic challenge unless the request carries these credentials, else ``answer``."""
    expected = basic_authorization(user, password)

    def handler(request):
        if request['headers'].get('Authorization') != expected:
            return 401, {'WWW-Authenticate': 'Basic realm="%s"' % realm}, b''
        return answer(request)
    return handler


def client_for(server, retries=0, timeout=5, credentials=None, session=None):
    """A RegistryClient of a loopback test server (no real sleeps between retries)."""
    http = session or HTTPSession(sleep=lambda seconds: None)
    options = ConnectionConfig(credentials=credentials, timeout=timeout, retries=retries)
    return RegistryClient(http, server.host, options, loopback=True)


class Registry(ScriptedServer):
    """A fake registry; keyword arguments set the behaviour switches (see ``configure``).

    Content: ``blobs`` {digest: bytes}; ``links`` {(repository, digest)}, the repositories a blob is
    in (repository None: in every one, what ``add_blob`` without a repository gives);
    ``manifests`` {(repository, tag or digest): (media type, bytes)}, a tag and the digest it
    points at holding the same pair. Tests may edit all three directly (a tampered manifest is a
    digest key holding other bytes).
    """

    def __init__(self, **behaviour):
        ScriptedServer.__init__(self)
        self.blobs = {}
        self.links = set()
        self.manifests = {}
        self.location_style = 'absolute'   # upload Locations: 'absolute' URL, 'relative' path, 'bare' id
        self.strict = False                # refuse an index listing manifests not pushed yet (as distribution)
        self.delete_mode = 'distribution'  # one of DELETE_MODES
        self.immutable = False             # refuse a PUT over an existing tag (400 TAG_INVALID)
        self.digest_header = True          # answer manifests with Docker-Content-Digest
        self.referrers_api = False         # the OCI 1.1 referrers API (else its path is 404, as distribution 2.8)
        self.referrers_page_size = 0       # referrers per page (0: all in one)
        self.referrers_filter = True       # apply the artifactType filter (and say so in OCI-Filters-Applied)
        self.catalog_page_size = 0         # repositories per catalog page without n (0: all in one)
        self.catalog_refusal = None        # a status to answer GET /v2/_catalog with (None: the catalog)
        self.uploads = 0
        self.handler = self.handle
        self.configure(**behaviour)

    def configure(self, **behaviour):
        """Set behaviour switches by name; returns the registry."""
        for name, value in behaviour.items():
            if name not in ('location_style', 'strict', 'delete_mode', 'immutable', 'digest_header', 'referrers_api',
                            'referrers_page_size', 'referrers_filter', 'catalog_page_size', 'catalog_refusal'):
                raise TypeError('Registry has no behaviour %r' % name)
            setattr(self, name, value)
        return self

    def repository(self, name):
        return Repository(self, name)

    # -- content -----------------------------------------------------------
    def add_blob(self, data, repository=None):
        digest = digest_of(data)
        self.blobs[digest] = data
        self.links.add((repository, digest))
        return digest

    def has_blob(self, repository, digest):
        return digest in self.blobs and bool({(repository, digest), (None, digest)} & self.links)

    def add_manifest(self, repository, reference, data, media_type):
        digest = digest_of(data)
        self.manifests[(repository, digest)] = (media_type, data)
        if reference and not is_digest(reference):
            self.manifests[(repository, reference)] = (media_type, data)
        return digest

    def add_image(self, repository, tag, layers, platform=('linux', 'amd64', None), oci=True):
        """Push an image whose layers are the given bytes; return (manifest digest, config digest, layer digests)."""
        os_name, arch, variant = platform
        config = {'os': os_name, 'architecture': arch, 'rootfs': {'type': 'layers', 'diff_ids': []}}
        if variant:
            config['variant'] = variant
        config_bytes = json.dumps(config).encode()
        config_digest = self.add_blob(config_bytes, repository)
        layer_digests = [self.add_blob(layer, repository) for layer in layers]
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        manifest = json.dumps({
            'schemaVersion': 2, 'mediaType': media_type,
            'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': config_digest,
                       'size': len(config_bytes)},
            'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': d, 'size': len(layer)}
                       for d, layer in zip(layer_digests, layers)],
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

    def tags(self, repository):
        """{tag: digest} of ``repository``."""
        return dict((reference, digest_of(data)) for (name, reference), (dummy, data) in self.manifests.items()
                    if name == repository and not is_digest(reference))

    # -- serving -------------------------------------------------------------
    def handle(self, request):
        """The registry's own answer to ``request``: ``(status, headers, body)``."""
        split = urlsplit(request['path'])
        if split.path == '/v2/':
            return 200, dict(JSON), b'{}'
        if split.path == '/v2/_catalog':
            return self._catalog(request, parse_qs(split.query))
        for pattern, method in ROUTES:
            match = pattern.match(split.path)
            if match:
                return getattr(self, method)(request, match.group(1), match.group(2), parse_qs(split.query))
        return 404, {}, b''

    def _blob(self, request, repository, digest, query):
        if request['method'] not in ('GET', 'HEAD'):
            return registry_error(405, 'UNSUPPORTED')
        if not self.has_blob(repository, digest):
            return registry_error(404, 'BLOB_UNKNOWN', 'blob unknown to registry', detail=digest)
        data = self.blobs[digest]
        headers = {'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest_of(data)}
        asked = request['headers'].get('Range')
        if not asked:
            return 200, headers, data
        start = int(asked.split('=', 1)[1].split('-', 1)[0])
        headers['Content-Range'] = 'bytes %d-%d/%d' % (start, len(data) - 1, len(data))
        return 206, headers, data[start:]

    def _upload(self, request, repository, upload, query):
        if request['method'] == 'POST':
            mount, source = (query.get('mount') or [None])[0], (query.get('from') or [None])[0]
            if mount and source and self.has_blob(source, mount):
                self.links.add((repository, mount))
                return 201, {'Location': '/v2/%s/blobs/%s' % (repository, mount), 'Docker-Content-Digest': mount}, b''
            return 202, {'Location': self._location(repository)}, b''
        if request['method'] == 'PUT' and upload:
            digest = (query.get('digest') or [''])[0]
            if digest_of(request['body']) != digest:
                return registry_error(400, 'DIGEST_INVALID', 'provided digest did not match uploaded content')
            self.add_blob(request['body'], repository)
            return 201, {'Docker-Content-Digest': digest}, b''
        return registry_error(404, 'BLOB_UPLOAD_UNKNOWN')

    def _location(self, repository):
        with self.lock:
            self.uploads += 1
            upload = 'u%d' % self.uploads
        if self.location_style == 'absolute':
            return 'http://%s/v2/%s/blobs/uploads/%s?_state=abc%%3D' % (self.host, repository, upload)
        if self.location_style == 'relative':
            return '/v2/%s/blobs/uploads/%s?_state=xyz' % (repository, upload)
        return upload

    def _manifest(self, request, repository, reference, query):
        method = request['method']
        if method in ('GET', 'HEAD'):
            found = self.manifests.get((repository, reference))
            if found is None:
                return registry_error(404, 'MANIFEST_UNKNOWN', 'manifest unknown')
            media_type, data = found
            return 200, self._digest_header({'Content-Type': media_type}, digest_of(data)), data
        if method == 'PUT':
            return self._put_manifest(request, repository, reference)
        if method == 'DELETE':
            return self._delete_manifest(repository, reference)
        return registry_error(405, 'UNSUPPORTED')

    def _digest_header(self, headers, digest):
        if self.digest_header:
            headers['Docker-Content-Digest'] = digest
        return headers

    def _put_manifest(self, request, repository, reference):
        if self.immutable and not is_digest(reference) and (repository, reference) in self.manifests:
            return registry_error(400, 'TAG_INVALID')
        body = request['body']
        if self.strict:
            listed = [entry['digest'] for entry in json.loads(body).get('manifests') or []]
            if any((repository, digest) not in self.manifests for digest in listed):
                return registry_error(400, 'MANIFEST_BLOB_UNKNOWN')
            if not listed:
                time.sleep(0.2)  # image manifests are stored slowly: an index sent alongside would come first
        media_type = request['headers'].get('Content-Type')
        digest = self.add_manifest(repository, None, body, media_type)
        self.manifests[(repository, reference)] = (media_type, body)
        headers = self._digest_header({}, digest)
        subject = _subject(body)
        if self.referrers_api and subject:
            headers['OCI-Subject'] = subject
        return 201, headers, b''

    def referrers_of(self, repository, subject):
        """The descriptors of the manifests of ``repository`` whose subject is ``subject``, by digest."""
        found = []
        for (name, reference), (media_type, data) in sorted(self.manifests.items()):
            if name != repository or not is_digest(reference) or _subject(data) != subject:
                continue
            document = json.loads(data)
            artifact_type = document.get('artifactType') or (document.get('config') or {}).get('mediaType')
            entry = {'mediaType': media_type, 'digest': reference, 'size': len(data)}
            if artifact_type:
                entry['artifactType'] = artifact_type
            if document.get('annotations'):
                entry['annotations'] = document['annotations']
            found.append(entry)
        return found

    def _referrers(self, request, repository, subject, query):
        if not self.referrers_api:
            return registry_error(404, 'NOT_FOUND')
        entries = self.referrers_of(repository, subject)
        headers = {'Content-Type': OCI_INDEX}
        wanted = (query.get('artifactType') or [None])[0]
        if wanted and self.referrers_filter:
            entries = [entry for entry in entries if entry.get('artifactType') == wanted]
            headers['OCI-Filters-Applied'] = 'artifactType'
        start = int((query.get('_page') or ['0'])[0])
        size = self.referrers_page_size or len(entries) or 1
        if start + size < len(entries):
            params = urlencode([('_page', start + size)] + ([('artifactType', wanted)] if wanted else []))
            headers['Link'] = '</v2/%s/referrers/%s?%s>; rel="next"' % (repository, subject, params)
        body = {'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': entries[start:start + size]}
        return 200, headers, json.dumps(body).encode()

    def repositories(self):
        """The names of the repositories that hold a manifest, sorted (what the catalog lists)."""
        return sorted(set(name for name, dummy in self.manifests))

    def _catalog(self, request, query):
        if self.catalog_refusal is not None:
            return registry_error(self.catalog_refusal, {401: 'UNAUTHORIZED', 403: 'DENIED', 404: 'NOT_FOUND',
                                                         405: 'UNSUPPORTED'}[self.catalog_refusal])
        names = self.repositories()
        last = (query.get('last') or [None])[0]
        if last is not None:
            names = [name for name in names if name > last]
        headers = dict(JSON)
        size = int((query.get('n') or [0])[0]) or self.catalog_page_size
        if size and len(names) > size:
            names = names[:size]
            headers['Link'] = '</v2/_catalog?last=%s&n=%d>; rel="next"' % (names[-1], size)
        return 200, headers, json.dumps({'repositories': names}).encode()

    def _delete_manifest(self, repository, reference):
        if self.delete_mode == 'disabled':
            return registry_error(405, 'UNSUPPORTED')
        if not is_digest(reference) and self.delete_mode != 'oci':
            return {'distribution': registry_error(400, 'DIGEST_INVALID'),
                    'no-tag-delete': registry_error(405, 'UNSUPPORTED'),
                    'tag-delete-404': registry_error(404, 'NOT_FOUND')}[self.delete_mode]
        if (repository, reference) not in self.manifests:
            return registry_error(404, 'MANIFEST_UNKNOWN')
        del self.manifests[(repository, reference)]
        if is_digest(reference):  # deleting a manifest removes every tag pointing at it, as distribution does
            for tag in [t for t, d in self.tags(repository).items() if d == reference]:
                del self.manifests[(repository, tag)]
        return 202, {}, b''

    def _tags(self, request, repository, dummy, query):
        tags = sorted(self.tags(repository))
        if not tags and not any(name == repository for name, dummy in self.manifests):
            return registry_error(404, 'NAME_UNKNOWN', 'repository name not known to registry')
        last = (query.get('last') or [None])[0]
        if last is not None:
            tags = [tag for tag in tags if tag > last]
        headers = dict(JSON)
        size = int((query.get('n') or [0])[0])
        if size and len(tags) > size:
            tags = tags[:size]
            headers['Link'] = '</v2/%s/tags/list?n=%d&last=%s>; rel="next"' % (repository, size, tags[-1])
        return 200, headers, json.dumps({'name': repository, 'tags': tags}).encode()


def _subject(data):
    """The subject digest of manifest bytes, or None."""
    try:
        subject = json.loads(data).get('subject')
    except (ValueError, AttributeError):
        return None
    return subject.get('digest') if isinstance(subject, dict) else None


class Repository:
    """One repository of a :class:`Registry` as a tagging test reads it (each property a snapshot)."""

    def __init__(self, registry, name):
        self.registry = registry
        self.name = name

    @property
    def tags(self):
        return self.registry.tags(self.name)

    @property
    def manifests(self):
        """{digest: (media type, bytes)} of the manifests stored by digest."""
        return dict((reference, found) for (name, reference), found in self.registry.manifests.items()
                    if name == self.name and is_digest(reference))

    @property
    def blobs(self):
        return set(digest for digest in self.registry.blobs if self.registry.has_blob(self.name, digest))

    def add(self, data, media_type=DOCKER_MANIFEST, tags=()):
        digest = self.registry.add_manifest(self.name, None, data, media_type)
        for tag in tags:
            self.registry.add_manifest(self.name, tag, data, media_type)
        return digest

    @property
    def log(self):
        """Every request the registry received, as 'METHOD /path' without the query."""
        return ['%s %s' % (r['method'], r['path'].split('?', 1)[0]) for r in self.registry.requests]

    def writes(self):
        return [line for line in self.log if not line.startswith(('GET', 'HEAD'))]
