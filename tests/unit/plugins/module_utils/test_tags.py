# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tag listing with pagination, filtering, semver sorting, and the parallel helpers."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError, RegistryHTTPError
from ansible_collections.imagelayers.registry.plugins.module_utils._http import ConnectionOptions, HTTPSession
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import (
    clean_tags,
    next_link,
    parallel_map,
    parse_semver,
    sort_tags,
    tags_info,
)

DIGEST = 'sha256:' + 'c' * 64


def client_for(server):
    return RegistryClient(HTTPSession(sleep=lambda s: None), server.host, ConnectionOptions(timeout=5, retries=0),
                          loopback=True)


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
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host))
    assert result['tags'] == tags and result['pages'] == 6 and result['total'] == 11
    assert [r['path'] for r in server.requests][:2] == ['/v2/app/tags/list', '/v2/app/tags/list?n=2&page=1']


def test_page_size_is_sent_as_n(server):
    paginating(server, ['a', 'b', 'c', 'd', 'e'])
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host), page_size=4)
    assert result['pages'] == 2 and server.requests[0]['path'] == '/v2/app/tags/list?n=4'


def test_a_looping_listing_fails(server):
    def handler(request):
        return 200, {'Content-Type': 'application/json', 'Link': '</v2/app/tags/list>; rel="next"'}, b'{"tags":["a"]}'
    server.handler = handler
    with pytest.raises(RegistryHTTPError) as excinfo:
        tags_info(client_for(server), ImageReference.parse('%s/app' % server.host))
    assert 'loops' in excinfo.value.msg and len(server.requests) == 1


def test_missing_repository_and_null_tags(server):
    paginating(server, [])
    result = tags_info(client_for(server), ImageReference.parse('%s/other' % server.host), with_digests=True)
    assert result['exists'] is False and result['tags'] == [] and result['digests'] == {}
    server.handler = lambda r: (200, {'Content-Type': 'application/json'}, b'{"name":"app","tags":null}')
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host))
    assert result['exists'] is True and result['tags'] == []


def test_pattern_semver_and_digests(server):
    paginating(server, ['latest', '1.10.0', '1.2.0', 'v1.2.1', '1.2.0-rc.1', '1.4', '2.0.0'], default_size=100)
    result = tags_info(client_for(server), ImageReference.parse('%s/app' % server.host), pattern=r'^v?1\.',
                       sort='semver', with_digests=True)
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


def test_parallel_map_keeps_order_bounds_concurrency_and_raises_after_all_finished():
    active = [0]
    peak = [0]
    lock = threading.Lock()
    done = []

    def work(item):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
            done.append(item)
        if item == 3:
            raise ValueError(item)
        return item * 2

    assert parallel_map(work, range(3)) == [0, 2, 4]
    done[:] = []
    with pytest.raises(ValueError):
        parallel_map(work, range(20), workers=4)
    assert peak[0] <= 4 and sorted(done) == list(range(20))
