# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Ansible glue shared by every module: the options, the run context, clients, and the one failure path.

The options are the ones ``_argspec.connection_argument_spec`` (and, for a module that talks
to two registries, ``side_argument_spec``) builds, documented by the doc fragments
``imagelayers.registry._connection`` and ``_connection_sides``; AnsibleModule validates them
and ``ConnectionConfig.from_params`` turns them into a connection configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.imagelayers.registry.plugins.module_utils._argspec import (
    ArgumentSpec,
    connection_argument_spec,
    side_argument_spec,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._context import DEFAULT_WORKERS, RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._credentials import CredentialStore
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import RegistryError, fail_from_error
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    HTTPSession,
)

if TYPE_CHECKING:
    from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials


class RegistryModule:
    """An AnsibleModule with the shared options, one HTTP session and one failure path.

    ``sides`` (``('src_', 'dest_')``) adds the per-side options of a module that talks to
    two registries; ``rules`` are the module's own ``mutually_exclusive``, ``required_if``, ...
    """

    def __init__(self, argument_spec: dict[str, dict[str, Any]], sides: Sequence[str] = (),
                 supports_check_mode: bool = True, **rules: Any) -> None:
        spec = connection_argument_spec()
        for prefix in sides:
            spec.update(side_argument_spec(prefix))
        spec.update(ArgumentSpec(argument_spec, **rules))
        self.module = AnsibleModule(supports_check_mode=supports_check_mode, **spec.module_kwargs())
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)
        self.params = self.module.params
        self.http = HTTPSession()
        self.credentials = CredentialStore(self.params.get('config_path'))

    def context(self, workers: int = DEFAULT_WORKERS) -> RunContext:
        """What the task asks of the operation it runs: check mode, diff mode, retries, workers, warnings."""
        return RunContext(check_mode=self.module.check_mode, diff_mode=self.module._diff,
                          retries=self.params['retries'], workers=workers, warn=self.warn)

    def client(self, reference: ImageReference, prefix: str = '') -> RegistryClient:
        """A RegistryClient for the registry of ``reference`` on this run's HTTP session.

        Its options are the module's (one side's, with ``prefix``); without credentials among
        them, stored ones are looked up for the reference's registry.
        """
        options = self.credentials.complete(ConnectionConfig.from_params(self.params, prefix), reference)
        self.register_secrets(options.credentials)
        return RegistryClient.for_reference(self.http, reference, options)

    def register_secrets(self, credentials: Credentials | None) -> None:
        """Have ``no_log`` mask every form of ``credentials``: the raw secrets, which it knows from
        the options, and the ``Authorization`` values built from them (base64 of user:password,
        ``Basic ...``, ``Bearer ...``), which a registry may echo and it would not recognise."""
        if credentials is not None:
            self.module.no_log_values.update(credentials.secrets())

    def warn(self, message: str) -> None:
        self.module.warn(message)

    def run(self, operation: Callable[[RegistryModule], dict[str, Any]]) -> None:
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
