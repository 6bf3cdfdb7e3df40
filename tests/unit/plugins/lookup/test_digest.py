# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The digest lookup against an in-process registry: digests, platforms, missing tags, options, credentials."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader
from ansible.template import Templar
from ansible.utils.collection_loader import AnsibleCollectionConfig

try:  # ansible-core >= 2.19: only strings from trusted sources (playbooks, inventory) are templates
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - ansible-core < 2.19 templates every string
    def trust_as_template(value):
        return value

from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    Registry,
    digest_of,
    requiring_basic,
)

# Loading a lookup with its options (and doc fragments) needs the collection loader, which
# ansible-test units installs (`make units`); a plain pytest run skips these tests.
pytestmark = pytest.mark.skipif(AnsibleCollectionConfig.collection_finder is None,
                                reason='needs the collection loader: run with ansible-test units')


def basic_auth_registry():
    """A registry that answers 401 with a Basic challenge unless the request carries ci:s3cret."""
    reg = Registry()
    reg.handler = requiring_basic('ci', 's3cret', reg.handle, realm='test')
    return reg


@pytest.fixture
def images(registry):
    amd64, dummy, dummy = registry.add_image('team/app', None, [b'amd64 layer'], platform=('linux', 'amd64', None))
    arm64, dummy, dummy = registry.add_image('team/app', None, [b'arm64 layer'], platform=('linux', 'arm64', 'v8'))
    index = registry.add_index('team/app', '1.0', [(amd64, ('linux', 'amd64', None)), (arm64, ('linux', 'arm64', 'v8'))])
    single, dummy, dummy = registry.add_image('team/tool', 'latest', [b'tool layer'])
    return {'amd64': amd64, 'arm64': arm64, 'index': index, 'single': single}


def lookup(terms, variables=None, **kwargs):
    plugin = lookup_loader.get('imagelayers.registry.digest')
    assert plugin is not None
    return plugin.run(terms, variables=variables or {}, **kwargs)


def templated_lookup(terms, variables, **kwargs):
    """The lookup as a template invokes it: with a templar over the same variables."""
    loader = DataLoader()
    plugin = lookup_loader.get('imagelayers.registry.digest', loader=loader,
                               templar=Templar(loader=loader, variables=variables))
    assert plugin is not None
    return plugin.run(terms, variables=variables, **kwargs)


def serve_other_manifest_for(registry, repository, asked, served):
    """Make the registry answer the manifest ``served`` when asked for the digest ``asked``."""
    registry.manifests[(repository, asked)] = registry.manifests[(repository, served)]


def manifest_requests(registry):
    return [(r['method'], r['path']) for r in registry.requests if '/manifests/' in r['path']]


def test_index_digest_for_a_multi_platform_image(registry, images):
    assert lookup([registry.host + '/team/app:1.0']) == [images['index']]
    # one HEAD, no manifest download
    assert manifest_requests(registry) == [('HEAD', '/v2/team/app/manifests/1.0')]


def test_digest_is_the_hash_of_the_index_bytes(registry, images):
    media_type, data = registry.manifests[('team/app', '1.0')]
    assert lookup([registry.host + '/team/app:1.0']) == [digest_of(data)]


def test_default_tag_is_latest(registry, images):
    assert lookup([registry.host + '/team/tool']) == [images['single']]


def test_several_references_in_order_each_asked_once(registry, images):
    app = registry.host + '/team/app:1.0'
    tool = registry.host + '/team/tool:latest'
    assert lookup([tool, app, tool]) == [images['single'], images['index'], images['single']]
    assert len(manifest_requests(registry)) == 2


def test_nested_term_lists_are_flattened(registry, images):
    assert lookup([[registry.host + '/team/tool', registry.host + '/team/app:1.0']]) == [
        images['single'], images['index']]


def test_reference_by_digest_is_checked_to_exist(registry, images):
    assert lookup([registry.host + '/team/app@' + images['arm64']]) == [images['arm64']]
    with pytest.raises(AnsibleLookupError, match='does not exist'):
        lookup([registry.host + '/team/app@sha256:' + '0' * 64])


def test_reference_by_digest_confirmed_by_one_head(registry, images):
    assert lookup([registry.host + '/team/app@' + images['amd64']]) == [images['amd64']]
    assert manifest_requests(registry) == [('HEAD', '/v2/team/app/manifests/' + images['amd64'])]


@pytest.mark.parametrize('on_missing', ['error', 'ignore'])
def test_pinned_digest_is_refused_when_the_head_answers_another_digest(registry, images, on_missing):
    # A registry (or a proxy) that answers HEAD app@X with "Docker-Content-Digest: Y".
    serve_other_manifest_for(registry, 'team/app', images['amd64'], images['arm64'])
    with pytest.raises(AnsibleLookupError) as excinfo:
        lookup([registry.host + '/team/tool', registry.host + '/team/app@' + images['amd64']], on_missing=on_missing)
    message = str(excinfo.value)
    assert images['amd64'] in message and images['arm64'] in message


def test_pinned_digest_is_refused_when_the_manifest_hashes_to_another_digest(images):
    reg = Registry(digest_header=False)
    try:
        amd64, dummy, dummy = reg.add_image('team/app', None, [b'amd64 layer'])
        arm64, dummy, dummy = reg.add_image('team/app', None, [b'arm64 layer'], platform=('linux', 'arm64', 'v8'))
        assert lookup([reg.host + '/team/app@' + arm64]) == [arm64]
        serve_other_manifest_for(reg, 'team/app', amd64, arm64)
        with pytest.raises(AnsibleLookupError) as excinfo:
            lookup([reg.host + '/team/app@' + amd64])
        message = str(excinfo.value)
        assert amd64 in message and arm64 in message
        # no digest header: the manifest was fetched by its digest and hashed
        assert ('GET', '/v2/team/app/manifests/' + amd64) in manifest_requests(reg)
    finally:
        reg.close()


@pytest.mark.parametrize('platform, expected', [('linux/arm64', 'arm64'), ('linux/arm64/v8', 'arm64'),
                                                ('linux/amd64', 'amd64')])
def test_platform_selects_the_image_of_an_index(registry, images, platform, expected):
    assert lookup([registry.host + '/team/app:1.0'], platform=platform) == [images[expected]]


def test_platform_missing_from_the_index_is_an_error_listing_what_it_has(registry, images):
    with pytest.raises(AnsibleLookupError) as excinfo:
        lookup([registry.host + '/team/app:1.0'], platform='linux/s390x')
    assert 'linux/amd64' in str(excinfo.value) and 'linux/arm64' in str(excinfo.value)


def test_platform_of_a_single_image_must_match(registry, images):
    assert lookup([registry.host + '/team/tool'], platform='linux/amd64') == [images['single']]
    with pytest.raises(AnsibleLookupError):
        lookup([registry.host + '/team/tool'], platform='linux/arm64')


def test_missing_tag_fails_naming_the_reference(registry, images):
    with pytest.raises(AnsibleLookupError) as excinfo:
        lookup([registry.host + '/team/app:1.0', registry.host + '/team/app:2.0'])
    assert str(excinfo.value) == ('%s/team/app:2.0 does not exist in the registry (no such repository, tag or digest)'
                                  % registry.host)


def test_missing_repository_fails_too(registry, images):
    with pytest.raises(AnsibleLookupError, match='nothere:latest does not exist'):
        lookup([registry.host + '/team/nothere'])


@pytest.mark.parametrize('on_missing', ['ignore', 'warn'])
def test_on_missing_gives_an_empty_string_and_resolves_the_others(registry, images, on_missing):
    result = lookup([registry.host + '/team/app:2.0', registry.host + '/team/app:1.0'], on_missing=on_missing)
    assert result == ['', images['index']]


def test_bad_reference_is_an_error_without_any_request(registry, images):
    with pytest.raises(AnsibleLookupError, match='lowercase'):
        lookup([registry.host + '/Team/App'])
    with pytest.raises(AnsibleLookupError, match='expected a string'):
        lookup([None])
    assert registry.requests == []


def test_registry_errors_are_lookup_errors(registry, images):
    registry.fault = lambda request: {'status': 500}
    with pytest.raises(AnsibleLookupError, match='500'):
        lookup([registry.host + '/team/app:1.0'], retries=0)


def test_credentials_from_variables_reach_the_registry():
    reg = basic_auth_registry()
    try:
        digest, dummy, dummy = reg.add_image('private/app', 'v1', [b'layer'])
        with pytest.raises(AnsibleLookupError, match='requires a username and password'):
            lookup([reg.host + '/private/app:v1'])
        variables = {'imagelayers_registry_username': 'ci', 'imagelayers_registry_password': 's3cret'}
        assert lookup([reg.host + '/private/app:v1'], variables=variables) == [digest]
    finally:
        reg.close()


def basic_passwords(registry):
    """The passwords of the Basic Authorization headers the registry received."""
    passwords = []
    for request in registry.requests:
        value = request['headers'].get('Authorization') or ''
        if value.startswith('Basic '):
            passwords.append(base64.b64decode(value[len('Basic '):]).decode().split(':', 1)[1])
    return passwords


def test_credentials_from_templated_variables_are_templated():
    # The EXAMPLES' pattern: imagelayers_registry_password: "{{ registry_password }}"
    reg = basic_auth_registry()
    try:
        digest, dummy, dummy = reg.add_image('private/app', 'v1', [b'layer'])
        variables = {
            'imagelayers_registry_username': trust_as_template('{{ registry_user }}'),
            'imagelayers_registry_password': trust_as_template('{{ registry_password }}'),
            'registry_user': 'ci',
            'registry_password': 's3cret',
        }
        assert templated_lookup([reg.host + '/private/app:v1'], variables) == [digest]
        assert set(basic_passwords(reg)) == {'s3cret'}
    finally:
        reg.close()


def test_a_password_that_cannot_be_templated_is_not_echoed():
    reg = basic_auth_registry()
    try:
        variables = {'imagelayers_registry_username': 'ci',
                     'imagelayers_registry_password': trust_as_template('pa55{{word')}
        with pytest.raises(AnsibleLookupError) as excinfo:
            templated_lookup([reg.host + '/private/app:v1'], variables)
        assert 'imagelayers_registry_password' in str(excinfo.value)
        assert 'pa55' not in str(excinfo.value)
        assert reg.requests == []
    finally:
        reg.close()


def test_keyword_arguments_override_variables():
    reg = basic_auth_registry()
    try:
        digest, dummy, dummy = reg.add_image('private/app', 'v1', [b'layer'])
        variables = {'imagelayers_registry_username': 'ci', 'imagelayers_registry_password': 'wrong'}
        assert lookup([reg.host + '/private/app:v1'], variables=variables, password='s3cret') == [digest]
    finally:
        reg.close()


def test_credentials_from_the_environment(monkeypatch):
    reg = basic_auth_registry()
    try:
        digest, dummy, dummy = reg.add_image('private/app', 'v1', [b'layer'])
        monkeypatch.setenv('IMAGELAYERS_REGISTRY_USERNAME', 'ci')
        monkeypatch.setenv('IMAGELAYERS_REGISTRY_PASSWORD', 's3cret')
        assert lookup([reg.host + '/private/app:v1']) == [digest]
    finally:
        reg.close()


def test_credentials_are_never_sent_to_a_second_registry(registry, images):
    other = Registry()
    try:
        with pytest.raises(AnsibleLookupError, match='2 registries') as excinfo:
            lookup([registry.host + '/team/app:1.0', other.host + '/team/app:1.0'], username='ci', password='s3cret')
        assert 's3cret' not in str(excinfo.value)
        assert registry.requests == [] and other.requests == []
    finally:
        other.close()


def test_several_registries_without_credentials(registry, images):
    other = Registry()
    try:
        digest, dummy, dummy = other.add_image('team/app', '1.0', [b'other'])
        assert lookup([registry.host + '/team/app:1.0', other.host + '/team/app:1.0']) == [images['index'], digest]
    finally:
        other.close()


@pytest.mark.parametrize('kwargs, fragment', [
    ({'token': 't', 'username': 'u', 'password': 'p'}, 'mutually exclusive'),
    ({'username': 'u'}, 'set together'),
    ({'timeout': 0}, 'timeout'),
    ({'retries': 50}, 'retries'),
    ({'platform': 'amd64'}, 'Invalid platform'),
])
def test_invalid_options(registry, images, kwargs, fragment):
    with pytest.raises(AnsibleLookupError, match=fragment):
        lookup([registry.host + '/team/app:1.0'], **kwargs)
    assert registry.requests == []


def test_on_missing_choices_are_enforced(registry, images):
    with pytest.raises(Exception, match='on_missing'):
        lookup([registry.host + '/team/app:1.0'], on_missing='skip')


def test_stored_credentials_from_config_path(tmp_path):
    reg = basic_auth_registry()
    try:
        digest, dummy, dummy = reg.add_image('private/app', 'v1', [b'layer'])
        config = tmp_path / 'config.json'
        config.write_text('{"auths": {"%s": {"auth": "%s"}}}' % (reg.host, base64.b64encode(b'ci:s3cret').decode()))
        assert lookup([reg.host + '/private/app:v1'], config_path=str(config)) == [digest]
        # stored credentials are per registry, so several registries are fine
        other = Registry()
        try:
            other_digest, dummy, dummy = other.add_image('team/app', '1', [b'x'])
            assert lookup([reg.host + '/private/app:v1', other.host + '/team/app:1'], config_path=str(config)) == [
                digest, other_digest]
            assert all('Authorization' not in r['headers'] for r in other.requests)
        finally:
            other.close()
    finally:
        reg.close()
