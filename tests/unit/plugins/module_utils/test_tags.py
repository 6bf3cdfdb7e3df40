# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tag listing with pagination, filtering, semver sorting, and the parallel helpers."""

from __future__ import annotations

import json
import math
import random
import socket

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils import _tags
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    RegistryHTTPError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import parallel_map
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import (
    clean_tags,
    next_link,
    parse_semver,
    sort_tags,
    tags_info,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.concurrency import Overlap
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for

DIGEST = 'sha256:' + 'c' * 64


def paginating(server, tags, default_size=2, absolute_every=2, junk=False):
    """Serve ``tags`` in pages, with relative and absolute next links."""
    def handler(request):
        path, dummy, query = request['path'].partition('?')
        if request['method'] == 'HEAD':
            return 200, {'Docker-Content-Digest': DIGEST, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json'}, b''
        if path != '/v2/app/tags/list':
            return 404, {'Content-Type': 'application/json'}, b'{"errors":[{"code":"NAME_UNKNOWN","message":"x"}]}'
        params = dict(p.split('=', 1) for p in query.split('&') if p)
        size = int(params.get('n', default_size))
        start = int(params.get('page', 0))
        page = tags[start * size:(start + 1) * size]
        body = list(page)
        if junk:
            body = [None, DIGEST] + body + [None]
        headers = {'Content-Type': 'application/json'}
        if (start + 1) * size < len(tags):
            target = '/v2/app/tags/list?n=%d&page=%d' % (size, start + 1)
            if (start + 1) % absolute_every == 0:
                target = 'http://%s%s' % (server.host, target)
            headers['Link'] = '<%s>; rel="next"' % target
        return 200, headers, json.dumps({'name': 'app', 'tags': body}).encode()
    server.handler = handler


def test_all_pages_are_followed_through_relative_and_absolute_links(server):
    tags = ['t%02d' % i for i in range(11)]
    paginating(server, tags, junk=True)
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host)).to_result()
    assert result['tags'] == tags and result['pages'] == 6 and result['total'] == 11
    assert [r['path'] for r in server.requests][:2] == ['/v2/app/tags/list', '/v2/app/tags/list?n=2&page=1']


def test_page_size_is_sent_as_n(server):
    paginating(server, ['a', 'b', 'c', 'd', 'e'])
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host), page_size=4).to_result()
    assert result['pages'] == 2 and server.requests[0]['path'] == '/v2/app/tags/list?n=4'


def test_a_looping_listing_fails(server):
    def handler(request):
        return 200, {'Content-Type': 'application/json', 'Link': '</v2/app/tags/list>; rel="next"'}, b'{"tags":["a"]}'
    server.handler = handler
    with pytest.raises(RegistryHTTPError) as excinfo:
        tags_info(client_for(server), ImageReference.parse('%s/app' % server.host))
    assert 'loops' in excinfo.value.msg and len(server.requests) == 1


def endless(server, per_page=1, stop_after=1500, body=None):
    """Every page links to a URL never seen before (the next page number), until ``stop_after`` pages.

    ``stop_after`` keeps the test bounded even when the client has no bound of its own: the
    listing then simply ends, and the test fails on the missing error.
    """
    # The scripted server writes headers and body separately: without TCP_NODELAY (inherited by the
    # accepted sockets on Linux) Nagle and delayed ACKs add 40 ms to each of the thousand requests.
    server.loopback.httpd.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handler(request):
        path, dummy, query = request['path'].partition('?')
        params = dict(p.split('=', 1) for p in query.split('&') if p)
        page = int(params.get('page', 0))
        headers = {'Content-Type': 'application/json'}
        if page + 1 < stop_after:
            link = '/v2/app/tags/list?%spage=%d' % ('n=%s&' % params['n'] if 'n' in params else '', page + 1)
            headers['Link'] = '<%s>; rel="next"' % link
        if body is not None:
            return 200, headers, body
        tags = ['p%d-%d' % (page, i) for i in range(per_page)]
        return 200, headers, json.dumps({'name': 'app', 'tags': tags}).encode()
    server.handler = handler


def test_a_link_to_a_fresh_url_every_time_stops_at_the_page_bound(server):
    endless(server)
    with pytest.raises(RegistryHTTPError) as excinfo:
        tags_info(client_for(server), ImageReference.parse('%s/app' % server.host))
    message = excinfo.value.msg
    assert 'The tag listing of %s/app' % server.host in message
    assert 'more than 1000 pages' in message and 'page_size' in message
    assert len(server.requests) == 1000


def test_the_page_bound_grows_with_a_small_page_size_and_then_holds(server):
    assert _tags.page_bound(None) == 1000
    assert _tags.page_bound(5000) == 1000
    assert _tags.page_bound(100) == 10000
    assert _tags.page_bound(1) == 1000000
    # A real listing of 1200 one-tag pages, asked for with page_size 1, is followed to its end...
    endless(server, stop_after=1200)
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host), page_size=1).to_result()
    assert result['pages'] == 1200 and result['total'] == 1200
    assert server.requests[0]['path'] == '/v2/app/tags/list?n=1'


def test_the_total_number_of_tags_is_bounded_whatever_the_page_size(server):
    endless(server, per_page=20000, stop_after=80)
    with pytest.raises(RegistryHTTPError) as excinfo:
        tags_info(client_for(server), ImageReference.parse('%s/app' % server.host), page_size=20000)
    assert 'The tag listing of %s/app has more than 1000000 tags' % server.host in excinfo.value.msg
    assert len(server.requests) == 51   # 50 pages make exactly 1000000 tags; the 51st goes over


def test_the_total_size_of_the_listing_is_bounded(server):
    page = b'{"tags":[' + b'null,' * 199990 + b'"a"]}'   # one tag, about 1 MB of junk
    endless(server, stop_after=200, body=page)
    with pytest.raises(RegistryHTTPError) as excinfo:
        tags_info(client_for(server), ImageReference.parse('%s/app' % server.host))
    message = excinfo.value.msg
    assert 'The tag listing of %s/app is larger than 67108864 bytes (64 MiB)' % server.host in message
    assert len(server.requests) == math.ceil((64 * 1024 * 1024 + 1) / len(page))


def test_invalid_tag_names_a_registry_returns_are_left_out(server):
    names = ['ok', 'x\n', '\nx', 'bad tag', '.x', '-x', 'y' * 129, 'a/b', 'ok2', 'ok\r', 'z' * 128]
    server.handler = lambda r: (200, {'Content-Type': 'application/json'},
                                json.dumps({'name': 'app', 'tags': names}).encode())
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host)).to_result()
    assert result['tags'] == ['ok', 'ok2', 'z' * 128] and result['total'] == 3


def test_missing_repository_and_null_tags(server):
    paginating(server, [])
    result = tags_info(client_for(server), ImageReference.parse('%s/other' % server.host), with_digests=True).to_result()
    assert result['exists'] is False and result['tags'] == [] and result['digests'] == {}
    server.handler = lambda r: (200, {'Content-Type': 'application/json'}, b'{"name":"app","tags":null}')
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host)).to_result()
    assert result['exists'] is True and result['tags'] == []


def test_pattern_semver_and_digests(server):
    paginating(server, ['latest', '1.10.0', '1.2.0', 'v1.2.1', '1.2.0-rc.1', '1.4', '2.0.0'], default_size=100)
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host), pattern=r'^v?1\.',
                       sort='semver', with_digests=True).to_result()
    assert result['tags'] == ['1.2.0-rc.1', '1.2.0', 'v1.2.1', '1.10.0']
    assert result['other_tags'] == ['1.4']
    assert set(result['digests']) == {'1.2.0-rc.1', '1.2.0', 'v1.2.1', '1.10.0', '1.4'}
    assert set(result['digests'].values()) == {DIGEST}


def test_invalid_pattern_is_a_user_error(server):
    paginating(server, ['a'])
    with pytest.raises(InvalidInputError):
        tags_info(client_for(server), ImageReference.parse('%s/app' % server.host), pattern='(')


@pytest.mark.parametrize('header, expected', [
    ('</v2/app/tags/list?n=2&last=b>; rel="next"', '/v2/app/tags/list?n=2&last=b'),
    ('<https://r.example/v2/app/tags/list?last=b>;rel=next', 'https://r.example/v2/app/tags/list?last=b'),
    ('</first>; rel="first", </v2/x?last=c>; rel="next"', '/v2/x?last=c'),
    ('</v2/x?last=c>; title="a, b"; rel="prefetch next"', '/v2/x?last=c'),
    ('</prev>; rel="prev"', None),
    ('', None),
])
def test_next_link(header, expected):
    assert next_link(header) == expected


def test_clean_tags_drops_nulls_digests_and_duplicates():
    assert clean_tags(['a', None, DIGEST, '', 'b', 'a', 5, 'sha256-abc.sig']) == ['a', 'b', 'sha256-abc.sig']
    assert clean_tags(['c\n', 'c', 'd\n']) == ['c']


SEMVER_ORDER = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11',
                '1.0.0-rc.1', '1.0.0', '1.0.1', '1.1.0', '1.9.0', '1.10.0', '2.0.0-0', '2.0.0', '10.0.0']


def test_semver_precedence_follows_the_specification():
    shuffled = list(SEMVER_ORDER)
    random.Random(4).shuffle(shuffled)
    assert sort_tags(shuffled, 'semver') == (SEMVER_ORDER, [])


def test_non_versions_go_to_other_tags():
    ordered, others = sort_tags(['latest', '1.4', '1.4.2', 'v1.4.10', '01.2.3', '1.2.3.4', 'main'], 'semver')
    assert ordered == ['1.4.2', 'v1.4.10'] and others == ['01.2.3', '1.2.3.4', '1.4', 'latest', 'main']
    assert sort_tags(['b', 'A', 'a'], 'lexical') == (['A', 'a', 'b'], [])


def test_parse_semver():
    assert parse_semver('v1.2.3-rc.1+build.5') == (1, 2, 3, ('rc', '1'))
    assert parse_semver('1.2.3-01') is None  # numeric identifiers have no leading zeros
    assert parse_semver('latest') is None
    assert parse_semver('1.2.3\n') is None and parse_semver('1.2.3-rc.1\n') is None


def test_parallel_map_keeps_order_bounds_concurrency_and_raises_after_all_finished():
    calls = Overlap()
    done = []

    def work(item):
        calls.hold(0.01)
        done.append(item)
        if item == 3:
            raise ValueError(item)
        return item * 2

    assert parallel_map(work, range(3)) == [0, 2, 4]
    done[:] = []
    with pytest.raises(ValueError):
        parallel_map(work, range(20), workers=4)
    assert calls.peak <= 4 and sorted(done) == list(range(20))


def test_a_next_page_on_another_host_is_refused(server, other_server):
    hostile = 'http://%s/v2/app/tags/list?page=1' % other_server.host
    server.handler = lambda request: (200, {'Content-Type': 'application/json', 'Link': '<%s>; rel="next"' % hostile},
                                      b'{"name": "app", "tags": ["1.0.0"]}')
    with pytest.raises(IntegrityError) as excinfo:
        tags_info(client_for(server), ImageReference.parse('%s/app' % server.host))
    assert 'links its next page to another host (%s)' % other_server.host in excinfo.value.msg
    assert other_server.requests == [] and len(server.requests) == 1
