# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The connection configuration every module and plugin hands to the registry client."""

from __future__ import annotations

from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials


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
