# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The request loop of one registry host: scheme, credentials, retries, and error answers as exceptions.

Where credentials may go: ``Authorization`` is sent only to the exact origin
(scheme, host, port) the registry was reached at (or, for a token request, the
realm's origin); any change of scheme, host or port drops it. A step from
HTTPS to plain HTTP (a redirect, a ``Link``, an upload ``Location``, a realm) is
refused outright unless plain HTTP is allowed for that registry, which only a
loopback registry that does not speak TLS is. Whatever a registry answers is
stripped of every form of the credentials and tokens before it becomes a message.

Only :mod:`.client` calls :meth:`RegistryAPI.request`: the endpoints live there.
"""

from __future__ import annotations

from typing import Any, Iterable

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    NotFoundError,
    RegistryError,
    RegistryHTTPError,
    TransportError,
    UnsupportedError,
    mask_secrets,
    redact_url,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import (
    Authenticator,
    answer_challenge,
    prefetch_token,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.scheme import (
    discover_scheme,
    is_client_certificate_problem,
    tls_error,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    MAX_RETRY_WAIT,
    HTTPSession,
    backoff,
    check_scheme,
    decode_error_body,
    describe_errors,
    describe_exception,
    load_content,
    parse_retry_after,
    url_origin,
)

try:
    import requests.exceptions
except ImportError:  # the module reports missing_required_lib('requests')
    pass

RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
# The most of a non-streamed answer that is loaded (they are empty or small documents).
NON_STREAMED_LIMIT = 4 * 1024 * 1024
NOT_FOUND_CODES = frozenset(('MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN', 'TAG_UNKNOWN',
                             'BLOB_UPLOAD_UNKNOWN', 'MANIFEST_BLOB_UNKNOWN'))


def error_from_response(response: 'requests.Response', method: str, url: str, attempts: int | None = None,
                        what: str | None = None, secrets: Iterable[str] = (), timeout: float = 60.0) -> RegistryError:
    """Build the exception for an error answer, with ``secrets`` masked in everything it says."""
    status = response.status_code
    errors = decode_error_body(response, secrets, timeout)
    codes = [e['code'] for e in errors if e.get('code')]
    described = describe_errors(errors)
    subject = what or '%s %s' % (method, redact_url(url))
    msg = '%s failed: HTTP %d %s' % (subject, status, response.reason or '')
    msg = msg.rstrip()
    if described:
        msg += ' (%s)' % described
    cls: type[RegistryHTTPError]
    if status == 404 or NOT_FOUND_CODES.intersection(codes):
        cls = NotFoundError
    elif status in (401, 403) or 'DENIED' in codes or 'UNAUTHORIZED' in codes:
        cls = AuthenticationError
    elif status == 405 or 'UNSUPPORTED' in codes:
        cls = UnsupportedError
    else:
        cls = RegistryHTTPError
    if attempts and attempts > 1:
        msg += ' after %d attempts' % attempts
    return cls(mask_secrets(msg, secrets), status=status, url=mask_secrets(url, secrets), codes=codes,
               errors=errors, attempts=attempts)


class RegistryAPI:
    """One registry host, reached through a shared HTTPSession."""

    def __init__(self, http: HTTPSession, api_host: str, options: ConnectionConfig, loopback: bool = False) -> None:
        self.http = http
        self.api_host = api_host
        self.options = options
        self.loopback = loopback
        self.auth = Authenticator(options.credentials, api_host)
        # Loopback registries may speak plain http, as docker allows; find out on first use.
        self.scheme: str | None = None if loopback else 'https'

    def url(self, path: str) -> str:
        """The URL of ``path`` with the scheme in use (https until a loopback registry's is known)."""
        return '%s://%s%s' % (self.scheme or 'https', self.api_host, path)

    @property
    def plain_http_allowed(self) -> bool:
        """Only for a loopback registry whose scheme discovery settled on plain HTTP."""
        return self.loopback and self.scheme == 'http'

    def origin(self, scheme: str | None = None) -> tuple[str, str, int | None] | None:
        """``url_origin`` of this registry over ``scheme`` (default: the one in use)."""
        return url_origin('%s://%s/' % (scheme or self.scheme or 'https', self.api_host))

    def secrets(self) -> list[str]:
        """Every form of the credentials and received tokens, masked in whatever an answer makes us say."""
        return self.auth.secrets()

    # -- the request loop -------------------------------------------------
    def request(self, method: str, path: str, scopes: Iterable[str] = (), headers: dict[str, str] | None = None,
                data: Any = None, stream: bool = False, expected: Iterable[int] = (200,), what: str | None = None,
                retry: bool = True) -> 'requests.Response':
        """Send a request to ``path`` (``/v2/...``, or an absolute URL from the registry's answers).

        Returns the response when its status is in ``expected``; raises otherwise.
        Only replayable requests (no body, or a bytes body) are retried. An
        absolute URL gets the credentials only when it is on the registry's own
        origin, and is refused when it is plain HTTP for an HTTPS registry.
        """
        try:
            return self._request(method, path, list(scopes), headers, data, stream, tuple(expected), what, retry)
        except RegistryError as error:
            # Messages built from the registry's answers are masked where they are made;
            # this catches anything else that could quote them.
            _mask_error(error, self.secrets())
            raise

    def _request(self, method: str, path: str, scopes: list[str], headers: dict[str, str] | None, data: Any,
                 stream: bool, expected: tuple[int, ...], what: str | None, retry: bool) -> 'requests.Response':
        replayable = data is None or isinstance(data, (bytes, str))
        max_attempts = 1 + (self.options.retries if retry and replayable else 0)
        attempt = 0
        auth_retries = 0
        while True:
            attempt += 1
            request_headers = dict(headers or {})
            prefetch_token(self, scopes)
            request_headers.update(self.auth.headers(scopes))
            try:
                response = self._send_with_scheme(method, path, request_headers, data)
            except requests.exceptions.SSLError as exc:
                raise tls_error(exc, self._absolute(path), self.api_host, self.options)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                url = self._absolute(path)
                if is_client_certificate_problem(exc):
                    # the server refused our (missing) client certificate
                    raise tls_error(exc, url, self.api_host, self.options)
                if attempt < max_attempts:
                    self.http.sleep(backoff(attempt))
                    continue
                raise TransportError(
                    '%s %s failed after %d attempt%s: %s'
                    % (method, redact_url(url), attempt, '' if attempt == 1 else 's', describe_exception(exc)),
                    url=url, attempts=attempt)
            # Only now is the scheme of a loopback registry known: messages show the one used.
            url = self._absolute(path)
            if response.status_code == 401 and auth_retries < 2:
                auth_retries += 1
                attempt -= 1  # an auth round trip is not a failed attempt
                if answer_challenge(self, response, scopes, url):
                    if not replayable:
                        # The streamed body went out (at least in part) and cannot be sent again from
                        # here: the caller starts it over, now with the fresh credentials.
                        raise TransportError(
                            '%s %s was refused with a new authentication challenge after its body was sent; '
                            'the credentials are renewed, the body must be sent again' % (method, redact_url(url)),
                            url=url, attempts=attempt + 1, details={'reauthenticated': True})
                    continue
            if response.status_code in RETRY_STATUSES and attempt < max_attempts:
                wait = parse_retry_after(response.headers.get('Retry-After'))
                wait = backoff(attempt) if wait is None else min(wait, MAX_RETRY_WAIT)
                response.close()
                self.http.sleep(wait)
                continue
            if response.status_code in expected:
                if not stream:
                    # Loaded now, within its deadline, so the connection goes back to the pool.
                    load_content(response, NON_STREAMED_LIMIT, self.options.timeout,
                                 what or '%s %s' % (method, redact_url(url)))
                return response
            raise self._error(response, method, url, attempt, what, scopes)

    def _error(self, response: 'requests.Response', method: str, url: str, attempt: int, what: str | None,
               scopes: list[str]) -> RegistryError:
        """The exception for an error answer (closed), with the scopes a token did not grant."""
        error = error_from_response(response, method, url, attempts=attempt, what=what, secrets=self.secrets(),
                                    timeout=self.options.timeout)
        response.close()
        if error.status in (401, 403) and self.auth.scheme == 'bearer' and scopes:
            credentials = self.auth.credentials
            who = ('anonymous access' if credentials.is_empty
                   else 'the credentials from %s' % credentials.describe())
            error.msg += '. The token service did not grant %s to %s' % (' '.join(scopes), who)
        return error

    def _absolute(self, path: str) -> str:
        return path if '://' in path else self.url(path)

    def _send_with_scheme(self, method: str, path: str, headers: dict[str, str], data: Any) -> 'requests.Response':
        if '://' in path:
            return self._send_absolute(method, path, headers, data)
        if self.scheme is None:
            return discover_scheme(self, method, path, headers, data)
        return self.send(method, self.url(path), headers, data)

    def send(self, method: str, url: str, headers: dict[str, str], data: Any,
             scheme: str | None = None) -> 'requests.Response':
        """One request to this registry over ``scheme`` (default: the one in use), redirects followed."""
        scheme = scheme or self.scheme
        return self.http.send(method, url, headers, self.options, data=data, auth_origin=self.origin(scheme),
                              allow_plain=self.loopback and scheme == 'http', direct=self.loopback)

    def _send_absolute(self, method: str, url: str, headers: dict[str, str], data: Any) -> 'requests.Response':
        """An absolute URL from an answer (a ``Link``, an upload ``Location``).

        Credentials go along only when it is on the registry's own origin (``send``
        drops them otherwise); plain HTTP only where plain HTTP is allowed.
        """
        check_scheme(method, url, self.plain_http_allowed)
        return self.send(method, url, headers, data, scheme=self.scheme or 'https')


def _mask_error(error: RegistryError, secrets: list[str]) -> None:
    """Mask ``secrets`` in everything ``error`` says (message, registry errors, details) in place."""
    error.msg = mask_secrets(error.msg, secrets)
    error.args = (error.msg,)
    error.errors = mask_secrets(error.errors, secrets)
    error.details = mask_secrets(error.details, secrets)
    error.url = mask_secrets(error.url, secrets)
