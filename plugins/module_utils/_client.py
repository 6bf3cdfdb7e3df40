# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Registry API v2 operations on manifests and blobs of one registry.

Digest truth: a manifest's digest is computed from the exact bytes received;
``Docker-Content-Digest`` is only a hint. Fetched by digest, the bytes must hash
to that digest. Fetched by tag, a header that disagrees with the bytes is an
integrity failure: the registry (or something in between) cannot be trusted.
"""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.imagelayers.registry.plugins.module_utils._auth import scope_for
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest, verify_bytes
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    redact_url,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._http import RegistryAPI
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import ACCEPT, Manifest, parse_json
from ansible_collections.imagelayers.registry.plugins.module_utils._transport import read_with_deadline

# Manifests and configs are small documents; refuse to buffer anything absurd.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_CONFIG_SIZE = 64 * 1024 * 1024


def _read_limited(response, limit, what, url, timeout):
    """The body of a small document, at most ``limit`` bytes, within its deadline (see ``_transport``)."""
    try:
        data = read_with_deadline(response, limit + 1, timeout, what)
    finally:
        response.close()
    if len(data) > limit:
        raise IntegrityError('%s is larger than %d bytes; refusing to read it' % (what, limit), url=url)
    return data


def is_loopback_host(hostname):
    """True when every address ``hostname`` stands for is a loopback address.

    Only such a registry may be spoken to over plain HTTP (see RegistryAPI). An IP
    literal decides by itself; a name is resolved, and counts only when all its
    addresses are loopback ones: ``registry.localhost`` that does not resolve, or
    resolves anywhere else, is an ordinary HTTPS registry, whatever its name says.
    """
    host = (hostname or '').strip('[]')
    try:
        return ipaddress.ip_address(host.split('%', 1)[0]).is_loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = set(info[4][0].split('%', 1)[0] for info in infos)
    try:
        return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    except ValueError:
        return False


class RegistryClient:
    """Operations on one registry host."""

    def __init__(self, http, api_host, options, loopback=False):
        self.api = RegistryAPI(http, api_host, options, loopback=loopback)
        self.api_host = api_host

    @classmethod
    def for_reference(cls, http, reference, options):
        return cls(http, reference.api_host, options, loopback=is_loopback_host(reference.hostname))

    # -- manifests --------------------------------------------------------
    def head_manifest(self, repository, reference):
        """``{'digest', 'media_type', 'size'}`` from a HEAD, or None when absent.

        ``digest`` is None when the registry sends no ``Docker-Content-Digest``.
        """
        path = '/v2/%s/manifests/%s' % (repository, reference)
        try:
            response = self.api.request('HEAD', path, scopes=[scope_for(repository, 'pull')],
                                        headers={'Accept': ACCEPT}, what='HEAD manifest %s:%s' % (repository, reference))
        except NotFoundError:
            return None
        except AuthenticationError as error:
            if error.status != 403:
                raise
            # Some registries answer 403 to a HEAD of an absent tag; a HEAD has no body to tell
            # "denied" from "unknown", a GET does (and raises the real error when denied).
            try:
                manifest = self.get_manifest(repository, reference)
            except NotFoundError:
                return None
            return {'digest': manifest.digest, 'media_type': manifest.media_type, 'size': manifest.size}
        response.close()
        digest = response.headers.get('Docker-Content-Digest')
        if digest:
            validate_digest(digest, what='Docker-Content-Digest header')
        size = response.headers.get('Content-Length')
        return {
            'digest': digest,
            'media_type': (response.headers.get('Content-Type') or '').split(';', 1)[0].strip() or None,
            'size': int(size) if size and size.isdigit() else None,
        }

    def get_manifest(self, repository, reference):
        """The manifest at ``reference`` (tag or digest); raises NotFoundError when absent."""
        path = '/v2/%s/manifests/%s' % (repository, reference)
        response = self.api.request('GET', path, scopes=[scope_for(repository, 'pull')],
                                    headers={'Accept': ACCEPT, 'Accept-Encoding': 'identity'}, stream=True,
                                    what='GET manifest %s:%s' % (repository, reference))
        url = self.api.url(path)  # after the request: the scheme of a loopback registry is known
        raw = _read_limited(response, MAX_MANIFEST_SIZE, 'The manifest %s:%s' % (repository, reference), url,
                            self.api.options.timeout)
        header_digest = response.headers.get('Docker-Content-Digest')
        manifest = Manifest(raw, response.headers.get('Content-Type'))
        if reference.startswith(('sha256:', 'sha512:')):
            algorithm = reference.split(':', 1)[0]
            actual = manifest.compute_digest(algorithm)
            if actual != reference:
                raise IntegrityError(
                    'The manifest fetched as %s@%s hashes to %s: the registry returned other content'
                    % (repository, reference, actual), url=url,
                    details={'expected_digest': reference, 'actual_digest': actual})
            manifest.digest = reference
        elif header_digest and header_digest.split(':', 1)[0] == 'sha256' and header_digest != manifest.digest:
            raise IntegrityError(
                'The registry says the manifest %s:%s has digest %s, but its bytes hash to %s; '
                'refusing to trust it' % (repository, reference, header_digest, manifest.digest),
                url=url, details={'expected_digest': header_digest, 'actual_digest': manifest.digest})
        return manifest

    def resolve(self, repository, reference):
        """Digest, media type and size of a manifest: a HEAD, or a GET when the HEAD has no digest.

        Returns None when the manifest does not exist.
        """
        head = self.head_manifest(repository, reference)
        if head is None:
            return None
        if head['digest'] and head['media_type']:
            return head
        manifest = self.get_manifest(repository, reference)
        return {'digest': manifest.digest, 'media_type': manifest.media_type, 'size': manifest.size,
                'manifest': manifest}

    def put_manifest(self, repository, reference, raw, media_type):
        """PUT manifest bytes as they are; return the digest the registry reports (or None)."""
        path = '/v2/%s/manifests/%s' % (repository, reference)
        response = self.api.request('PUT', path, scopes=[scope_for(repository, 'pull,push')],
                                    headers={'Content-Type': media_type}, data=raw, expected=(201, 200, 202),
                                    what='PUT manifest %s:%s' % (repository, reference))
        response.close()
        return response.headers.get('Docker-Content-Digest')

    # -- blobs ------------------------------------------------------------
    def head_blob(self, repository, digest):
        """Size of a blob from a HEAD, or None when absent."""
        path = '/v2/%s/blobs/%s' % (repository, digest)
        try:
            response = self.api.request('HEAD', path, scopes=[scope_for(repository, 'pull')],
                                        what='HEAD blob %s@%s' % (repository, digest))
        except NotFoundError:
            return None
        response.close()
        size = response.headers.get('Content-Length')
        return int(size) if size and size.isdigit() else -1

    def open_blob(self, repository, digest, headers=None):
        """A streaming response for a blob; the caller reads ``response.raw`` and closes it."""
        path = '/v2/%s/blobs/%s' % (repository, digest)
        request_headers = {'Accept-Encoding': 'identity'}
        request_headers.update(headers or {})
        return self.api.request('GET', path, scopes=[scope_for(repository, 'pull')], headers=request_headers,
                                stream=True, expected=(200, 206), what='GET blob %s@%s' % (repository, digest))

    def get_json_blob(self, repository, descriptor, what='blob'):
        """A small JSON blob (an image config), verified against its descriptor."""
        digest = descriptor['digest']
        validate_digest(digest, what='%s digest' % what)
        response = self.open_blob(repository, digest)
        url = self.api.url('/v2/%s/blobs/%s' % (repository, digest))
        data = _read_limited(response, MAX_CONFIG_SIZE, 'The %s %s' % (what, digest), url, self.api.options.timeout)
        verify_bytes(data, digest, what='The %s %s of %s' % (what, digest, repository), url=url)
        size = descriptor.get('size')
        if size is not None and size != len(data):
            raise IntegrityError('The %s %s is %d bytes, its descriptor says %d' % (what, digest, len(data), size),
                                 url=url)
        return parse_json(data, 'The %s %s' % (what, digest), details={'url': redact_url(url)})
