# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Ansible glue shared by every module: the connection options and the one failure path.

The options built here are exactly the ones documented by the doc fragment
``imagelayers.registry._connection``.
"""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.imagelayers.registry.plugins.module_utils._credentials import lookup as lookup_credentials
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    InvalidInputError,
    RegistryError,
    fail_from_error,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    HTTPSession,
)


def connection_argument_spec():
    return {
        'username': {'type': 'str', 'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_USERNAME'])},
        'password': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_PASSWORD'])},
        'token': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_TOKEN'])},
        'validate_certs': {'type': 'bool', 'default': True,
                           'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_VALIDATE_CERTS'])},
        'ca_path': {'type': 'path', 'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_CA_PATH'])},
        'client_cert': {'type': 'path', 'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_CLIENT_CERT'])},
        'client_key': {'type': 'path', 'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_CLIENT_KEY'])},
        'config_path': {'type': 'path', 'fallback': (env_fallback, ['IMAGELAYERS_REGISTRY_CONFIG_PATH'])},
        'timeout': {'type': 'float', 'default': 60.0},
        'retries': {'type': 'int', 'default': 3},
    }


CONNECTION_MUTUALLY_EXCLUSIVE = [('password', 'token'), ('username', 'token')]
CONNECTION_REQUIRED_TOGETHER = [('username', 'password')]


def side_argument_spec(prefix):
    """The per-side options (``src_``, ``dest_``) of a module that talks to two registries.

    Each falls back to the shared option of the same name (see
    RegistryModule.connection_options); documented in the module that uses them.
    """
    return {
        prefix + 'username': {'type': 'str'},
        prefix + 'password': {'type': 'str', 'no_log': True},
        prefix + 'token': {'type': 'str', 'no_log': True},
        prefix + 'validate_certs': {'type': 'bool'},
        prefix + 'ca_path': {'type': 'path'},
        prefix + 'client_cert': {'type': 'path'},
        prefix + 'client_key': {'type': 'path'},
    }


def side_mutually_exclusive(prefix):
    return [(prefix + 'password', prefix + 'token'), (prefix + 'username', prefix + 'token')]


def side_required_together(prefix):
    return [(prefix + 'username', prefix + 'password')]


class RegistryModule:
    """An AnsibleModule with the shared options, one HTTP session and one failure path."""

    def __init__(self, argument_spec, mutually_exclusive=None, required_together=None, required_if=None,
                 required_one_of=None, supports_check_mode=True):
        spec = connection_argument_spec()
        spec.update(argument_spec)
        self.module = AnsibleModule(
            argument_spec=spec,
            mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE + list(mutually_exclusive or []),
            required_together=CONNECTION_REQUIRED_TOGETHER + list(required_together or []),
            required_if=required_if,
            required_one_of=required_one_of,
            supports_check_mode=supports_check_mode,
        )
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.diff_mode = self.module._diff
        self.http = HTTPSession()
        self._warnings = []
        self._stored_credentials = {}

    def connection_options(self, prefix=''):
        """ConnectionConfig from the module's parameters.

        ``prefix`` (``src_``, ``dest_``) selects one side of a module that talks to two
        registries (see :func:`side_argument_spec`): that side's credentials when any of
        them is given, else the shared ones; its client certificate and key as a pair, else
        the shared pair; and its ``validate_certs`` and ``ca_path``, each falling back to the
        shared option when unset. ``timeout`` and ``retries`` are always shared.
        """
        params = self.params
        timeout = params['timeout']
        retries = params['retries']
        if timeout is None or timeout <= 0:
            raise InvalidInputError('timeout must be a positive number of seconds, got %r' % (timeout,))
        if retries is None or retries < 0 or retries > 20:
            raise InvalidInputError('retries must be between 0 and 20, got %r' % (retries,))

        def side(names):
            """The prefixed options when the side sets any of ``names``, else the shared ones."""
            if prefix and any(params.get(prefix + name) not in (None, '') for name in names):
                return prefix
            return ''

        cred = side(('username', 'password', 'token'))
        credentials = Credentials(
            username=params.get(cred + 'username'),
            password=params.get(cred + 'password'),
            token=params.get(cred + 'token'),
            source='module options' if params.get(cred + 'username') or params.get(cred + 'token') else None,
        )
        pair = side(('client_cert', 'client_key'))
        client_cert, client_key = params.get(pair + 'client_cert'), params.get(pair + 'client_key')
        if client_key and not client_cert:
            raise InvalidInputError('%sclient_key needs %sclient_cert (the client certificate it belongs to)'
                                    % (pair, pair))
        ca = side(('ca_path',))
        ca_path = params.get(ca + 'ca_path')
        validate_certs = params.get(side(('validate_certs',)) + 'validate_certs')
        for name, path in ((ca + 'ca_path', ca_path), (pair + 'client_cert', client_cert),
                           (pair + 'client_key', client_key)):
            if path and not os.path.isfile(path):
                raise InvalidInputError('%s %s %s' % (
                    name, path, 'is not a file' if os.path.exists(path) else 'does not exist'))
            if path and not os.access(path, os.R_OK):
                raise InvalidInputError('%s %s is not readable' % (name, path))
        return ConnectionConfig(credentials=credentials, validate_certs=validate_certs,
                                ca_path=ca_path, timeout=timeout, retries=retries,
                                client_cert=client_cert, client_key=client_key)

    def stored_credentials(self, reference):
        """Credentials for ``reference`` from config.json, a credential helper or auth.json (None: anonymous).

        Looked up once per registry and repository in a run (a helper runs once).
        """
        key = (reference.registry, reference.repository)
        if key not in self._stored_credentials:
            self._stored_credentials[key] = lookup_credentials(
                reference.registry, reference.repository, config_path=self.params.get('config_path'))
            found = self._stored_credentials[key]
            if found is not None:
                # Masked like no_log options, should anything ever echo them.
                self.register_secrets(found)
        return self._stored_credentials[key]

    def client(self, reference, options=None):
        """A RegistryClient for the registry of ``reference`` on this run's HTTP session.

        Without credentials in the options, stored ones are looked up for the reference's registry.
        """
        options = options or self.connection_options()
        if options.credentials is None or options.credentials.is_empty:
            stored = self.stored_credentials(reference)
            if stored is not None:
                options = options.with_credentials(stored)
        self.register_secrets(options.credentials)
        return RegistryClient.for_reference(self.http, reference, options)

    def register_secrets(self, credentials):
        """Have ``no_log`` mask every form of ``credentials``: the raw secrets, which it knows from
        the options, and the ``Authorization`` values built from them (base64 of user:password,
        ``Basic ...``, ``Bearer ...``), which a registry may echo and it would not recognise."""
        if credentials is not None:
            self.module.no_log_values.update(credentials.secrets())

    def warn(self, message):
        self.module.warn(message)

    def run(self, operation):
        """Call ``operation(self)`` and exit with its result, or fail once with a readable message.

        ``fail_json`` is called after the ``except`` block on purpose: inside it,
        ansible-core would attach the (irrelevant) traceback of an expected error.
        """
        failure = None
        try:
            result = operation(self)
        except RegistryError as error:
            failure = error
        finally:
            self.http.close()
        if failure is not None:
            fail_from_error(self.module, failure)
        self.module.exit_json(**result)
