# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Registry authentication: credentials, challenges, Basic, and the Bearer token exchange.

The Bearer flow follows the distribution token specification: a 401 carries
``WWW-Authenticate: Bearer realm="...",service="...",scope="..."``; the client
GETs the realm with ``service`` and every ``scope`` (with Basic credentials when
it has them) and retries with the ``token`` (or ``access_token``) it receives.
An identity token (OAuth2 refresh token) is exchanged with a POST first.
Tokens are cached per scope set for the run and refreshed when they expire or
when a 401 names a scope the cached token does not cover.

Credentials go to the realm's own origin only, and a TLS registry's realm must
be TLS too (see :func:`_realm`).
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import urlencode, urljoin

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    TransportError,
    mask_secrets,
    redact_url,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.scheme import tls_error
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    DEFAULT_PORTS,
    decode_error_body,
    describe_errors,
    describe_exception,
    read_with_deadline,
    url_origin,
)

try:
    import requests.exceptions
except ImportError:  # the module reports missing_required_lib('requests')
    pass

if TYPE_CHECKING:
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.api import RegistryAPI

_PARAM = re.compile(r'\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')

# Token lifetime the token specification assumes when the server does not say.
DEFAULT_TOKEN_LIFETIME = 60
# Refresh a little before the token expires, so a request in flight does not race it.
TOKEN_EXPIRY_MARGIN = 5


class Credentials:
    """What a user gave us for one registry. Never rendered in output."""

    def __init__(self, username: str | None = None, password: str | None = None, token: str | None = None,
                 source: str | None = None, identity_token: str | None = None) -> None:
        self.username = username
        self.password = password
        self.token = token
        # An OAuth2 refresh token ("identitytoken" in Docker's config.json), exchanged at the
        # token realm with grant_type=refresh_token.
        self.identity_token = identity_token
        self.source = source

    @property
    def is_empty(self) -> bool:
        return not (self.username or self.password or self.token or self.identity_token)

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and self.password is not None

    def basic_header(self) -> str:
        raw = ('%s:%s' % (self.username, self.password)).encode('utf-8')
        return 'Basic ' + base64.b64encode(raw).decode('ascii')

    def secrets(self) -> list[str]:
        """Every form of these credentials that must never be shown: the raw secrets, and the
        ``Authorization`` values built from them (a registry may echo those back in an error)."""
        raw = [s for s in (self.password, self.token, self.identity_token) if s]
        forms = list(raw)
        if self.has_basic:
            forms.extend(header_forms(self.basic_header()))
        if self.identity_token:
            # The classic token GET sends the identity token as a password (see fetch_token).
            forms.extend(header_forms(Credentials(username=self.username or '<token>',
                                                  password=self.identity_token).basic_header()))
        if self.token:
            forms.extend(header_forms('Bearer ' + self.token))
        return forms

    def describe(self) -> str:
        """Where these credentials came from, for error messages (never the secret itself)."""
        return self.source or 'module options'


def header_forms(header: str) -> list[str]:
    """``header`` (``Basic <b64>``/``Bearer <token>``), its credentials part, and that part unpadded."""
    value = header.split(' ', 1)[1] if ' ' in header else header
    return [f for f in (header, value, value.rstrip('=')) if f]


def parse_challenges(header: str | None) -> list[tuple[str, dict[str, str]]]:
    """Parse a ``WWW-Authenticate`` header into ``[(scheme_lower, {param: value})]``."""
    challenges: list[tuple[str, dict[str, str]]] = []
    if not header:
        return challenges
    rest = header.strip()
    while rest:
        match = re.match(r'[\s,]*([A-Za-z][A-Za-z0-9_-]*)\s*', rest)
        if not match:
            break
        scheme = match.group(1).lower()
        rest = rest[match.end():]
        params: dict[str, str] = {}
        while rest:
            pmatch = _PARAM.match(rest)
            if not pmatch:
                break
            # A bare word not followed by "=" is the next challenge's scheme: the loop stops there.
            quoted, bare = pmatch.group(2), pmatch.group(3)
            params[pmatch.group(1).lower()] = re.sub(r'\\(.)', r'\1', quoted) if quoted is not None else bare
            rest = rest[pmatch.end():]
        challenges.append((scheme, params))
    return challenges


def scope_for(repository: str, actions: str) -> str:
    """The token scope for ``actions`` (``pull``, ``pull,push``, ``delete``) on ``repository``."""
    return 'repository:%s:%s' % (repository, actions)


class Authenticator:
    """Holds the auth state of one registry host for one module run."""

    def __init__(self, credentials: Credentials | None, host: str) -> None:
        self.credentials = credentials or Credentials()
        self.host = host
        self.scheme: str | None = None   # None (unknown/anonymous so far), 'basic' or 'bearer'
        self.realm: str | None = None
        self.service: str | None = None
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}   # scopes -> (token, expires_at)
        self._received: list[str] = []   # every token the token service gave, for masking

    def headers(self, scopes: Iterable[str]) -> dict[str, str]:
        """The Authorization header to send proactively for a request needing ``scopes``."""
        if self.credentials.token:
            return {'Authorization': 'Bearer ' + self.credentials.token}
        if self.scheme == 'basic' and self.credentials.has_basic:
            return {'Authorization': self.credentials.basic_header()}
        if self.scheme == 'bearer':
            token = self._cached_token(scopes)
            if token is not None:
                return {'Authorization': 'Bearer ' + token}
        return {}

    def can_prefetch(self, scopes: Iterable[str]) -> bool:
        """True when a token for ``scopes`` should be fetched before sending the request."""
        return bool(self.scheme == 'bearer' and not self.credentials.token and self.realm
                    and self._cached_token(scopes) is None)

    def _cached_token(self, scopes: Iterable[str] | None) -> str | None:
        now = time.time()
        wanted = frozenset(scopes or ())
        for granted, (token, expires_at) in self._tokens.items():
            if wanted <= granted and expires_at - TOKEN_EXPIRY_MARGIN > now:
                return token
        return None

    def learn(self, www_authenticate: str | None, url: str) -> list[str]:
        """Learn from a 401. Return the scopes the challenge names (possibly empty).

        Raises AuthenticationError when the registry asks for something we cannot give.
        """
        challenges = parse_challenges(www_authenticate)
        for scheme, params in challenges:
            if scheme == 'bearer' and params.get('realm'):
                self.scheme = 'bearer'
                self.realm = params['realm']
                self.service = params.get('service')
                scope = params.get('scope')
                return scope.split(' ') if scope else []
        for scheme, dummy in challenges:
            if scheme == 'basic':
                self.scheme = 'basic'
                if self.credentials.identity_token and not self.credentials.has_basic:
                    raise AuthenticationError(
                        'The registry %s asks for a username and password (HTTP Basic), but the credentials from '
                        '%s are an identity token, which only a Bearer token service accepts'
                        % (self.host, self.credentials.describe()), status=401, url=url)
                if not self.credentials.has_basic:
                    raise AuthenticationError(
                        'The registry %s requires a username and password (HTTP Basic), and none were given'
                        % self.host, status=401, url=url)
                return []
        if not challenges:
            raise AuthenticationError(
                'The registry %s answered 401 Unauthorized without a WWW-Authenticate challenge, '
                'so there is no way to authenticate' % self.host, status=401, url=url)
        raise AuthenticationError(
            'The registry %s asks for an unsupported authentication scheme (%s)'
            % (self.host, ', '.join(c[0] for c in challenges)), status=401, url=url)

    def store_token(self, scopes: Iterable[str], token: str, expires_in: Any = None) -> None:
        try:
            lifetime = int(expires_in) if expires_in else DEFAULT_TOKEN_LIFETIME
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        lifetime = max(lifetime, DEFAULT_TOKEN_LIFETIME)
        self._tokens[frozenset(scopes or ())] = (token, time.time() + lifetime)
        self._received.extend(header_forms('Bearer ' + token))

    def secrets(self) -> list[str]:
        """What must never appear in a message: the credentials' forms and every token received."""
        return self.credentials.secrets() + self._received

    def forget(self, scopes: Iterable[str]) -> None:
        self._tokens.pop(frozenset(scopes or ()), None)


# -- the exchange with the registry and its token service -----------------------------
# A token service answers a small JSON document; refuse to wait for more.
TOKEN_BODY_LIMIT = 1024 * 1024


def prefetch_token(api: RegistryAPI, scopes: Iterable[str]) -> None:
    """Fetch a token for ``scopes`` before the request, when the registry is known to want one."""
    if scopes and api.auth.can_prefetch(scopes):
        fetch_token(api, list(scopes))


def answer_challenge(api: RegistryAPI, response: 'requests.Response', scopes: Iterable[str], url: str) -> bool:
    """Learn the challenge of a 401 and get what it asks for; True when a retry makes sense."""
    auth = api.auth
    header = response.headers.get('WWW-Authenticate')
    response.close()
    previous_scheme = auth.scheme
    challenge_scopes = auth.learn(header, url)
    if auth.credentials.token:
        raise AuthenticationError('The registry %s refused the given token (from %s) (HTTP 401)'
                                  % (api.api_host, auth.credentials.describe()), status=401, url=url)
    if auth.scheme == 'basic':
        if previous_scheme == 'basic':
            raise AuthenticationError('The registry %s refused the username and password (from %s) (HTTP 401)'
                                      % (api.api_host, auth.credentials.describe()), status=401, url=url)
        return True
    wanted = list(scopes or ())
    for scope in challenge_scopes:
        if scope not in wanted:
            wanted.append(scope)
    auth.forget(scopes)
    fetch_token(api, wanted)
    return True


def _realm(api: RegistryAPI) -> str:
    """The realm of the last challenge, as an absolute URL, once it passed the scheme rule.

    A TLS registry's token service must be TLS too: its request carries the Basic
    credentials or the identity token, and the token it answers is as good as them.
    """
    realm = urljoin(api.url('/v2/'), api.auth.realm or '')
    origin = url_origin(realm)
    if origin is None or origin[0] not in DEFAULT_PORTS:
        raise AuthenticationError('The registry %s names a token service (realm) %s that is neither http nor '
                                  'https' % (api.api_host, redact_url(realm)), url=api.url('/v2/'))
    if origin[0] == 'http' and not api.plain_http_allowed:
        raise AuthenticationError(
            'The registry %s is reached over HTTPS, but its token service %s is plain HTTP; refusing to send '
            'credentials to it or to ask it for a token unencrypted. Configure the registry with an https:// '
            'token realm' % (api.api_host, redact_url(realm)), url=realm)
    return realm


def fetch_token(api: RegistryAPI, scopes: list[str]) -> None:
    """Ask the token service of the last challenge for a token covering ``scopes``, and keep it."""
    auth = api.auth
    params = []
    if auth.service:
        params.append(('service', auth.service))
    for scope in scopes:
        params.append(('scope', scope))
    realm = _realm(api)
    url = realm + ('&' if '?' in realm else '?') + urlencode(params) if params else realm
    credentials = auth.credentials
    try:
        response = _request_token(api, realm, url, scopes)
    except requests.exceptions.SSLError as exc:
        raise tls_error(exc, realm, api.api_host, api.options)
    except requests.exceptions.RequestException as exc:
        raise TransportError('Could not reach the token service %s of registry %s: %s'
                             % (redact_url(realm), api.api_host, describe_exception(exc)), url=realm)
    if response.status_code != 200:
        said = describe_errors(decode_error_body(response, api.secrets(), api.options.timeout))
        response.close()
        if credentials.identity_token:
            who = 'the identity token from %s' % credentials.describe()
        elif credentials.has_basic:
            who = 'the given credentials (from %s)' % credentials.describe()
        else:
            who = 'anonymous access'
        raise AuthenticationError(mask_secrets(
            'The token service %s of registry %s refused %s for %s (HTTP %d%s)'
            % (redact_url(realm), api.api_host, who, ' '.join(scopes) or 'the registry', response.status_code,
               ': ' + said if said else ''), api.secrets()),
            status=response.status_code, url=realm)
    raw = read_with_deadline(response, TOKEN_BODY_LIMIT, api.options.timeout,
                             'the answer of the token service %s' % redact_url(realm))
    response.close()
    body, token = _token_of(raw)
    if token is None:
        raise AuthenticationError('The token service %s of registry %s answered without a token'
                                  % (redact_url(realm), api.api_host), url=realm)
    auth.store_token(scopes, token, body.get('expires_in'))


def _request_token(api: RegistryAPI, realm: str, url: str, scopes: list[str]) -> 'requests.Response':
    """The token request: the OAuth2 POST for an identity token (unless the realm has none), else the GET."""
    credentials = api.auth.credentials
    headers = {'Accept': 'application/json'}
    if credentials.has_basic:
        headers['Authorization'] = credentials.basic_header()
    if credentials.identity_token:
        response = _oauth_token_request(api, realm, scopes)
        if response.status_code != 404:
            return response
        # No OAuth2 endpoint at the realm: the classic GET, with the identity token as password.
        response.close()
        headers['Authorization'] = Credentials(
            username=credentials.username or '<token>', password=credentials.identity_token).basic_header()
    return _send_to_realm(api, 'GET', url, headers)


def _token_of(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """``(body, token)`` of a token service's answer; the token is None when there is none."""
    try:
        body = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return {}, None
    token = body.get('token') or body.get('access_token')
    return body, token if token and isinstance(token, str) else None


def _send_to_realm(api: RegistryAPI, method: str, url: str, headers: dict[str, str],
                   data: Any = None) -> 'requests.Response':
    """A token request: credentials to the realm's origin only, plain HTTP only where the registry's is."""
    return api.http.send(method, url, headers, api.options, data=data, auth_origin=url_origin(url),
                         allow_plain=api.plain_http_allowed)


def _oauth_token_request(api: RegistryAPI, realm: str, scopes: list[str]) -> 'requests.Response':
    """The OAuth2 refresh-token grant (what ``docker login`` stores as an identity token)."""
    credentials = api.auth.credentials
    form = [('grant_type', 'refresh_token'), ('refresh_token', credentials.identity_token),
            ('client_id', 'imagelayers.registry')]
    if api.auth.service:
        form.append(('service', api.auth.service))
    if scopes:
        form.append(('scope', ' '.join(scopes)))
    headers = {'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded'}
    return _send_to_realm(api, 'POST', realm, headers, data=urlencode(form))
