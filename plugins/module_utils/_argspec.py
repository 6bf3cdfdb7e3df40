# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The one argument spec of the connection options, for modules and controller-side plugins.

:func:`connection_argument_spec` is what the doc fragment ``imagelayers.registry._connection``
documents, and :func:`side_argument_spec` what ``imagelayers.registry._connection_sides``
documents. A module turns the spec into an AnsibleModule (``RegistryModule``), which
validates it; a lookup validates its resolved options with the same spec and Ansible's own
validator (:meth:`ArgumentSpec.validate`), so the rules and their messages are the same on
the controller. Neither builds a ConnectionConfig: ``ConnectionConfig.from_params`` does.

No ``ansible.module_utils.basic`` import here: plugins import this file on the controller.
"""

from __future__ import annotations

from typing import Any, Sequence

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import env_fallback
from ansible.module_utils.errors import MutuallyExclusiveError, RequiredTogetherError

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError

ENV_PREFIX = 'IMAGELAYERS_REGISTRY_'

# What the validator's message leaves the user to work out, said after it (controller side).
_HINTS = {
    MutuallyExclusiveError: 'set only one of them',
    RequiredTogetherError: 'they must be set together, or neither',
}


class ArgumentSpec:
    """An argument spec with its rules, merged from parts (community.crypto's ``_argspec`` idea)."""

    def __init__(self, argument_spec: dict[str, dict[str, Any]] | None = None,
                 mutually_exclusive: Sequence[Sequence[str]] | None = None,
                 required_together: Sequence[Sequence[str]] | None = None,
                 required_one_of: Sequence[Sequence[str]] | None = None,
                 required_if: Sequence[Sequence[Any]] | None = None) -> None:
        self.argument_spec: dict[str, dict[str, Any]] = dict(argument_spec or {})
        self.mutually_exclusive = [list(rule) for rule in mutually_exclusive or ()]
        self.required_together = [list(rule) for rule in required_together or ()]
        self.required_one_of = [list(rule) for rule in required_one_of or ()]
        self.required_if = [list(rule) for rule in required_if or ()]

    def update(self, other: ArgumentSpec) -> ArgumentSpec:
        """Add the options and rules of ``other`` (its options win on a name clash); returns self."""
        self.argument_spec.update(other.argument_spec)
        self.mutually_exclusive.extend(other.mutually_exclusive)
        self.required_together.extend(other.required_together)
        self.required_one_of.extend(other.required_one_of)
        self.required_if.extend(other.required_if)
        return self

    def module_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``AnsibleModule`` for this spec (empty rules left out)."""
        kwargs: dict[str, Any] = {'argument_spec': self.argument_spec}
        for name in ('mutually_exclusive', 'required_together', 'required_one_of', 'required_if'):
            if getattr(self, name):
                kwargs[name] = getattr(self, name)
        return kwargs

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` validated as AnsibleModule validates module arguments: types, defaults, rules.

        Returns every option of the spec (None when unset); raises InvalidInputError with the
        validator's first message, as a module fails with it, plus what to do for a broken rule.
        """
        result = ArgumentSpecValidator(**self.module_kwargs()).validate(values)
        if result.error_messages:
            first = result.errors.errors[0]
            hint = _HINTS.get(type(first))
            raise InvalidInputError('%s (%s)' % (first.msg, hint) if hint else first.msg)
        return result.validated_parameters


def _option(kind: str, env: str | None = None, **extra: Any) -> dict[str, Any]:
    option: dict[str, Any] = {'type': kind}
    if env:
        option['fallback'] = (env_fallback, [ENV_PREFIX + env])
    option.update(extra)
    return option


def connection_argument_spec() -> ArgumentSpec:
    """The shared connection options of every module and plugin, and their rules."""
    return ArgumentSpec(
        {
            'username': _option('str', 'USERNAME'),
            'password': _option('str', 'PASSWORD', no_log=True),
            'token': _option('str', 'TOKEN', no_log=True),
            'validate_certs': _option('bool', 'VALIDATE_CERTS', default=True),
            'ca_path': _option('path', 'CA_PATH'),
            'client_cert': _option('path', 'CLIENT_CERT'),
            'client_key': _option('path', 'CLIENT_KEY'),
            'config_path': _option('path', 'CONFIG_PATH'),
            'timeout': _option('float', default=60.0),
            'retries': _option('int', default=3),
        },
        mutually_exclusive=[('password', 'token'), ('username', 'token')],
        required_together=[('username', 'password')],
    )


def side_argument_spec(prefix: str) -> ArgumentSpec:
    """The per-side options (``src_``, ``dest_``) of a module that talks to two registries.

    Each falls back to the shared option of the same name (``ConnectionConfig.from_params``).
    """
    return ArgumentSpec(
        {
            prefix + 'username': _option('str'),
            prefix + 'password': _option('str', no_log=True),
            prefix + 'token': _option('str', no_log=True),
            prefix + 'validate_certs': _option('bool'),
            prefix + 'ca_path': _option('path'),
            prefix + 'client_cert': _option('path'),
            prefix + 'client_key': _option('path'),
        },
        mutually_exclusive=[(prefix + 'password', prefix + 'token'), (prefix + 'username', prefix + 'token')],
        required_together=[(prefix + 'username', prefix + 'password')],
    )


# -- signatures: signature_verify's options, copy's verify_signatures and sign ----------------
def verification_argument_spec() -> ArgumentSpec:
    """What a signature must verify with: PEM keys, or a keyless identity (``signature_verify``'s
    options, and the suboptions of ``copy``'s ``verify_signatures``)."""
    return ArgumentSpec({
        'keys': {'type': 'list', 'elements': 'str', 'no_log': False},
        'certificate_identity': {'type': 'str'},
        'certificate_identity_regexp': {'type': 'str'},
        'certificate_oidc_issuer': {'type': 'str'},
        'certificate_oidc_issuer_regexp': {'type': 'str'},
        'trusted_roots': {'type': 'str'},
        'rekor_public_key': {'type': 'str', 'no_log': False},
    }, mutually_exclusive=[('certificate_identity', 'certificate_identity_regexp'),
                           ('certificate_oidc_issuer', 'certificate_oidc_issuer_regexp')])


def signing_argument_spec() -> ArgumentSpec:
    """The key a signature is made with (``sign``'s options, and the suboptions of ``copy``'s ``sign``)."""
    return ArgumentSpec({
        'key': {'type': 'str', 'required': True, 'no_log': True},
        'passphrase': {'type': 'str', 'no_log': True},
        'format': {'type': 'str', 'default': 'simplesigning', 'choices': ['simplesigning', 'bundle']},
    })


def suboptions(spec: ArgumentSpec, **extra: Any) -> dict[str, Any]:
    """``spec`` as the ``options`` of a dict option, with its rules."""
    option: dict[str, Any] = {'type': 'dict', 'options': spec.argument_spec}
    option.update((name, rules) for name, rules in (('mutually_exclusive', spec.mutually_exclusive),
                                                    ('required_together', spec.required_together),
                                                    ('required_one_of', spec.required_one_of),
                                                    ('required_if', spec.required_if)) if rules)
    option.update(extra)
    return option
