# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Connection options of controller-side plugins, validated and built the way the modules' are.

A plugin documents its options with the doc fragments ``imagelayers.registry._connection``
(the options, as the modules have them) and ``imagelayers.registry._connection_plugin`` (their
``env``/``ini``/``vars`` sources), templates the variables that feed them with
:func:`templated_variables` before ``set_options``, and passes its ``get_option`` to
:func:`connection_options`: the modules' argument spec, checked by Ansible's own validator,
then ``ConnectionConfig.from_params``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ansible_collections.imagelayers.registry.plugins.module_utils._argspec import connection_argument_spec
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig

try:  # ansible-core >= 2.19: a variable templated to ``omit`` sets nothing
    from ansible.errors import AnsibleValueOmittedError
except ImportError:  # pragma: no cover - ansible-core < 2.19 has no such error
    class AnsibleValueOmittedError(Exception):  # type: ignore[no-redef]
        """Never raised on ansible-core < 2.19."""

# Options whose value never appears in a message, not even in a templating error.
SECRET_OPTION_NAMES = ('password', 'token')


def templated_variables(templar: Any, variables: Mapping[str, Any] | None,
                        definitions: Mapping[str, Any] | None) -> dict[str, Any]:
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
    result: dict[str, Any] = {}
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


def _template_failure(name: str, option: str, error: Exception) -> str:
    """A message for a variable that did not template, without a secret's value."""
    if option in SECRET_OPTION_NAMES:
        return ('The variable %s (option %s) could not be templated (%s; the details are not shown, '
                'as they may contain the secret)' % (name, option, type(error).__name__))
    return 'The variable %s (option %s) could not be templated: %s' % (name, option, error)


def connection_options(get_option: Callable[[str], Any], source: str = 'plugin options') -> ConnectionConfig:
    """ConnectionConfig from a plugin's resolved options; InvalidInputError with the modules' rules.

    An option the plugin does not declare (``get_option`` raises KeyError), left unset or set to
    an empty string is not given, as for a module task that leaves it out.
    """
    spec = connection_argument_spec()
    for option in spec.argument_spec.values():
        option.pop('fallback', None)  # the plugin's own sources (env, ini, vars) were resolved already
    given = {}
    for name in spec.argument_spec:
        try:
            value = get_option(name)
        except KeyError:
            continue
        if value is not None and value != '':
            given[name] = value
    return ConnectionConfig.from_params(spec.validate(given), source=source)
