# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""HTTP for the registry API: one session, timeouts, TLS, retries, redirects, auth.

``HTTPSession`` is the one ``requests.Session`` of a module run. ``RegistryAPI``
talks to one registry host through it: it picks the scheme, authenticates,
retries what is safe to retry, follows redirects and turns error answers into
the exceptions of ``_errors``.

Where credentials may go: ``Authorization`` is sent only to the exact origin
(scheme, host, port) the registry was reached at (or, for a token request, the
realm's origin); any change of scheme, host or port drops it. A step from
HTTPS to plain HTTP (a redirect, a ``Link``, an upload ``Location``, a realm) is
refused outright unless plain HTTP is allowed for that registry, which only a
loopback registry that does not speak TLS is. Whatever a registry answers is
stripped of every form of the credentials and tokens before it becomes a message.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
import traceback
from urllib.parse import urlencode, urljoin, urlsplit

from ansible_collections.imagelayers.registry.plugins.module_utils._auth import Authenticator, Credentials
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    NotFoundError,
    RegistryHTTPError,
    RegistryError,
    TransportError,
    UnsupportedError,
    mask_secrets,
    redact_url,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._transport import (
    DeadlineExceeded,
    describe_exception,
    load_content,
    read_with_deadline,
)

try:
    import requests
    import requests.exceptions
    import requests.utils
    import urllib3
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:  # the module reports missing_required_lib('requests')
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

COLLECTION_VERSION = '0.1.0'
USER_AGENT = 'imagelayers.registry/%s (Ansible collection)' % COLLECTION_VERSION

RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
MAX_REDIRECTS = 5
# Backoff: 0.5 s, 1 s, 2 s, ... with jitter, and no single wait longer than this,
# whatever Retry-After asks for.
BACKOFF_BASE = 0.5
MAX_RETRY_WAIT = 30.0
ERROR_BODY_LIMIT = 65536
# A token service answers a small JSON document; refuse to wait for more.
TOKEN_BODY_LIMIT = 1024 * 1024
# The most of a non-streamed answer that is loaded (they are empty or small documents).
NON_STREAMED_LIMIT = 4 * 1024 * 1024
DEFAULT_PORTS = {'http': 80, 'https': 443}
NOT_FOUND_CODES = frozenset(('MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN', 'TAG_UNKNOWN',
                             'BLOB_UPLOAD_UNKNOWN', 'MANIFEST_BLOB_UNKNOWN'))


class ConnectionOptions:
    """The shared connection options of every module and plugin."""

    def __init__(self, credentials=None, validate_certs=True, ca_path=None, timeout=60.0, retries=3,
                 client_cert=None, client_key=None):
        self.credentials = credentials
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.client_cert = client_cert
        self.client_key = client_key

    @property
    def cert(self):
        """The client certificate for mutual TLS, as requests takes it (None, a path or (cert, key))."""
        if not self.client_cert:
            return None
        return (self.client_cert, self.client_key) if self.client_key else self.client_cert

    def with_credentials(self, credentials):
        """A copy of these options with other credentials (the rest is shared)."""
        copy = ConnectionOptions(credentials=credentials, validate_certs=self.validate_certs, ca_path=self.ca_path,
                                 timeout=self.timeout, retries=self.retries, client_cert=self.client_cert,
                                 client_key=self.client_key)
        return copy

    @property
    def verify(self):
        if not self.validate_certs:
            return False
        return self.ca_path or True


def parse_retry_after(value, now=None):
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def url_origin(url):
    """``(scheme, host, port)`` of ``url``, default ports filled in; None when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or '').lower(), port if port is not None else DEFAULT_PORTS.get(scheme)


def decode_error_body(response, secrets=(), timeout=60.0):
    """Return the ``errors`` list of a registry JSON error body, or [].

    Every form of ``secrets`` is masked: a registry may echo the Authorization header.
    The body is read within its deadline (see ``_transport``).
    """
    content_type = response.headers.get('Content-Type', '')
    raw = b''
    if response.raw is not None:
        try:
            raw = read_with_deadline(response, ERROR_BODY_LIMIT, timeout,
                                     'the error answer of %s' % redact_url(response.url))
        except DeadlineExceeded:
            raise  # a body that does not arrive in time is an error of its own
        except Exception:  # a broken error body must not hide the error itself
            raw = b''
    try:
        if not raw:
            return []
        if 'json' not in content_type and not raw.lstrip().startswith(b'{'):
            return []
        body = json.loads(raw.decode('utf-8', 'replace'))
    except Exception:  # a broken error body must not hide the error itself
        return []
    errors = body.get('errors') if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    result = []
    for entry in errors:
        if isinstance(entry, dict):
            item = {'code': str(entry.get('code', '')), 'message': str(entry.get('message', ''))}
            if entry.get('detail') is not None:
                item['detail'] = entry['detail']
            result.append(item)
    return mask_secrets(result, secrets)


def error_from_response(response, method, url, attempts=None, what=None, secrets=(), timeout=60.0):
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


def describe_errors(errors):
    """``CODE: message; ...`` of a decoded error body, for a message."""
    return '; '.join('%s: %s' % (e['code'], e['message']) if e['message'] else e['code'] for e in errors)


def check_scheme(method, url, allow_plain, came_from=None):
    """Refuse ``url`` when it is not http(s), or plain HTTP where that is not allowed.

    ``came_from`` is the URL that redirected to ``url``: then only a step down from
    HTTPS is refused. Without it, ``url`` is the registry's own (an absolute URL from
    an answer, a realm) and plain HTTP needs ``allow_plain``.
    """
    origin = url_origin(url)
    if origin is None or origin[0] not in DEFAULT_PORTS:
        raise TransportError('%s %s: %s an URL that is neither http nor https; refusing it'
                             % (method, redact_url(came_from or url),
                                'redirected to' if came_from else 'asked for'), url=came_from or None)
    if origin[0] != 'http' or allow_plain:
        return
    if came_from is None:
        raise TransportError(
            '%s %s refused: the registry is reached over HTTPS, and this URL from its answer is plain HTTP; '
            'credentials and content are not sent unencrypted' % (method, redact_url(url)), url=url)
    if url_origin(came_from)[0] == 'https':
        raise TransportError(
            '%s %s was redirected to plain HTTP (%s); refusing to follow it: the registry is reached over HTTPS, '
            'and credentials and content are not sent unencrypted' % (method, redact_url(came_from), redact_url(url)),
            url=url, details={'redirected_from': redact_url(came_from)})


class HTTPSession:
    """The one requests.Session of a module run, shared by every registry it talks to."""

    def __init__(self, session=None, sleep=time.sleep):
        if session is None:
            session = requests.Session()
            session.headers['User-Agent'] = USER_AGENT
        # The environment (proxy variables, REQUESTS_CA_BUNDLE) is read here, once per
        # origin, instead of by requests on every request: walking os.environ twice per
        # request was half of the client's CPU time when tagging 50 tags. It also keeps
        # ~/.netrc from silently replacing the Authorization header this client sets.
        session.trust_env = False
        self.session = session
        self.sleep = sleep
        self.request_count = 0
        self._proxies = {}

    def close(self):
        self.session.close()

    def send(self, method, url, headers, options, data=None, auth_origin=None, allow_plain=False, direct=False):
        """Send one request, following redirects by hand.

        ``Authorization`` goes only to ``auth_origin`` (``url_origin`` of where the
        credentials belong): a hop to any other scheme, host or port (a storage
        backend serving a blob, or the same host over plain HTTP) goes without it. A
        redirect from HTTPS to plain HTTP is refused unless ``allow_plain``. A plain
        HTTP hop never goes through a proxy when it carries credentials, nor when it
        is to ``auth_origin`` and ``direct`` (a loopback registry).
        """
        current_method = method
        current_url = url
        came_from = None
        for hop in range(MAX_REDIRECTS + 1):
            if came_from is not None:
                check_scheme(method, current_url, allow_plain, came_from=came_from)
            origin = url_origin(current_url)
            own = auth_origin is not None and origin == auth_origin
            hop_headers = dict(headers)
            if not own:
                hop_headers.pop('Authorization', None)
            plain = origin is not None and origin[0] == 'http'
            proxies = {} if plain and ((direct and own) or 'Authorization' in hop_headers) else \
                self._proxies_for(current_url)
            self.request_count += 1
            # Always streamed: error bodies are then read with a size limit, and the
            # caller decides whether to load the content (see RegistryAPI.request).
            response = self.session.request(
                current_method, current_url, headers=hop_headers, data=data if hop == 0 else None,
                stream=True, allow_redirects=False, timeout=(options.timeout, options.timeout),
                verify=_environment_verify(options.verify), proxies=proxies,
                cert=getattr(options, 'cert', None))
            if response.status_code not in REDIRECT_STATUSES or 'Location' not in response.headers:
                return response
            location = urljoin(current_url, response.headers['Location'])
            response.close()
            if response.status_code == 303 and current_method != 'HEAD':
                current_method = 'GET'
            came_from, current_url = current_url, location
        raise TransportError('%s %s: more than %d redirects' % (method, redact_url(url), MAX_REDIRECTS), url=url)

    def _proxies_for(self, url):
        """The proxies the environment sets for ``url``'s origin (honouring no_proxy), cached."""
        parts = urlsplit(url)
        origin = '%s://%s' % (parts.scheme, parts.netloc)
        if origin not in self._proxies:
            self._proxies[origin] = requests.utils.get_environ_proxies(origin + '/')
        return self._proxies[origin]


def _environment_verify(verify):
    """What requests would verify with: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when ``verify`` is True."""
    if verify is True:
        return os.environ.get('REQUESTS_CA_BUNDLE') or os.environ.get('CURL_CA_BUNDLE') or True
    return verify


class RegistryAPI:
    """One registry host, reached through a shared HTTPSession."""

    def __init__(self, http, api_host, options, loopback=False):
        self.http = http
        self.api_host = api_host
        self.options = options
        self.loopback = loopback
        self.auth = Authenticator(options.credentials, api_host)
        if not options.validate_certs:
            # The user chose not to verify; urllib3's warning on stderr would only add noise.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        # Loopback registries may speak plain http, as docker allows; find out on first use.
        self.scheme = None if loopback else 'https'

    def url(self, path):
        """The URL of ``path`` with the scheme in use (https until a loopback registry's is known)."""
        return '%s://%s%s' % (self.scheme or 'https', self.api_host, path)

    @property
    def plain_http_allowed(self):
        """Only for a loopback registry whose scheme discovery settled on plain HTTP."""
        return self.loopback and self.scheme == 'http'

    def origin(self, scheme=None):
        """``url_origin`` of this registry over ``scheme`` (default: the one in use)."""
        return url_origin('%s://%s/' % (scheme or self.scheme or 'https', self.api_host))

    def secrets(self):
        """Every form of the credentials and received tokens, masked in whatever an answer makes us say."""
        return self.auth.secrets()

    # -- the request loop -------------------------------------------------
    def request(self, method, path, scopes=(), headers=None, data=None, stream=False, expected=(200,),
                what=None, retry=True):
        """Send a request to ``path`` (``/v2/...``, or an absolute URL from the registry's answers).

        Returns the response when its status is in ``expected``; raises otherwise.
        Only replayable requests (no body, or a bytes body) are retried. An
        absolute URL gets the credentials only when it is on the registry's own
        origin, and is refused when it is plain HTTP for an HTTPS registry.
        """
        try:
            return self._request(method, path, scopes, headers, data, stream, expected, what, retry)
        except RegistryError as error:
            # Messages built from the registry's answers are masked where they are made;
            # this catches anything else that could quote them.
            _mask_error(error, self.secrets())
            raise

    def _request(self, method, path, scopes, headers, data, stream, expected, what, retry):
        replayable = data is None or isinstance(data, (bytes, str))
        max_attempts = 1 + (self.options.retries if retry and replayable else 0)
        attempt = 0
        auth_retries = 0
        last_problem = None
        while True:
            attempt += 1
            request_headers = dict(headers or {})
            self._prefetch_token(scopes)
            request_headers.update(self.auth.headers(scopes))
            try:
                response = self._send_with_scheme(method, path, request_headers, data)
            except TransportError:
                raise
            except requests.exceptions.SSLError as exc:
                raise self._tls_error(exc, self._absolute(path))
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                url = self._absolute(path)
                if _is_client_certificate_problem(exc):
                    raise self._tls_error(exc, url)  # the server refused our (missing) client certificate
                last_problem = describe_exception(exc)
                if attempt < max_attempts:
                    self.http.sleep(self._backoff(attempt))
                    continue
                raise TransportError(
                    '%s %s failed after %d attempt%s: %s'
                    % (method, redact_url(url), attempt, '' if attempt == 1 else 's', last_problem),
                    url=url, attempts=attempt)
            # Only now is the scheme of a loopback registry known: messages show the one used.
            url = self._absolute(path)
            if response.status_code == 401 and auth_retries < 2:
                auth_retries += 1
                attempt -= 1  # an auth round trip is not a failed attempt
                if self._handle_401(response, scopes, url):
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
                wait = self._backoff(attempt) if wait is None else min(wait, MAX_RETRY_WAIT)
                response.close()
                self.http.sleep(wait)
                continue
            if response.status_code in expected:
                if not stream:
                    # Loaded now, within its deadline, so the connection goes back to the pool.
                    load_content(response, NON_STREAMED_LIMIT, self.options.timeout,
                                 what or '%s %s' % (method, redact_url(url)))
                return response
            error = error_from_response(response, method, url, attempts=attempt, what=what, secrets=self.secrets(),
                                        timeout=self.options.timeout)
            response.close()
            if error.status in (401, 403) and self.auth.scheme == 'bearer' and scopes:
                credentials = self.auth.credentials
                who = ('anonymous access' if credentials.is_empty
                       else 'the credentials from %s' % credentials.describe())
                error.msg += '. The token service did not grant %s to %s' % (' '.join(scopes), who)
            raise error

    def _absolute(self, path):
        return path if '://' in path else self.url(path)

    def _send_with_scheme(self, method, path, headers, data):
        if '://' in path:
            return self._send_absolute(method, path, headers, data)
        if self.scheme is None:
            return self._discover_scheme(method, path, headers, data)
        return self._send(method, self.url(path), headers, data)

    def _send(self, method, url, headers, data, scheme=None):
        """One request to this registry over ``scheme`` (default: the one in use), redirects followed."""
        scheme = scheme or self.scheme
        return self.http.send(method, url, headers, self.options, data=data, auth_origin=self.origin(scheme),
                              allow_plain=self.loopback and scheme == 'http', direct=self.loopback)

    def _send_absolute(self, method, url, headers, data):
        """An absolute URL from an answer (a ``Link``, an upload ``Location``).

        Credentials go along only when it is on the registry's own origin (``_send``
        drops them otherwise); plain HTTP only where plain HTTP is allowed.
        """
        check_scheme(method, url, self.plain_http_allowed)
        return self._send(method, url, headers, data, scheme=self.scheme or 'https')

    def _tls_required(self):
        """Why TLS is the only way to this loopback registry (an option name), or None."""
        if self.auth.credentials and self.auth.credentials.token:
            return 'token'
        if self.options.ca_path:
            return 'ca_path'
        if getattr(self.options, 'client_cert', None):
            return 'client_cert'
        return None

    def _discover_scheme(self, method, path, headers, data):
        """First request to a loopback registry: find out whether it speaks TLS.

        With a token, a CA or a client certificate, TLS is expected and it is the
        only way: a token must not go out unencrypted, and a server that does not
        speak TLS is an error to report, not a reason to repeat the request in
        clear. Otherwise plain HTTP is tried first: a TLS handshake against a
        plain server costs tens of milliseconds, mostly loading the CA store,
        which is most of a small task's run time. A TLS server answers plain HTTP
        with a non-JSON 400 that says so, or drops it. The first plain request
        carries no credentials: the scheme is settled before any challenge is met.
        """
        https_url = 'https://%s%s' % (self.api_host, path)
        http_url = 'http://%s%s' % (self.api_host, path)
        required = self._tls_required()
        if required:
            response, tls_error = self._send_tls(method, https_url, headers, data)
            self.scheme = 'https'
            if response is None and self._answers_like_tls():
                raise tls_error  # a TLS server that refused the handshake (a client certificate, say)
            if response is None:
                raise TransportError(
                    'TLS connection to %s failed: %s. The registry does not seem to speak TLS; it is not asked '
                    'again over plain HTTP because %s is given (a token must not travel unencrypted, and a CA or '
                    'client certificate means TLS is meant). Use the registry\'s TLS address, or leave out %s '
                    'for a plain-HTTP registry on this host'
                    % (self.api_host, describe_exception(tls_error), required, required),
                    url=https_url, attempts=1)
            return response
        try:
            response = self._send(method, http_url, headers, data, scheme='http')
        except requests.exceptions.ConnectionError:
            response = None
        kind = 'tls' if response is None else _plain_answer_kind(method, response, self.options.timeout)
        if kind == 'plain':
            self.scheme = 'http'
            return response
        if kind == 'unknown':
            # Ask over TLS, and keep the plain answer if the server does not speak TLS after all.
            try:
                tls_response = self._send_tls(method, https_url, headers, data)[0]
            except requests.exceptions.SSLError:
                raise  # a certificate problem: the server does speak TLS
            except requests.exceptions.ConnectionError:
                tls_response = None
            if tls_response is None:
                self.scheme = 'http'
                return response
            response.close()
            self.scheme = 'https'
            return tls_response
        self.scheme = 'https'
        return self._send(method, https_url, headers, data)

    def _answers_like_tls(self):
        """Whether a TLS server listens: a plain ``GET /v2/`` without any credentials, whose answer
        (or dropped connection) tells a TLS server from a plain one. Nothing secret goes out."""
        try:
            probe = self.http.send('GET', 'http://%s/v2/' % self.api_host, {}, self.options, allow_plain=True,
                                   direct=True)
        except requests.exceptions.RequestException:
            return True
        kind = _plain_answer_kind('GET', probe, self.options.timeout)
        probe.close()
        return kind == 'tls'

    def _send_tls(self, method, url, headers, data):
        """One request over TLS: ``(response, None)``, or ``(None, error)`` when the server does not
        speak TLS. A certificate problem means it does: that is raised, with the scheme settled."""
        try:
            return self._send(method, url, headers, data, scheme='https'), None
        except requests.exceptions.SSLError as exc:
            if _is_certificate_problem(exc) or _is_client_certificate_problem(exc):
                self.scheme = 'https'
                raise
            return None, exc

    def _backoff(self, attempt):
        return min(MAX_RETRY_WAIT, BACKOFF_BASE * (2 ** (attempt - 1))) * (0.75 + random.random() / 2)

    def _prefetch_token(self, scopes):
        if scopes and self.auth.can_prefetch(scopes):
            self._fetch_token(scopes)

    def _handle_401(self, response, scopes, url):
        """Learn the challenge and get what it asks for; True when a retry makes sense."""
        header = response.headers.get('WWW-Authenticate')
        response.close()
        previous_scheme = self.auth.scheme
        challenge_scopes = self.auth.learn(header, url)
        if self.auth.credentials.token:
            raise AuthenticationError('The registry %s refused the given token (from %s) (HTTP 401)'
                                      % (self.api_host, self.auth.credentials.describe()), status=401, url=url)
        if self.auth.scheme == 'basic':
            if previous_scheme == 'basic':
                raise AuthenticationError('The registry %s refused the username and password (from %s) (HTTP 401)'
                                          % (self.api_host, self.auth.credentials.describe()), status=401, url=url)
            return True
        wanted = list(scopes or ())
        for scope in challenge_scopes:
            if scope not in wanted:
                wanted.append(scope)
        self.auth.forget(scopes)
        self._fetch_token(wanted)
        return True

    def _realm(self):
        """The realm of the last challenge, as an absolute URL, once it passed the scheme rule.

        A TLS registry's token service must be TLS too: its request carries the Basic
        credentials or the identity token, and the token it answers is as good as them.
        """
        realm = urljoin(self.url('/v2/'), self.auth.realm)
        origin = url_origin(realm)
        if origin is None or origin[0] not in DEFAULT_PORTS:
            raise AuthenticationError('The registry %s names a token service (realm) %s that is neither http nor '
                                      'https' % (self.api_host, redact_url(realm)), url=self.url('/v2/'))
        if origin[0] == 'http' and not self.plain_http_allowed:
            raise AuthenticationError(
                'The registry %s is reached over HTTPS, but its token service %s is plain HTTP; refusing to send '
                'credentials to it or to ask it for a token unencrypted. Configure the registry with an https:// '
                'token realm' % (self.api_host, redact_url(realm)), url=realm)
        return realm

    def _fetch_token(self, scopes):
        params = []
        if self.auth.service:
            params.append(('service', self.auth.service))
        for scope in scopes:
            params.append(('scope', scope))
        realm = self._realm()
        url = realm + ('&' if '?' in realm else '?') + urlencode(params) if params else realm
        headers = {'Accept': 'application/json'}
        credentials = self.auth.credentials
        if credentials.has_basic:
            headers['Authorization'] = credentials.basic_header()
        try:
            response = None
            if credentials.identity_token:
                response = self._oauth_token_request(realm, scopes)
                if response.status_code == 404:
                    # No OAuth2 endpoint at the realm: the classic GET, with the identity token as password.
                    response.close()
                    headers['Authorization'] = Credentials(
                        username=credentials.username or '<token>', password=credentials.identity_token).basic_header()
                    response = None
            if response is None:
                response = self._send_to_realm('GET', url, headers)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc, realm)
        except requests.exceptions.RequestException as exc:
            raise TransportError('Could not reach the token service %s of registry %s: %s'
                                 % (redact_url(realm), self.api_host, describe_exception(exc)), url=realm)
        if response.status_code != 200:
            said = describe_errors(decode_error_body(response, self.secrets(), self.options.timeout))
            response.close()
            if credentials.identity_token:
                who = 'the identity token from %s' % credentials.describe()
            elif credentials.has_basic:
                who = 'the given credentials (from %s)' % credentials.describe()
            else:
                who = 'anonymous access'
            raise AuthenticationError(mask_secrets(
                'The token service %s of registry %s refused %s for %s (HTTP %d%s)'
                % (redact_url(realm), self.api_host, who, ' '.join(scopes) or 'the registry', response.status_code,
                   ': ' + said if said else ''), self.secrets()),
                status=response.status_code, url=realm)
        raw = read_with_deadline(response, TOKEN_BODY_LIMIT, self.options.timeout,
                                 'the answer of the token service %s' % redact_url(realm))
        response.close()
        try:
            body = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError, RecursionError):
            body = None
        token = (body or {}).get('token') or (body or {}).get('access_token') if isinstance(body, dict) else None
        if not token or not isinstance(token, str):
            raise AuthenticationError('The token service %s of registry %s answered without a token'
                                      % (redact_url(realm), self.api_host), url=realm)
        self.auth.store_token(scopes, token, body.get('expires_in'))

    def _send_to_realm(self, method, url, headers, data=None):
        """A token request: credentials to the realm's origin only, plain HTTP only where the registry's is."""
        return self.http.send(method, url, headers, self.options, data=data, auth_origin=url_origin(url),
                              allow_plain=self.plain_http_allowed)

    def _oauth_token_request(self, realm, scopes):
        """The OAuth2 refresh-token grant (what ``docker login`` stores as an identity token)."""
        credentials = self.auth.credentials
        form = [('grant_type', 'refresh_token'), ('refresh_token', credentials.identity_token),
                ('client_id', 'imagelayers.registry')]
        if self.auth.service:
            form.append(('service', self.auth.service))
        if scopes:
            form.append(('scope', ' '.join(scopes)))
        headers = {'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded'}
        return self._send_to_realm('POST', realm, headers, data=urlencode(form))

    def _tls_error(self, exc, url):
        host = urlsplit(url).netloc or self.api_host
        if _is_certificate_problem(exc):
            msg = ('TLS certificate verification failed for %s: %s. Give the CA that signed the registry certificate '
                   'with ca_path (or the REQUESTS_CA_BUNDLE environment variable), or set validate_certs to false '
                   'for a registry you trust' % (host, describe_exception(exc)))
        else:
            msg = 'TLS connection to %s failed: %s' % (host, describe_exception(exc))
            if getattr(self.options, 'client_cert', None):
                msg += ('. Check that the server accepts the client certificate given with client_cert '
                        '(signed by a CA it trusts for clients) and that client_key is its key')
            elif _is_client_certificate_problem(exc):
                msg += '. The server wants a client certificate: give client_cert and client_key'

        return TransportError(msg, url=url, attempts=1)


def _plain_answer_kind(method, response, timeout):
    """Who answered a plain HTTP request to a loopback port.

    ``'tls'``: a TLS server, with the 400 that says so (Go: "Client sent an HTTP request to an
    HTTPS server."; nginx: "The plain HTTP request was sent to HTTPS port"). ``'unknown'``: a
    non-JSON 400 to a HEAD, whose answer has no body to tell. ``'plain'``: anything else (a
    registry's own 400s are JSON).
    """
    if response.status_code != 400 or 'json' in response.headers.get('Content-Type', ''):
        return 'plain'
    if method == 'HEAD':
        return 'unknown'
    body = read_with_deadline(response, 1024, timeout, 'the answer of a plain HTTP request') if response.raw else b''
    response.close()
    return 'tls' if b'https' in body.lower() else 'plain'


def _mask_error(error, secrets):
    """Mask ``secrets`` in everything ``error`` says (message, registry errors, details) in place."""
    error.msg = mask_secrets(error.msg, secrets)
    error.args = (error.msg,)
    error.errors = mask_secrets(error.errors, secrets)
    error.details = mask_secrets(error.details, secrets)
    error.url = mask_secrets(error.url, secrets)


def _is_client_certificate_problem(exc):
    text = str(exc).lower()
    return 'certificate required' in text or 'bad certificate' in text or 'unknown ca' in text or \
        'certificate_required' in text


def _is_certificate_problem(exc):
    text = str(exc)
    return 'CERTIFICATE_VERIFY_FAILED' in text or 'certificate verify failed' in text or 'hostname' in text.lower()
