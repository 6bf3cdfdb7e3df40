# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Every endpoint of the Registry HTTP API v2 this collection uses, on one registry host.

No request path is written anywhere else: a new endpoint is a method of
:class:`RegistryClient`. Blob bytes are read through :meth:`RegistryClient.blob_reader`
(a :class:`.reader.BlobReader`), which resumes a dropped transfer with ``Range``
for every consumer.

Digest truth: a manifest's digest is computed from the exact bytes received;
``Docker-Content-Digest`` is only a hint. Fetched by digest, the bytes must hash
to that digest. Fetched by tag, a header that disagrees with the bytes is an
integrity failure: the registry (or something in between) cannot be trusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import quote, urlencode

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest, verify_bytes
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    RegistryHTTPError,
    redact_url,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    ACCEPT,
    OCI_INDEX,
    Manifest,
    parse_json,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.api import RegistryAPI
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import scope_for
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.reader import BlobReader
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.scheme import is_loopback_host
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    HTTPSession,
    read_with_deadline,
)

if TYPE_CHECKING:
    import requests

    from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference

# Manifests and configs are small documents; refuse to buffer anything absurd.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_CONFIG_SIZE = 64 * 1024 * 1024
OCTET_STREAM = {'Content-Type': 'application/octet-stream'}
# The scope of the catalog (distribution's token server grants it to admins only).
CATALOG_SCOPE = 'registry:catalog:*'
# The most of one page of a listing read by default (the caller tells a page that is too
# large by its length: one byte more than it accepts).
PAGE_LIMIT = 16 * 1024 * 1024 + 1


def _read_limited(response: 'requests.Response', limit: int, what: str, url: str, timeout: float) -> bytes:
    """The body of a small document, at most ``limit`` bytes, within its deadline."""
    try:
        data = read_with_deadline(response, limit + 1, timeout, what)
    finally:
        response.close()
    if len(data) > limit:
        raise IntegrityError('%s is larger than %d bytes; refusing to read it' % (what, limit), url=url)
    return data


def upload_location(repository: str, location: str | None) -> str:
    """The URL or ``/v2/...`` path to continue an upload at, from a ``Location`` header.

    ``Location`` answers may be relative or absolute and may carry a query string
    (distribution puts its upload state there).
    """
    if not location:
        raise RegistryHTTPError('The registry started a blob upload to %s without a Location header' % repository)
    location = location.strip()
    if '://' in location or location.startswith('/'):
        return location
    # A bare upload id (or a path relative to the uploads collection).
    return '/v2/%s/blobs/uploads/%s' % (repository, location)


def with_digest(location: str, digest: str) -> str:
    """``location`` with ``digest=<digest>`` added to its query string (existing parameters kept)."""
    base, sep, fragment = location.partition('#')
    joiner = '&' if '?' in base else '?'
    if base.endswith(('?', '&')):
        joiner = ''
    return base + joiner + 'digest=' + quote(digest, safe=':') + (sep + fragment if sep else '')


def _with_query(path: str, **params: Any) -> str:
    """``path`` with the parameters that are not None as its query string."""
    given = [(key, value) for key, value in params.items() if value is not None]
    return path + '?' + urlencode(given) if given else path


class Page(NamedTuple):
    """One page of a paged listing: its body (at most the bytes asked for), ``Link`` header and URL."""

    body: bytes
    link: str | None
    url: str


class ReferrersPage(NamedTuple):
    """One page of a referrers listing: the index, its ``Link``, its URL, and whether ``artifactType`` filtered it."""

    document: dict[str, Any]
    link: str | None
    url: str
    filtered: bool


class PutAnswer(NamedTuple):
    """What a manifest PUT answered: ``Docker-Content-Digest`` and ``OCI-Subject`` (each None when absent)."""

    digest: str | None
    subject: str | None


class RegistryClient:
    """Every operation on one registry host."""

    def __init__(self, http: HTTPSession, api_host: str, options: ConnectionConfig, loopback: bool = False) -> None:
        self.api = RegistryAPI(http, api_host, options, loopback=loopback)
        self.api_host = api_host

    @classmethod
    def for_reference(cls, http: HTTPSession, reference: ImageReference, options: ConnectionConfig) -> RegistryClient:
        """The client of the registry ``reference`` lives in."""
        return cls(http, reference.api_host, options, loopback=is_loopback_host(reference.hostname))

    # -- manifests --------------------------------------------------------
    def head_manifest(self, repository: str, reference: str) -> dict[str, Any] | None:
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

    def get_manifest(self, repository: str, reference: str) -> Manifest:
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

    def resolve(self, repository: str, reference: str) -> dict[str, Any] | None:
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

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str | None:
        """PUT manifest bytes as they are; return the digest the registry reports (or None)."""
        return self.put_manifest_subject(repository, reference, raw, media_type).digest

    def put_manifest_subject(self, repository: str, reference: str, raw: bytes, media_type: str) -> PutAnswer:
        """PUT manifest bytes as they are; the digest and the ``OCI-Subject`` the registry answered.

        A registry with the OCI 1.1 referrers API answers ``OCI-Subject`` when it accepted a
        manifest with a ``subject`` (it lists it as a referrer itself); without it, the writer
        must maintain the ``sha256-<hex>`` fallback index.
        """
        path = '/v2/%s/manifests/%s' % (repository, reference)
        response = self.api.request('PUT', path, scopes=[scope_for(repository, 'pull,push')],
                                    headers={'Content-Type': media_type}, data=raw, expected=(201, 200, 202),
                                    what='PUT manifest %s:%s' % (repository, reference))
        response.close()
        return PutAnswer(response.headers.get('Docker-Content-Digest'), response.headers.get('OCI-Subject'))

    def delete_manifest(self, repository: str, reference: str, what: str | None = None) -> None:
        """DELETE a manifest by digest, or a tag (the OCI tag DELETE, where the registry has it)."""
        path = '/v2/%s/manifests/%s' % (repository, reference)
        response = self.api.request('DELETE', path, scopes=[scope_for(repository, 'delete')],
                                    expected=(200, 202, 204), what=what or 'DELETE %s:%s' % (repository, reference))
        response.close()

    def referrers_page(self, repository: str, digest: str, artifact_type: str | None = None,
                       url: str | None = None) -> ReferrersPage | None:
        """One page of the OCI referrers index of the manifest ``digest``: the first, or the one at ``url``.

        ``artifact_type`` asks the registry to filter (it may not: ``filtered`` says whether
        it did, from ``OCI-Filters-Applied``). ``url`` comes from the previous page's ``Link``;
        following it, and its bounds, are the caller's. None when the registry has no
        referrers API (404); an index with no ``manifests`` when nothing refers to it.
        """
        validate_digest(digest, what='subject digest')
        path = url or _with_query('/v2/%s/referrers/%s' % (repository, digest), artifactType=artifact_type)
        what = 'The referrers of %s@%s' % (repository, digest)
        try:
            response = self.api.request('GET', path, scopes=[scope_for(repository, 'pull')],
                                        headers={'Accept': OCI_INDEX, 'Accept-Encoding': 'identity'}, stream=True,
                                        what='GET referrers of %s@%s' % (repository, digest))
        except NotFoundError:
            return None
        page_url = path if '://' in path else self.api.url(path)
        raw = _read_limited(response, MAX_MANIFEST_SIZE, what, page_url, self.api.options.timeout)
        index = parse_json(raw, what, details={'url': redact_url(page_url)})
        if not isinstance(index, dict) or not isinstance(index.get('manifests', []), list):
            raise IntegrityError('%s is not an image index' % what, url=page_url)
        applied = [part.strip() for part in (response.headers.get('OCI-Filters-Applied') or '').split(',')]
        return ReferrersPage(index, response.headers.get('Link'), page_url, 'artifactType' in applied)

    # -- listings ---------------------------------------------------------
    def tags_page(self, repository: str, page_size: int | None = None, url: str | None = None,
                  limit: int = PAGE_LIMIT, name: str | None = None) -> Page:
        """One page of the tag list of ``repository``: the first (``n=page_size``), or the one at ``url``.

        ``url`` comes from the previous page's ``Link``; at most ``limit`` bytes of
        the body are read (the caller tells a page that is too large by its length).
        """
        path = url or _with_query('/v2/%s/tags/list' % repository, n=page_size)
        return self._page(path, [scope_for(repository, 'pull')], 'GET tag list of %s' % (name or repository), limit)

    def catalog_page(self, page_size: int | None = None, last: str | None = None, url: str | None = None,
                     limit: int = PAGE_LIMIT) -> Page:
        """One page of the registry's catalog (``GET /v2/_catalog``, ``n``/``last``), or the one at ``url``."""
        path = url or _with_query('/v2/_catalog', n=page_size, last=last)
        return self._page(path, [CATALOG_SCOPE], 'GET catalog of %s' % self.api_host, limit)

    def _page(self, path: str, scopes: list[str], what: str, limit: int) -> Page:
        response = self.api.request('GET', path, scopes=scopes, headers={'Accept': 'application/json'}, stream=True,
                                    what=what)
        # Only now is the scheme of a loopback registry known.
        url = self.api.url(path) if '://' not in path else path
        try:
            body = read_with_deadline(response, limit, self.api.options.timeout, what)
            link = response.headers.get('Link')
        finally:
            response.close()
        return Page(body, link, url)

    # -- blobs ------------------------------------------------------------
    def head_blob(self, repository: str, digest: str) -> int | None:
        """Size of a blob from a HEAD (-1 when not given), or None when absent."""
        path = '/v2/%s/blobs/%s' % (repository, digest)
        try:
            response = self.api.request('HEAD', path, scopes=[scope_for(repository, 'pull')],
                                        what='HEAD blob %s@%s' % (repository, digest))
        except NotFoundError:
            return None
        response.close()
        size = response.headers.get('Content-Length')
        return int(size) if size and size.isdigit() else -1

    def open_blob(self, repository: str, digest: str, headers: dict[str, str] | None = None) -> 'requests.Response':
        """A streaming response for a blob; the caller reads ``response.raw`` and closes it.

        Prefer :meth:`blob_reader`, which resumes a dropped transfer.
        """
        path = '/v2/%s/blobs/%s' % (repository, digest)
        request_headers = {'Accept-Encoding': 'identity'}
        request_headers.update(headers or {})
        return self.api.request('GET', path, scopes=[scope_for(repository, 'pull')], headers=request_headers,
                                stream=True, expected=(200, 206), what='GET blob %s@%s' % (repository, digest))

    def blob_url(self, repository: str, digest: str) -> str:
        """The URL of a blob, for messages."""
        return self.api.url('/v2/%s/blobs/%s' % (repository, digest))

    def blob_reader(self, repository: str, digest: str, size: int | None = None, what: str | None = None,
                    retries: int | None = None, sleep: Callable[[float], Any] | None = None,
                    deadline_what: str | None = None) -> BlobReader:
        """A :class:`BlobReader` of a blob (not yet open); ``retries`` defaults to the connection's."""
        return BlobReader(self, repository, digest, size=size, what=what,
                          retries=self.api.options.retries if retries is None else retries,
                          sleep=sleep or self.api.http.sleep, deadline_what=deadline_what)

    def get_json_blob(self, repository: str, descriptor: dict[str, Any], what: str = 'blob') -> Any:
        """A small JSON blob (an image config), verified against its descriptor."""
        digest = descriptor['digest']
        validate_digest(digest, what='%s digest' % what)
        response = self.open_blob(repository, digest)
        url = self.blob_url(repository, digest)
        data = _read_limited(response, MAX_CONFIG_SIZE, 'The %s %s' % (what, digest), url, self.api.options.timeout)
        verify_bytes(data, digest, what='The %s %s of %s' % (what, digest, repository), url=url)
        size = descriptor.get('size')
        if size is not None and size != len(data):
            raise IntegrityError('The %s %s is %d bytes, its descriptor says %d' % (what, digest, len(data), size),
                                 url=url)
        return parse_json(data, 'The %s %s' % (what, digest), details={'url': redact_url(url)})

    # -- uploads ----------------------------------------------------------
    def start_upload(self, repository: str) -> str:
        """POST an upload; the location (URL or ``/v2/...`` path) to send the blob to."""
        response = self._post_upload(repository, '', [], (202,), 'start blob upload to %s' % repository)
        return upload_location(repository, response.headers.get('Location'))

    def mount_blob(self, repository: str, digest: str, mount_from: str) -> str | None:
        """POST a cross-repository mount of blob ``digest`` from ``mount_from``.

        None when mounted (201), else the location of the upload the registry started instead
        (202). The mount asks for pull on the source in the same token: the registry checks it
        right when it mounts.
        """
        query = '?mount=%s&from=%s' % (quote(digest, safe=':'), quote(mount_from, safe='/'))
        response = self._post_upload(repository, query, [scope_for(mount_from, 'pull')], (201, 202),
                                     'mount blob %s from %s into %s' % (digest, mount_from, repository))
        if response.status_code == 201:
            return None
        return upload_location(repository, response.headers.get('Location'))

    def _post_upload(self, repository: str, query: str, scopes: list[str], expected: tuple[int, ...],
                     what: str) -> requests.Response:
        path = '/v2/%s/blobs/uploads/%s' % (repository, query)
        response = self.api.request('POST', path, scopes=[scope_for(repository, 'pull,push')] + scopes,
                                    expected=expected, what=what)
        response.close()
        return response

    def finish_upload(self, repository: str, location: str, digest: str, body: Any) -> 'requests.Response':
        """The monolithic PUT of ``body`` (bytes or a VerifiedBody) to ``location`` with ``?digest=``."""
        response = self.api.request(
            'PUT', with_digest(location, digest), scopes=[scope_for(repository, 'pull,push')], data=body,
            headers=OCTET_STREAM, expected=(201, 204), what='upload blob %s to %s' % (digest, repository))
        response.close()
        answered = response.headers.get('Docker-Content-Digest')
        if answered and answered != digest:
            raise IntegrityError('The registry stored the blob uploaded as %s in %s as %s'
                                 % (digest, repository, answered),
                                 details={'expected_digest': digest, 'actual_digest': answered})
        return response
