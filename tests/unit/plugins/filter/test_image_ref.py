# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image_ref filter: Docker Hub normalisation, canonical names and clear errors."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.imagelayers.registry.plugins.filter.image_ref import FilterModule, image_ref

DIGEST = 'sha256:' + 'a' * 64
HEX64 = 'f' * 64


def test_filter_is_registered():
    assert FilterModule().filters()['image_ref'] is image_ref


def test_official_docker_hub_image():
    assert image_ref('nginx') == {
        'registry': 'docker.io',
        'domain': 'docker.io',
        'api_host': 'registry-1.docker.io',
        'repository': 'library/nginx',
        'repository_name': 'docker.io/library/nginx',
        'tag': 'latest',
        'digest': None,
        'name': 'docker.io/library/nginx:latest',
        'familiar_name': 'nginx',
    }


@pytest.mark.parametrize('value', ['nginx:latest', 'docker.io/nginx', 'index.docker.io/library/nginx:latest',
                                   'registry-1.docker.io/library/nginx'])
def test_docker_hub_spellings_share_one_canonical_name(value):
    assert image_ref(value)['name'] == 'docker.io/library/nginx:latest'


def test_user_image_on_docker_hub_keeps_its_namespace():
    ref = image_ref('bitnami/redis:7.2')
    assert (ref['repository'], ref['familiar_name'], ref['name']) == (
        'bitnami/redis', 'bitnami/redis', 'docker.io/bitnami/redis:7.2')


def test_private_registry_with_port_tag_and_digest():
    ref = image_ref('registry.example.com:5000/team/app:1.4.2@' + DIGEST)
    assert ref['registry'] == ref['api_host'] == 'registry.example.com:5000'
    assert ref['repository'] == 'team/app'
    assert ref['tag'] == '1.4.2'
    assert ref['digest'] == DIGEST
    assert ref['name'] == 'registry.example.com:5000/team/app:1.4.2@' + DIGEST
    assert ref['familiar_name'] == 'registry.example.com:5000/team/app'


def test_digest_only_reference_gets_no_default_tag():
    ref = image_ref('localhost/app@' + DIGEST)
    assert ref['tag'] is None
    assert ref['name'] == 'localhost/app@' + DIGEST


@pytest.mark.parametrize('default_tag', ['', None])
def test_empty_default_tag_keeps_the_reference_untagged(default_tag):
    ref = image_ref('quay.io/org/app', default_tag=default_tag)
    assert ref['tag'] is None
    assert ref['name'] == 'quay.io/org/app'


def test_custom_default_tag():
    assert image_ref('quay.io/org/app', default_tag='stable')['name'] == 'quay.io/org/app:stable'


@pytest.mark.parametrize('value, fragment', [
    ('Nginx', 'repository names are lowercase'),
    ('app:-bad', "Invalid tag '-bad'"),
    ('app@sha256:abc', 'sha256'),
    ('registry.example.com:99999/app', 'Invalid port'),
    ('app name', 'white space'),
    ('', 'empty'),
    ('nginx\n', 'white space'),
    ('nginx:1.0\n', 'white space'),
    (HEX64, 'cannot be 64 hexadecimal digits, which Docker and containers/image refuse as ambiguous with an image ID'),
])
def test_bad_references_fail_with_a_clear_message(value, fragment):
    with pytest.raises(AnsibleFilterError) as excinfo:
        image_ref(value)
    assert fragment in str(excinfo.value)


@pytest.mark.parametrize('value', [None, 42, ['nginx']])
def test_non_strings_are_refused(value):
    with pytest.raises(AnsibleFilterError, match='expected an image reference string'):
        image_ref(value)


def test_bad_default_tag_is_refused():
    with pytest.raises(AnsibleFilterError, match='Invalid tag'):
        image_ref('app', default_tag='not a tag')


def test_a_64_hex_name_with_a_registry_or_tag_is_a_name_as_in_docker():
    # distribution/reference refuses 64 hex digits only when they are the whole reference.
    assert image_ref('registry.example.com/' + HEX64)['name'] == 'registry.example.com/%s:latest' % HEX64
    assert image_ref(HEX64 + ':1.0')['name'] == 'docker.io/library/%s:1.0' % HEX64


def test_a_default_tag_with_a_trailing_line_break_is_refused():
    with pytest.raises(AnsibleFilterError, match='line break'):
        image_ref('app', default_tag='latest\n')
