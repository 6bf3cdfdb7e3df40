# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-side connection options (copy's src_*/dest_*): what falls back to the shared options, and how."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._argspec import (
    connection_argument_spec,
    side_argument_spec,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._credentials import CredentialStore
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig


@pytest.fixture
def pem(tmp_path):
    def make(name):
        path = tmp_path / name
        path.write_text('-----BEGIN CERTIFICATE-----\n')
        return str(path)
    return make


def module_params(**given):
    """The params of a copy task: every shared and per-side option, defaults filled in."""
    params = {name: spec.get('default') for name, spec in connection_argument_spec().argument_spec.items()}
    for side in ('src_', 'dest_'):
        params.update(dict.fromkeys(side_argument_spec(side).argument_spec))
    params.update(given)
    return params


def options(prefix='', **given):
    return ConnectionConfig.from_params(module_params(**given), prefix)


def test_a_side_without_its_own_options_uses_the_shared_ones(pem):
    ca = pem('ca.pem')
    src = options('src_', username='u', password='p', validate_certs=True, ca_path=ca)
    assert (src.credentials.username, src.credentials.password, src.ca_path, src.validate_certs) == ('u', 'p', ca, True)


def test_side_tls_options_replace_the_shared_ones_one_by_one(pem):
    shared_ca, dest_ca = pem('shared.pem'), pem('dest.pem')
    dest = options('dest_', ca_path=shared_ca, dest_ca_path=dest_ca)
    src = options('src_', ca_path=shared_ca, dest_ca_path=dest_ca, src_validate_certs=False)
    assert dest.ca_path == dest_ca and dest.verify == dest_ca
    # src_validate_certs=false replaces only validate_certs: the shared CA stays, unused.
    assert src.ca_path == shared_ca and src.verify is False


def test_side_credentials_replace_all_shared_credentials():
    src = options('src_', token='shared-token', src_username='ci', src_password='pw')
    assert (src.credentials.username, src.credentials.password, src.credentials.token) == ('ci', 'pw', None)
    dest = options('dest_', token='shared-token', src_username='ci', src_password='pw')
    assert dest.credentials.token == 'shared-token' and dest.credentials.username is None


def test_client_certificate_and_key_go_as_a_pair(pem):
    cert, key, side_cert = pem('c.pem'), pem('k.pem'), pem('side.pem')
    # A side certificate without a key does not borrow the shared key.
    src = options('src_', client_cert=cert, client_key=key, src_client_cert=side_cert)
    assert src.cert == side_cert
    dest = options('dest_', client_cert=cert, client_key=key, src_client_cert=side_cert)
    assert dest.cert == (cert, key)
    with pytest.raises(InvalidInputError, match='src_client_key needs src_client_cert'):
        options('src_', client_cert=cert, src_client_key=key)


def test_a_missing_side_file_is_named_by_its_option(tmp_path):
    with pytest.raises(InvalidInputError, match='^dest_ca_path .* does not exist'):
        options('dest_', dest_ca_path=str(tmp_path / 'nope.pem'))


def _module_double(stored=None, params=None):
    """Just enough of a RegistryModule for ``client()``: masked values, stored credentials, a session."""
    from types import MethodType

    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession
    double = SimpleNamespace(module=SimpleNamespace(no_log_values=set()), http=HTTPSession(),
                             credentials=CredentialStore(), params=params or module_params())
    double.credentials.get = lambda reference: stored
    for name in ('client', 'register_secrets'):
        if hasattr(RegistryModule, name):
            setattr(double, name, MethodType(getattr(RegistryModule, name), double))
    return double


def test_the_authorization_forms_of_option_credentials_are_masked_by_no_log():
    import base64

    from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
    double = _module_double(params=module_params(username='ci', password='Opt-Pw-91c2'))
    double.client(ImageReference.parse('127.0.0.1:5999/team/app:v1'))
    b64 = base64.b64encode(b'ci:Opt-Pw-91c2').decode()
    assert {'Opt-Pw-91c2', b64, 'Basic ' + b64} <= double.module.no_log_values


def test_the_authorization_forms_of_stored_credentials_are_masked_by_no_log():
    from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
    from ansible_collections.imagelayers.registry.plugins.module_utils._registry.auth import Credentials
    double = _module_double(stored=Credentials(token='Stored-Tok-4410', source='config.json'))
    double.client(ImageReference.parse('127.0.0.1:5999/team/app:v1'))
    assert {'Stored-Tok-4410', 'Bearer Stored-Tok-4410'} <= double.module.no_log_values
