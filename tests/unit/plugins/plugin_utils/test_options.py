# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plugin options become the same ConnectionOptions the modules build, with the same checks."""

from __future__ import annotations

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import has_credentials
from ansible_collections.imagelayers.registry.plugins.plugin_utils._options import connection_options

DEFAULTS = {'username': None, 'password': None, 'token': None, 'validate_certs': True, 'ca_path': None,
            'timeout': 60.0, 'retries': 3}


def build(**overrides):
    values = dict(DEFAULTS, **overrides)
    return connection_options(values.__getitem__)


def test_defaults_match_the_modules():
    options = build()
    assert (options.validate_certs, options.ca_path, options.timeout, options.retries) == (True, None, 60.0, 3)
    assert not has_credentials(options)
    assert options.credentials.source is None


def test_basic_credentials_and_tls_options(tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text('not checked here')
    options = build(username='ci', password='s3cret', validate_certs=False, ca_path=str(ca), timeout='5',
                    retries='0')
    assert options.credentials.has_basic
    assert (options.credentials.username, options.credentials.password) == ('ci', 's3cret')
    assert options.credentials.source == 'plugin options'
    assert has_credentials(options)
    assert options.verify is False
    assert (options.timeout, options.retries) == (5.0, 0)


def test_token():
    options = build(token='tok')
    assert options.credentials.token == 'tok'
    assert has_credentials(options)


@pytest.mark.parametrize('overrides, fragment', [
    ({'token': 't', 'username': 'u', 'password': 'p'}, 'mutually exclusive'),
    ({'token': 't', 'password': 'p'}, 'mutually exclusive'),
    ({'username': 'u'}, 'set together'),
    ({'password': 'p'}, 'set together'),
    ({'timeout': 0}, 'timeout'),
    ({'timeout': 'soon'}, 'timeout'),
    ({'retries': 21}, 'retries'),
    ({'retries': -1}, 'retries'),
    ({'ca_path': '/nonexistent/ca.pem'}, 'ca_path /nonexistent/ca.pem does not exist'),
    ({'client_key': '/nonexistent/key.pem'}, 'client_key needs client_cert'),
])
def test_invalid_combinations_are_refused(overrides, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        build(**overrides)


def test_error_messages_never_contain_the_secret():
    with pytest.raises(InvalidInputError) as excinfo:
        build(token='t0psecret', password='pa55word')
    assert 't0psecret' not in str(excinfo.value) and 'pa55word' not in str(excinfo.value)


def test_client_certificate(tmp_path):
    cert = tmp_path / 'client.pem'
    cert.write_text('cert')
    options = build(client_cert=str(cert))
    assert getattr(options, 'client_cert', None) == str(cert)


def test_stored_credentials_only_when_none_were_given(tmp_path):
    from ansible_collections.imagelayers.registry.plugins.module_utils._credentials import CredentialStore
    from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
    config = tmp_path / 'config.json'
    config.write_text('{"auths": {"registry.example.com": {"auth": "c3RvcmVkOnB3"}}}')  # stored:pw
    reference = ImageReference.parse('registry.example.com/app:1')
    store = CredentialStore(config_path=str(config))
    stored = store.complete(build(), reference)
    assert (stored.credentials.username, stored.credentials.password) == ('stored', 'pw')
    given = build(username='ci', password='s3cret')
    assert store.complete(given, reference) is given
    other = ImageReference.parse('quay.io/app:1')
    assert store.complete(build(), other).credentials.is_empty


class FakeTemplar:
    """Renders "{{ name }}" from its variables; anything else with "{{" is a syntax error."""

    def __init__(self, variables):
        self.variables = variables

    def template(self, value):
        if isinstance(value, str) and '{{' in value:
            name = value.strip()[2:-2].strip() if value.strip().endswith('}}') else None
            if not name or not name.isidentifier():
                raise ValueError('template error while templating string: unexpected end of template: %s' % value)
            if name not in self.variables:
                raise ValueError("'%s' is undefined" % name)
            return self.variables[name]
        return value


DEFINITIONS = {
    'username': {'vars': [{'name': 'imagelayers_registry_username'}]},
    'password': {'vars': [{'name': 'imagelayers_registry_password'}]},
    'token': {'vars': [{'name': 'imagelayers_registry_token'}]},
    'timeout': {'vars': [{'name': 'imagelayers_registry_timeout'}, {'name': 'registry_timeout'}]},
    'platform': {},
}


def test_variables_that_feed_options_are_templated_and_no_others():
    from ansible_collections.imagelayers.registry.plugins.plugin_utils._options import templated_variables
    variables = {'imagelayers_registry_username': 'ci', 'imagelayers_registry_password': '{{ vault_pw }}',
                 'registry_timeout': '{{ slow }}', 'vault_pw': 's3cret', 'slow': 90, 'other': '{{ nothere }}'}
    assert templated_variables(FakeTemplar(variables), variables, DEFINITIONS) == {
        'imagelayers_registry_username': 'ci', 'imagelayers_registry_password': 's3cret', 'registry_timeout': 90}


def test_without_a_templar_the_variables_are_passed_as_they_are():
    from ansible_collections.imagelayers.registry.plugins.plugin_utils._options import templated_variables
    variables = {'imagelayers_registry_password': '{{ vault_pw }}', 'other': 1}
    assert templated_variables(None, variables, DEFINITIONS) == {'imagelayers_registry_password': '{{ vault_pw }}'}
    assert templated_variables(None, None, DEFINITIONS) == {}


def error_chain(error):
    """The messages of an exception and of everything Ansible would show as its cause."""
    messages = []
    while error is not None and len(messages) < 10:
        messages.append(str(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return ' | '.join(messages)


@pytest.mark.parametrize('name, option', [('imagelayers_registry_password', 'password'),
                                          ('imagelayers_registry_token', 'token')])
def test_a_secret_that_cannot_be_templated_is_never_echoed(name, option):
    from ansible_collections.imagelayers.registry.plugins.plugin_utils._options import templated_variables
    variables = {name: 'pa55{{word'}
    with pytest.raises(InvalidInputError) as excinfo:
        templated_variables(FakeTemplar(variables), variables, DEFINITIONS)
    assert name in str(excinfo.value) and option in str(excinfo.value)
    assert 'pa55' not in error_chain(excinfo.value)


def test_other_variables_name_the_templating_error():
    from ansible_collections.imagelayers.registry.plugins.plugin_utils._options import templated_variables
    variables = {'registry_timeout': '{{ nothere }}'}
    with pytest.raises(InvalidInputError, match="registry_timeout.*'nothere' is undefined"):
        templated_variables(FakeTemplar(variables), variables, DEFINITIONS)
