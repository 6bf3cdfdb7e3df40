# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Connection options of controller-side plugins, built the way the modules build them.

A plugin documents its options with the ``imagelayers.registry._connection_plugin``
doc fragment (same names and defaults as the modules' ``_connection`` fragment,
plus ``env``/``ini``/``vars`` sources), templates the variables that feed them with
:func:`templated_variables` before ``set_options``, and passes its ``get_option`` here.
"""

from __future__ import annotations

import os

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig

try:  # ansible-core >= 2.19: a variable templated to ``omit`` sets nothing
    from ansible.errors import AnsibleValueOmittedError
except ImportError:  # pragma: no cover - ansible-core < 2.19 has no such error
    class AnsibleValueOmittedError(Exception):
        """Never raised on ansible-core < 2.19."""

try:  # stored credentials (config.json, credential helpers, auth.json), as the modules use them
    from ansible_collections.imagelayers.registry.plugins.module_utils._credentials import (
        lookup as lookup_stored_credentials,
    )
except ImportError:  # pragma: no cover - older checkouts without stored credentials
    lookup_stored_credentials = None

CONNECTION_OPTION_NAMES = ('username', 'password', 'token', 'validate_certs', 'ca_path', 'client_cert',
                           'client_key', 'config_path', 'timeout', 'retries')

# Options whose value never appears in a message, not even in a templating error.
SECRET_OPTION_NAMES = ('password', 'token')


def templated_variables(templar, variables, definitions):
    """The variables that feed options (the ``vars:`` of ``definitions``), templated.

    A lookup receives the play's variables untemplated: ``imagelayers_registry_password:
    "{{ vault_password }}"`` would reach ``set_options`` as that literal string. Templated
    here as ansible-core templates connection variables (``TaskExecutor._set_plugin_options``),
    only those variables, so nothing else is rendered. A variable rendered to ``omit``
    is left out. Without a templar (a plugin built outside a template) the values pass as they are.
    A templating error names the variable and the option; for a secret option it does not
    include the error's text, which may quote the value.
    """
    variables = variables or {}
    result = {}
    for option, definition in sorted((definitions or {}).items()):
        for entry in definition.get('vars') or ():
            name = entry.get('name')
            if name not in variables:
                continue
            if templar is None:
                result[name] = variables[name]
                continue
            try:
                result[name] = templar.template(variables[name])
            except AnsibleValueOmittedError:
                continue
            except Exception as error:  # pylint: disable=broad-exception-caught
                raise InvalidInputError(_template_failure(name, option, error)) from None
    return result


def _template_failure(name, option, error):
    """A message for a variable that did not template, without a secret's value."""
    if option in SECRET_OPTION_NAMES:
        return ('The variable %s (option %s) could not be templated (%s; the details are not shown, '
                'as they may contain the secret)' % (name, option, type(error).__name__))
    return 'The variable %s (option %s) could not be templated: %s' % (name, option, error)


def _optional(get_option, name):
    """An option the plugin may not declare (older doc fragment): None when unknown."""
    try:
        return get_option(name)
    except KeyError:
        return None


def connection_options(get_option, source='plugin options'):
    """ConnectionConfig from a plugin's resolved options; raise InvalidInputError like the modules do.

    The checks are the modules' ones: ``token`` excludes ``username``/``password``,
    ``username`` and ``password`` go together, ``timeout`` > 0, 0 <= ``retries`` <= 20.
    """
    username = get_option('username') or None
    password = get_option('password')
    token = get_option('token') or None
    if token and (username or password):
        raise InvalidInputError('token is mutually exclusive with username and password; set only one of them')
    if bool(username) != (password is not None and password != ''):
        raise InvalidInputError('username and password must be set together (one of them is missing)')
    timeout = get_option('timeout')
    retries = get_option('retries')
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise InvalidInputError('timeout must be a positive number of seconds, got %r' % (timeout,))
    if timeout <= 0:
        raise InvalidInputError('timeout must be a positive number of seconds, got %r' % (timeout,))
    try:
        retries = int(retries)
    except (TypeError, ValueError):
        raise InvalidInputError('retries must be between 0 and 20, got %r' % (retries,))
    if retries < 0 or retries > 20:
        raise InvalidInputError('retries must be between 0 and 20, got %r' % (retries,))
    validate_certs = get_option('validate_certs')
    credentials = Credentials(username=username, password=password if username else None, token=token,
                              source=source if username or token else None)
    extra = {}
    client_cert = _optional(get_option, 'client_cert') or None
    client_key = _optional(get_option, 'client_key') or None
    if client_key and not client_cert:
        raise InvalidInputError('client_key needs client_cert (the client certificate it belongs to)')
    for name, path in (('ca_path', get_option('ca_path')), ('client_cert', client_cert), ('client_key', client_key)):
        if path and not os.path.isfile(path):
            raise InvalidInputError('%s %s %s' % (name, path, 'is not a file' if os.path.exists(path) else 'does not exist'))
    if client_cert:
        extra = {'client_cert': client_cert, 'client_key': client_key}
    return ConnectionConfig(credentials=credentials,
                            validate_certs=True if validate_certs is None else bool(validate_certs),
                            ca_path=get_option('ca_path') or None, timeout=timeout, retries=retries, **extra)


def has_credentials(options):
    """Whether the options carry credentials the user gave (not stored ones)."""
    credentials = options.credentials
    return bool(credentials and (credentials.token or credentials.username))


def options_for(options, reference, config_path=None, cache=None):
    """``options``, with the stored credentials of ``reference``'s registry when the user gave none.

    The same order as the modules: options, then config.json / credential helpers / auth.json,
    else anonymous. ``cache`` (a dict) keeps one lookup per registry and repository.
    """
    if has_credentials(options) or lookup_stored_credentials is None:
        return options
    key = (reference.registry, reference.repository)
    if cache is not None and key in cache:
        stored = cache[key]
    else:
        stored = lookup_stored_credentials(reference.registry, reference.repository, config_path=config_path)
        if cache is not None:
            cache[key] = stored
    if stored is None:
        return options
    return options.with_credentials(stored)
