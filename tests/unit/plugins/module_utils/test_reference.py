# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference

D256 = 'sha256:' + 'a' * 64
D512 = 'sha512:' + 'b' * 128
HEX64 = '0123456789abcdef' * 4

VALID = [
    # input, registry, repository, tag, digest, api host
    ('ubuntu', 'docker.io', 'library/ubuntu', None, None, 'registry-1.docker.io'),
    ('ubuntu:22.04', 'docker.io', 'library/ubuntu', '22.04', None, 'registry-1.docker.io'),
    ('library/ubuntu', 'docker.io', 'library/ubuntu', None, None, 'registry-1.docker.io'),
    ('docker.io/ubuntu', 'docker.io', 'library/ubuntu', None, None, 'registry-1.docker.io'),
    ('index.docker.io/foo/bar', 'docker.io', 'foo/bar', None, None, 'registry-1.docker.io'),
    ('registry-1.docker.io/foo/bar:1', 'docker.io', 'foo/bar', '1', None, 'registry-1.docker.io'),
    ('foo/bar/baz', 'docker.io', 'foo/bar/baz', None, None, 'registry-1.docker.io'),
    ('localhost/app', 'localhost', 'app', None, None, 'localhost'),
    ('localhost:5000/hello-world:latest', 'localhost:5000', 'hello-world', 'latest', None, 'localhost:5000'),
    ('127.0.0.1:5000/a/b/c:v1.0.0-rc.1', '127.0.0.1:5000', 'a/b/c', 'v1.0.0-rc.1', None, '127.0.0.1:5000'),
    ('registry.example.com/app', 'registry.example.com', 'app', None, None, 'registry.example.com'),
    ('registry.example.com:443/team/app:1.4.2', 'registry.example.com:443', 'team/app', '1.4.2', None,
     'registry.example.com:443'),
    ('ghcr.io/owner/repo@' + D256, 'ghcr.io', 'owner/repo', None, D256, 'ghcr.io'),
    ('ghcr.io/owner/repo:tag@' + D256, 'ghcr.io', 'owner/repo', 'tag', D256, 'ghcr.io'),
    ('quay.io/org/app@' + D512, 'quay.io', 'org/app', None, D512, 'quay.io'),
    ('[::1]:5000/app:tag', '[::1]:5000', 'app', 'tag', None, '[::1]:5000'),
    ('[::1]/app', '[::1]', 'app', None, None, '[::1]'),
    ('[2001:db8::1]:5000/ns/app@' + D256, '[2001:db8::1]:5000', 'ns/app', None, D256, '[2001:db8::1]:5000'),
    ('my-registry.local:5000/a_b/c__d/e-f/g.h', 'my-registry.local:5000', 'a_b/c__d/e-f/g.h', None, None,
     'my-registry.local:5000'),
    ('host.example/a---b', 'host.example', 'a---b', None, None, 'host.example'),
    ('app:_underscore', 'docker.io', 'library/app', '_underscore', None, 'registry-1.docker.io'),
    ('app:' + 'T' * 128, 'docker.io', 'library/app', 'T' * 128, None, 'registry-1.docker.io'),
    ('Example.COM/app', 'Example.COM', 'app', None, None, 'Example.COM'),
    # Docker (distribution/reference ParseNormalizedNamed) refuses 64 hex digits only when they are the
    # whole reference: with a tag, a digest, a namespace or a registry the name is not an image ID.
    (HEX64 + ':1.0', 'docker.io', 'library/' + HEX64, '1.0', None, 'registry-1.docker.io'),
    (HEX64 + '@' + D256, 'docker.io', 'library/' + HEX64, None, D256, 'registry-1.docker.io'),
    ('library/' + HEX64, 'docker.io', 'library/' + HEX64, None, None, 'registry-1.docker.io'),
    ('registry.example.com/' + HEX64, 'registry.example.com', HEX64, None, None, 'registry.example.com'),
    (HEX64[:12], 'docker.io', 'library/' + HEX64[:12], None, None, 'registry-1.docker.io'),
]

INVALID = [
    ('', 'empty'),
    ('   ', 'empty'),
    ('Ubuntu', "'Ubuntu'"),
    ('registry.example.com/App', "'App'"),
    ('app:.tag', "tag '.tag'"),
    ('app:-tag', "tag '-tag'"),
    ('app:' + 'x' * 129, 'tag'),
    ('app:ta g', 'white space'),
    ('app@sha256:abc', 'lowercase hex'),
    ('app@sha256:' + 'A' * 64, 'lowercase hex'),
    ('app@md5:' + 'a' * 32, "Unsupported digest algorithm 'md5'"),
    ('app@' + 'a' * 64, 'algorithm:hex'),
    ('app@sha512:' + 'a' * 64, 'sha512 digest is 128'),
    ('registry.example.com//app', 'empty path component'),
    ('registry.example.com/app/', 'empty path component'),
    ('registry.example.com:99999/app', "port '99999'"),
    ('registry.example.com:abc/app', "port 'abc'"),
    ('-bad-.example.com/app', "registry host '-bad-.example.com'"),
    ('[::1/app', 'IPv6'),
    ('[zz::1]:5000/app', "IPv6 address '[zz::1]'"),
    ('[::1]x/app', 'registry host'),
    ('registry.example.com/a..b', "'a..b'"),
    ('registry.example.com/_a', "'_a'"),
    ('registry.example.com/a_', "'a_'"),
    ('registry.example.com/a___b', "'a___b'"),
    (':tag', 'repository name is missing'),
    ('@' + D256, 'repository name is missing'),
    ('host.example/' + 'a' * 250, 'limit is 255'),
    (None, 'empty'),
    (HEX64, 'cannot be 64 hexadecimal digits'),
    ('a' * 64, 'ambiguous with an image ID'),
    ('app\n', 'white space'),
    ('app:1.0\n', 'white space'),
    ('app@' + D256 + '\n', 'white space'),
    ('registry.example.com/app\n', 'white space'),
]


@pytest.mark.parametrize('text, registry, repository, tag, digest, api_host', VALID)
def test_valid(text, registry, repository, tag, digest, api_host):
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.api_host) == (
        registry, repository, tag, digest, api_host)


@pytest.mark.parametrize('text, fragment', INVALID)
def test_invalid_names_the_bad_part(text, fragment):
    with pytest.raises(InvalidInputError) as excinfo:
        ImageReference.parse(text)
    assert fragment in str(excinfo.value)


def test_enough_cases():
    assert len(VALID) + len(INVALID) >= 30


def test_default_tag_only_without_tag_or_digest():
    assert ImageReference.parse('app', default_tag='latest').tag == 'latest'
    assert ImageReference.parse('app:1', default_tag='latest').tag == '1'
    ref = ImageReference.parse('app@' + D256, default_tag='latest')
    assert ref.tag is None and ref.reference == D256


def test_reference_prefers_digest():
    ref = ImageReference.parse('r.example/app:1@' + D256)
    assert ref.reference == D256
    assert ref.name == 'r.example/app:1@' + D256


def test_hostname_strips_port_and_brackets():
    assert ImageReference.parse('[::1]:5000/a').hostname == '::1'
    assert ImageReference.parse('localhost:5000/a').hostname == 'localhost'
    assert ImageReference.parse('ubuntu').hostname == 'registry-1.docker.io'


def test_with_tag_validates():
    ref = ImageReference.parse('localhost:5000/app:1')
    assert ref.with_tag('2').name == 'localhost:5000/app:2'
    with pytest.raises(InvalidInputError):
        ref.with_tag('bad tag')


def test_with_tag_and_with_digest_refuse_a_trailing_line_break():
    ref = ImageReference.parse('localhost:5000/app:1')
    with pytest.raises(InvalidInputError) as excinfo:
        ref.with_tag('2\n')
    assert "Invalid tag '2\\n'" in excinfo.value.msg and 'line break' in excinfo.value.msg
    with pytest.raises(InvalidInputError):
        ref.with_digest('sha256:' + 'a' * 63 + '\n')


def test_a_64_hex_name_says_why_it_is_refused():
    with pytest.raises(InvalidInputError) as excinfo:
        ImageReference.parse(HEX64)
    assert excinfo.value.msg == (
        "Invalid image reference '%s': a repository name cannot be 64 hexadecimal digits, which Docker and "
        "containers/image refuse as ambiguous with an image ID (to name an image by its digest, write "
        "repository@sha256:<hex>)" % HEX64)


def test_to_dict():
    data = ImageReference.parse('ubuntu:22.04').to_dict()
    assert data['name'] == 'docker.io/library/ubuntu:22.04'
    assert data['domain'] == 'docker.io'
