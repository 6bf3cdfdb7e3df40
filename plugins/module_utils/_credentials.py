# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Stored registry credentials: Docker's config.json, credential helpers, Podman's auth.json.

Order, first match wins (module options are handled by the caller and always win):

1. Docker ``config.json`` (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``):
   ``credHelpers[host]``, then ``credsStore``, then the ``auths`` entry
   (``auth`` = base64 user:password, ``username``/``password``, ``identitytoken``, ``registrytoken``).
2. Podman/containers ``auth.json`` (``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``),
   same format; its keys may name a namespace or repository (``quay.io/team``), the longest match wins.
3. Nothing: anonymous.

:class:`CredentialStore` is how modules and the lookup use them: once per registry and
repository in a run, and only when the user gave no credentials as options.

With ``config_path`` only that file is read. Docker Hub keys (``https://index.docker.io/v1/``,
``index.docker.io``, ``docker.io``, ``registry-1.docker.io``) all match Hub references.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from typing import TYPE_CHECKING, Any, Mapping

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    InvalidInputError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import (
    ConnectionConfig,
    has_credentials,
)

if TYPE_CHECKING:
    from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference

HUB_REGISTRY = 'docker.io'
HUB_SERVER_URL = 'https://index.docker.io/v1/'
_HUB_HOSTS = frozenset(('docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'))
HELPER_TIMEOUT = 30
MAX_CONFIG_SIZE = 4 * 1024 * 1024
_HELPER_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
# What credential helpers print when they have nothing for the server.
_NOT_FOUND_MARKERS = ('credentials not found', 'not found in native keychain', 'no credentials')


def docker_config_path(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    directory = environ.get('DOCKER_CONFIG') or os.path.join(os.path.expanduser('~'), '.docker')
    return os.path.join(directory, 'config.json')


def podman_auth_path(environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    if environ.get('REGISTRY_AUTH_FILE'):
        return environ['REGISTRY_AUTH_FILE']
    if environ.get('XDG_RUNTIME_DIR'):
        return os.path.join(environ['XDG_RUNTIME_DIR'], 'containers', 'auth.json')
    return None


def normalize_key(key: str | None) -> tuple[str, str]:
    """``(host, path)`` of a config key: scheme and Docker's ``/v1/`` dropped, Hub hosts folded to docker.io."""
    key = (key or '').strip()
    had_scheme = '://' in key
    if had_scheme:
        key = key.split('://', 1)[1]
    host, _sep, path = key.partition('/')
    host = host.lower()
    path = path.strip('/')
    if had_scheme or path in ('v1', 'v2'):
        path = ''  # a URL key (Docker style) names the whole registry
    if host in _HUB_HOSTS:
        host = HUB_REGISTRY
    return host, path


def _key_matches(key: str, registry: str, repository: str | None) -> int | None:
    host, path = normalize_key(key)
    if host != _fold(registry):
        return None
    if not path:
        return 0
    if repository and (repository == path or repository.startswith(path + '/')):
        return len(path)
    return None


def _fold(registry: str | None) -> str:
    registry = (registry or '').lower()
    return HUB_REGISTRY if registry in _HUB_HOSTS else registry


def _best_key(mapping: Mapping[str, Any], registry: str, repository: str | None) -> str | None:
    """The key of ``mapping`` that matches best (repository-scoped keys beat host keys), or None."""
    best, best_len = None, -1
    for key in mapping:
        length = _key_matches(key, registry, repository)
        if length is not None and length > best_len:
            best, best_len = key, length
    return best


def server_url(registry: str) -> str:
    """What a credential helper is asked about: Docker's Hub URL, else the registry host."""
    return HUB_SERVER_URL if _fold(registry) == HUB_REGISTRY else registry


def load_config(path: str) -> dict[str, Any] | None:
    """The parsed JSON object of ``path``; None when the file does not exist."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read(MAX_CONFIG_SIZE + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise InvalidInputError('Cannot read the registry credentials file %s: it is a directory' % path)
    except OSError as exc:
        raise InvalidInputError('Cannot read the registry credentials file %s: %s' % (path, exc.strerror or exc))
    if len(raw) > MAX_CONFIG_SIZE:
        raise InvalidInputError('The registry credentials file %s is larger than %d bytes' % (path, MAX_CONFIG_SIZE))
    try:
        data = json.loads(raw.decode('utf-8-sig'))
    except UnicodeDecodeError:
        raise InvalidInputError('The registry credentials file %s is not UTF-8 text' % path)
    except ValueError as exc:
        # The JSON error names line and column only, never the content (which may hold secrets).
        raise InvalidInputError('The registry credentials file %s is not valid JSON (line %s, column %s)'
                                % (path, getattr(exc, 'lineno', '?'), getattr(exc, 'colno', '?')))
    if not isinstance(data, dict):
        raise InvalidInputError('The registry credentials file %s must hold a JSON object' % path)
    return data


def run_credential_helper(name: Any, url: str, timeout: float = HELPER_TIMEOUT,
                          environ: Mapping[str, str] | None = None,
                          where: str = 'the registry credentials file') -> tuple[str, str] | None:
    """``(username, secret)`` from ``docker-credential-<name> get``, or None when it has nothing for ``url``."""
    if not isinstance(name, str) or not _HELPER_NAME.fullmatch(name):
        raise InvalidInputError('Invalid credential helper name %r in %s' % (name, where))
    program = 'docker-credential-' + name
    try:
        proc = subprocess.run([program, 'get'], input=url.encode('utf-8'), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, env=environ, check=False)
    except FileNotFoundError:
        raise InvalidInputError('The credential helper %s (for %s, named in %s) is not installed or not on PATH'
                                % (program, url, where))
    except PermissionError:
        raise InvalidInputError('The credential helper %s (for %s, named in %s) is not executable'
                                % (program, url, where))
    except subprocess.TimeoutExpired:
        raise AuthenticationError('The credential helper %s did not answer for %s within %d seconds'
                                  % (program, url, timeout))
    out = proc.stdout.decode('utf-8', 'replace').strip()
    err = proc.stderr.decode('utf-8', 'replace').strip()
    if proc.returncode != 0:
        said = (out or err).splitlines()[0][:200] if (out or err) else ''
        if any(marker in said.lower() for marker in _NOT_FOUND_MARKERS):
            return None
        raise AuthenticationError('The credential helper %s failed for %s (exit code %d)%s'
                                  % (program, url, proc.returncode, ': ' + said if said else ''))
    try:
        answer = json.loads(out)
    except ValueError:
        raise AuthenticationError('The credential helper %s answered for %s with something that is not JSON'
                                  % (program, url))
    if not isinstance(answer, dict) or not isinstance(answer.get('Secret'), str):
        raise AuthenticationError('The credential helper %s answered for %s without a Secret' % (program, url))
    if not answer['Secret']:
        return None
    return answer.get('Username') or '', answer['Secret']


def _from_helper(name: Any, registry: str, where: str, environ: Mapping[str, str] | None) -> Credentials | None:
    found = run_credential_helper(name, server_url(registry), environ=environ, where=where)
    if found is None:
        return None
    username, secret = found
    source = 'credential helper docker-credential-%s (%s)' % (name, where)
    if username == '<token>':
        return Credentials(identity_token=secret, source=source)
    return Credentials(username=username, password=secret, source=source)


def _from_entry(entry: Any, path: str, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise InvalidInputError('The entry %r of "auths" in %s must be a JSON object' % (key, path))
    source = '%s (auths entry %s)' % (path, key)
    username = entry.get('username') or None
    password = entry.get('password')
    if entry.get('auth'):
        try:
            decoded = base64.b64decode(entry['auth'], validate=False).decode('utf-8')
        except (binascii.Error, ValueError, TypeError):
            raise InvalidInputError('The "auth" value of %r in %s is not base64 of "user:password"' % (key, path))
        if ':' not in decoded:
            raise InvalidInputError('The "auth" value of %r in %s is not base64 of "user:password"' % (key, path))
        username, password = decoded.split(':', 1)
    if entry.get('identitytoken'):
        return Credentials(username=username if username != '<token>' else None,
                           identity_token=entry['identitytoken'], source=source)
    if entry.get('registrytoken'):
        return Credentials(token=entry['registrytoken'], source=source)
    if username and password is not None:
        return Credentials(username=username, password=password, source=source)
    return None  # an empty entry, as written next to a credsStore


def from_config(config: Mapping[str, Any], path: str, registry: str, repository: str | None,
                environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``registry``/``repository`` from one parsed config file, or None."""
    helpers = config.get('credHelpers')
    if isinstance(helpers, dict):
        key = _best_key(helpers, registry, repository)
        if key is not None:
            found = _from_helper(helpers[key], registry, '%s credHelpers' % path, environ)
            if found is not None:
                return found
    store = config.get('credsStore')
    if store:
        found = _from_helper(store, registry, '%s credsStore' % path, environ)
        if found is not None:
            return found
    auths = config.get('auths')
    if auths is not None and not isinstance(auths, dict):
        raise InvalidInputError('"auths" in %s must be a JSON object' % path)
    if auths:
        key = _best_key(auths, registry, repository)
        if key is not None:
            return _from_entry(auths[key], path, key)
    return None


def lookup(registry: str, repository: str | None = None, config_path: str | None = None,
           environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Stored credentials for ``registry`` (``ImageReference.registry``), or None for anonymous access."""
    environ = os.environ if environ is None else environ
    paths: list[str | None]
    if config_path:
        paths = [config_path]
        if os.path.isdir(config_path):
            raise InvalidInputError('config_path %s is a directory; give the config.json or auth.json file'
                                    % config_path)
        if not os.path.exists(config_path):
            raise InvalidInputError('config_path %s does not exist' % config_path)
    else:
        paths = [docker_config_path(environ), podman_auth_path(environ)]
    for path in paths:
        if not path:
            continue
        config = load_config(path)
        if config is None:
            continue
        found = from_config(config, path, registry, repository, environ=dict(environ))
        if found is not None:
            return found
    return None


class CredentialStore:
    """The stored credentials of one task or lookup call, looked up once per registry and repository.

    Options win: :meth:`complete` adds stored credentials only to a config without credentials
    the user gave (a credential helper runs once per registry and repository, not per client).
    """

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._found: dict[tuple[str, str | None], Credentials | None] = {}

    def get(self, reference: ImageReference) -> Credentials | None:
        """Credentials for ``reference`` from config.json, a credential helper or auth.json (None: anonymous)."""
        key = (reference.registry, reference.repository)
        if key not in self._found:
            self._found[key] = lookup(reference.registry, reference.repository, config_path=self.config_path)
        return self._found[key]

    def complete(self, config: ConnectionConfig, reference: ImageReference) -> ConnectionConfig:
        """``config``, with the stored credentials of ``reference``'s registry when the user gave none."""
        if has_credentials(config):
            return config
        stored = self.get(reference)
        return config if stored is None else config.with_credentials(stored)
