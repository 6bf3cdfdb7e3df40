# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The connection configuration every module and plugin hands to the registry client.

:meth:`ConnectionConfig.from_params` is the one place option values become a
ConnectionConfig: a module passes its validated ``params``, a lookup its options validated
with the same spec (``_argspec.connection_argument_spec``). The checks a spec cannot express
(ranges, a key without its certificate, files that must be readable) live there, once.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials

MAX_RETRIES = 20


class ConnectionConfig:
    """The shared connection options of every module and plugin: credentials, TLS, timeout, retries."""

    def __init__(self, credentials: Credentials | None = None, validate_certs: bool = True, ca_path: str | None = None,
                 timeout: float = 60.0, retries: int = 3, client_cert: str | None = None,
                 client_key: str | None = None) -> None:
        self.credentials = credentials
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.client_cert = client_cert
        self.client_key = client_key

    @classmethod
    def from_params(cls, params: Mapping[str, Any], prefix: str = '', source: str = 'module options') -> ConnectionConfig:
        """The ConnectionConfig of validated option values (a module's params, a lookup's options).

        ``prefix`` (``src_``, ``dest_``) selects one side of a module that talks to two
        registries (``_argspec.side_argument_spec``): that side's credentials when any of
        them is given, else the shared ones; its client certificate and key as a pair, else
        the shared pair; and its ``validate_certs`` and ``ca_path``, each falling back to the
        shared option when unset. ``timeout`` and ``retries`` are always shared. An empty
        string is an unset option. ``source`` names option credentials in messages.
        """
        timeout, retries = params.get('timeout'), params.get('retries')
        if timeout is None or timeout <= 0:
            raise InvalidInputError('timeout must be a positive number of seconds, got %r' % (timeout,))
        if retries is None or retries < 0 or retries > MAX_RETRIES:
            raise InvalidInputError('retries must be between 0 and %d, got %r' % (MAX_RETRIES, retries))

        def side(names: Iterable[str]) -> str:
            """The prefix when the side sets any of ``names``, else '' (the shared options)."""
            if prefix and any(params.get(prefix + name) not in (None, '') for name in names):
                return prefix
            return ''

        def value(name: str) -> Any:
            return params.get(name) if params.get(name) != '' else None

        cred = side(('username', 'password', 'token'))
        username, token = value(cred + 'username'), value(cred + 'token')
        credentials = Credentials(username=username, password=params.get(cred + 'password') if username else None,
                                  token=token, source=source if username or token else None)
        pair = side(('client_cert', 'client_key'))
        client_cert, client_key = value(pair + 'client_cert'), value(pair + 'client_key')
        if client_key and not client_cert:
            raise InvalidInputError('%sclient_key needs %sclient_cert (the client certificate it belongs to)'
                                    % (pair, pair))
        ca = side(('ca_path',))
        ca_path = value(ca + 'ca_path')
        validate_certs = params.get(side(('validate_certs',)) + 'validate_certs')
        for name, path in ((ca + 'ca_path', ca_path), (pair + 'client_cert', client_cert),
                           (pair + 'client_key', client_key)):
            _check_readable(name, path)
        return cls(credentials=credentials, validate_certs=True if validate_certs is None else bool(validate_certs),
                   ca_path=ca_path, timeout=timeout, retries=retries, client_cert=client_cert, client_key=client_key)

    @property
    def cert(self) -> str | tuple[str, str] | None:
        """The client certificate for mutual TLS, as requests takes it (None, a path or (cert, key))."""
        if not self.client_cert:
            return None
        return (self.client_cert, self.client_key) if self.client_key else self.client_cert

    def with_credentials(self, credentials: Credentials | None) -> ConnectionConfig:
        """A copy of these options with other credentials (the rest is shared)."""
        return ConnectionConfig(credentials=credentials, validate_certs=self.validate_certs, ca_path=self.ca_path,
                                timeout=self.timeout, retries=self.retries, client_cert=self.client_cert,
                                client_key=self.client_key)

    @property
    def verify(self) -> bool | str:
        """What requests verifies the server with: False, a CA file, or True (the default store)."""
        if not self.validate_certs:
            return False
        return self.ca_path or True


def has_credentials(config: ConnectionConfig) -> bool:
    """Whether ``config`` carries credentials the user gave as options (not stored ones)."""
    credentials = config.credentials
    return bool(credentials and (credentials.token or credentials.username))


def _check_readable(name: str, path: str | None) -> None:
    """Raise InvalidInputError naming the option when ``path`` is set but not a readable file."""
    if not path:
        return
    if not os.path.isfile(path):
        raise InvalidInputError('%s %s %s' % (name, path, 'is not a file' if os.path.exists(path) else 'does not exist'))
    if not os.access(path, os.R_OK):
        raise InvalidInputError('%s %s is not readable' % (name, path))
