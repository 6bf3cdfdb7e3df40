# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Registry authentication: challenges, Basic, and the Bearer token flow.

The Bearer flow follows the distribution token specification: a 401 carries
``WWW-Authenticate: Bearer realm="...",service="...",scope="..."``; the client
GETs the realm with ``service`` and every ``scope`` (with Basic credentials when
it has them) and retries with the ``token`` (or ``access_token``) it receives.
Tokens are cached per scope set for the run and refreshed when they expire or
when a 401 names a scope the cached token does not cover.
"""

from __future__ import annotations

import base64
import re
import time

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import AuthenticationError

_PARAM = re.compile(r'\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')

# Token lifetime the token specification assumes when the server does not say.
DEFAULT_TOKEN_LIFETIME = 60
# Refresh a little before the token expires, so a request in flight does not race it.
TOKEN_EXPIRY_MARGIN = 5


class Credentials:
    """What a user gave us for one registry. Never rendered in output."""

    def __init__(self, username=None, password=None, token=None, source=None, identity_token=None):
        self.username = username
        self.password = password
        self.token = token
        # An OAuth2 refresh token ("identitytoken" in Docker's config.json), exchanged at the
        # token realm with grant_type=refresh_token.
        self.identity_token = identity_token
        self.source = source

    @property
    def is_empty(self):
        return not (self.username or self.password or self.token or self.identity_token)

    @property
    def has_basic(self):
        return bool(self.username) and self.password is not None

    def basic_header(self):
        raw = ('%s:%s' % (self.username, self.password)).encode('utf-8')
        return 'Basic ' + base64.b64encode(raw).decode('ascii')

    def secrets(self):
        """Every form of these credentials that must never be shown: the raw secrets, and the
        ``Authorization`` values built from them (a registry may echo those back in an error)."""
        raw = [s for s in (self.password, self.token, self.identity_token) if s]
        forms = list(raw)
        if self.has_basic:
            forms.extend(header_forms(self.basic_header()))
        if self.identity_token:
            # The classic token GET sends the identity token as a password (see RegistryAPI._fetch_token).
            forms.extend(header_forms(Credentials(username=self.username or '<token>',
                                                  password=self.identity_token).basic_header()))
        if self.token:
            forms.extend(header_forms('Bearer ' + self.token))
        return forms

    def describe(self):
        """Where these credentials came from, for error messages (never the secret itself)."""
        return self.source or 'module options'


def header_forms(header):
    """``header`` (``Basic <b64>``/``Bearer <token>``), its credentials part, and that part unpadded."""
    value = header.split(' ', 1)[1] if ' ' in header else header
    return [f for f in (header, value, value.rstrip('=')) if f]


def parse_challenges(header):
    """Parse a ``WWW-Authenticate`` header into ``[(scheme_lower, {param: value})]``."""
    challenges = []
    if not header:
        return challenges
    rest = header.strip()
    while rest:
        match = re.match(r'[\s,]*([A-Za-z][A-Za-z0-9_-]*)\s*', rest)
        if not match:
            break
        scheme = match.group(1).lower()
        rest = rest[match.end():]
        params = {}
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


def scope_for(repository, actions):
    return 'repository:%s:%s' % (repository, actions)


def mount_scopes(source_repository, destination_repository):
    """The scopes of a cross-repository blob mount: pull,push on the destination, pull on the source.

    Ask for both in one token: the registry checks the source pull right when it mounts.
    """
    return [scope_for(destination_repository, 'pull,push'), scope_for(source_repository, 'pull')]


class Authenticator:
    """Holds the auth state of one registry host for one module run."""

    def __init__(self, credentials, host):
        self.credentials = credentials or Credentials()
        self.host = host
        self.scheme = None          # None (unknown/anonymous so far), 'basic' or 'bearer'
        self.realm = None
        self.service = None
        self._tokens = {}           # frozenset(scopes) -> (token, expires_at)
        self._received = []         # every token the token service gave, for masking

    def headers(self, scopes):
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

    def can_prefetch(self, scopes):
        """True when a token for ``scopes`` should be fetched before sending the request."""
        return (self.scheme == 'bearer' and not self.credentials.token and self.realm
                and self._cached_token(scopes) is None)

    def _cached_token(self, scopes):
        now = time.time()
        wanted = frozenset(scopes or ())
        for granted, (token, expires_at) in self._tokens.items():
            if wanted <= granted and expires_at - TOKEN_EXPIRY_MARGIN > now:
                return token
        return None

    def learn(self, www_authenticate, url):
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
        for scheme, params in challenges:
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

    def store_token(self, scopes, token, expires_in=None):
        try:
            lifetime = int(expires_in) if expires_in else DEFAULT_TOKEN_LIFETIME
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        lifetime = max(lifetime, DEFAULT_TOKEN_LIFETIME)
        self._tokens[frozenset(scopes or ())] = (token, time.time() + lifetime)
        self._received.extend(header_forms('Bearer ' + token))

    def secrets(self):
        """What must never appear in a message: the credentials' forms and every token received."""
        return self.credentials.secrets() + self._received

    def forget(self, scopes):
        self._tokens.pop(frozenset(scopes or ()), None)
