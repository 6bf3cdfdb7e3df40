# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sync: selectors and semver ranges, the plan's request budget, atomic tags, conflicts, prune, check mode."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._sync import Selector, sync
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import TagConflictError
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import SemverRange, latest_versions
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.concurrency import Overlap
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for

VERSIONS = ['1.24.9', '1.25.0', '1.25.3', '1.26.0-rc.1', 'v1.26.2', '1.27.0', '1.27.0-rc.1', '2.0.0-0', '2.0.0',
            '1.4.0', '1.4.2', '1.4.9', '1.5.0', '0.4.1', '0.5.0', 'latest', 'main']


# -- ranges and selectors --------------------------------------------------------
@pytest.mark.parametrize('expression, expected', [
    ('>=1.25.0 <1.27.0', ['1.25.0', '1.25.3', 'v1.26.2']),
    ('>= 1.25.0 < 1.27.0', ['1.25.0', '1.25.3', 'v1.26.2']),
    ('^1.25', ['1.25.0', '1.25.3', 'v1.26.2', '1.27.0']),
    ('^0.4', ['0.4.1']),
    ('~1.4.2', ['1.4.2', '1.4.9']),
    ('1.4.x', ['1.4.0', '1.4.2', '1.4.9']),
    ('1.4', ['1.4.0', '1.4.2', '1.4.9']),
    ('1.4.x || >=2', ['2.0.0', '1.4.0', '1.4.2', '1.4.9']),
    ('<1.5 >=1.4.1', ['1.4.2', '1.4.9']),
    ('>1.26', ['1.27.0', '2.0.0']),
])
def test_semver_ranges_select_releases_only(expression, expected):
    assert sorted(t for t in VERSIONS if SemverRange(expression).matches(t)) == sorted(expected)


def test_prereleases_are_in_a_range_only_when_asked_for():
    window = SemverRange('>=1.25.0 <1.27.0')
    assert not window.matches('1.26.0-rc.1') and window.matches('1.26.0-rc.1', prereleases=True)
    assert not SemverRange('^1.4').matches('2.0.0-0', prereleases=True)  # below 2.0.0-0, no 2.0.0 prerelease
    assert latest_versions(VERSIONS, 2) == ['2.0.0', '1.27.0']
    assert latest_versions(VERSIONS, 2, prereleases=True) == ['2.0.0', '2.0.0-0']


@pytest.mark.parametrize('expression', ['', '1.2.3 - 2.0.0', 'x.1', 'stable', '1.2-rc.1', '>=1.0.0-01'])
def test_a_malformed_range_is_refused(expression):
    with pytest.raises(InvalidInputError, match='semver range'):
        SemverRange(expression)


def test_selectors_filter_then_keep_the_latest():
    assert Selector(pattern=r'^1\.4\.', latest=2).select(VERSIONS) == ['1.4.9', '1.4.2']
    assert Selector(semver='^1.25').select(VERSIONS) == ['1.25.0', '1.25.3', 'v1.26.2', '1.27.0']
    assert Selector(tags=['main', '1.4.2']).select(VERSIONS) == ['main', '1.4.2']
    assert Selector().select(VERSIONS) == VERSIONS
    # prune looks at what the filters match: an older version than the latest two matches; another series not.
    selector = Selector(pattern=r'^1\.4\.', latest=2)
    assert selector.matches('1.4.0') and not selector.matches('1.5.0') and not selector.matches('1.4.x')
    with pytest.raises(InvalidInputError, match='cannot be combined'):
        Selector(tags=['1'], pattern='1')
    with pytest.raises(InvalidInputError, match='latest must be at least 1'):
        Selector(latest=0)


# -- the fake registries -------------------------------------------------------------
class Factory:
    """The client factory a module passes: one client per call, counted."""

    def __init__(self, *registries):
        self.registries = dict((r.host, r) for r in registries)
        self.calls = []

    def __call__(self, reference, side):
        self.calls.append((side, reference.registry))
        return client_for(self.registries[reference.api_host])


def release(source, server, **options):
    """Three repositories: api by tag list, web by pattern and latest, nginx by semver range."""
    return [dict({'src': '%s/dev/api' % source.host, 'dest': '%s/prod/api' % server.host, 'tags': ['1.4.2']}),
            dict({'src': '%s/dev/web' % source.host, 'dest': '%s/prod/web' % server.host, 'pattern': r'^1\.4\.',
                  'latest': 2}),
            dict({'src': '%s/library/nginx' % source.host, 'dest': '%s/mirror/nginx' % server.host,
                  'semver': '>=1.25.0 <1.27.0'}, **options)]


def fill(source):
    """The release's source content; returns {repository: {tag: digest}}."""
    content = {}
    for repository, tags in (('dev/api', ['1.4.1', '1.4.2']), ('dev/web', ['1.4.0', '1.4.1', '1.4.2', '1.5.0']),
                             ('library/nginx', ['1.24.0', '1.25.1', '1.26.0', '1.26.1-rc.1', '1.27.0'])):
        content[repository] = dict((tag, source.add_image(repository, tag, [('%s %s' % (repository, tag)).encode()
                                                                            * 50])[0]) for tag in tags)
    return content


def writes(server):
    return [(r['method'], urlsplit(r['path']).path) for r in server.requests if r['method'] in ('POST', 'PUT', 'DELETE')]


EXPECTED = {'prod/api': ['1.4.2'], 'prod/web': ['1.4.1', '1.4.2'], 'mirror/nginx': ['1.25.1', '1.26.0']}


def test_a_release_is_promoted_with_every_tag_written_last(source, server):
    content = fill(source)
    factory = Factory(source, server)
    outcome = sync(factory, release(source, server), RunContext(workers=2))
    result = outcome.to_result()
    assert result['changed'] and result['tags_changed'] == 5 and result['tags_unchanged'] == 0
    assert sorted(factory.calls) == [('dest_', server.host), ('src_', source.host)]  # one client per side
    for repository, tags in EXPECTED.items():
        source_repo = {'prod/api': 'dev/api', 'prod/web': 'dev/web', 'mirror/nginx': 'library/nginx'}[repository]
        assert server.tags(repository) == dict((t, content[source_repo][t]) for t in tags)
    tag_puts = [path for method, path in writes(server) if method == 'PUT' and '/manifests/' in path
                and 'sha256:' not in path]
    assert len(tag_puts) == 5 and writes(server)[-5:] == [('PUT', p) for p in tag_puts]  # the last five writes
    web = result['repositories'][1]
    assert [t['tag'] for t in web['tags']] == ['1.4.2', '1.4.1']
    assert web['tags'][0]['before'] is None and web['tags'][0]['after'] == content['dev/web']['1.4.2']
    assert web['tags'][0]['blobs_copied'] == 2 and web['tags'][0]['manifests_pushed'] == 2


def test_an_unchanged_release_costs_two_heads_per_tag_plus_the_listings(source, server):
    fill(source)
    sync(Factory(source, server), release(source, server))
    source.requests[:] = []
    server.requests[:] = []
    result = sync(Factory(source, server), release(source, server), RunContext(diff_mode=True)).to_result()
    assert not result['changed'] and result['tags_unchanged'] == 5
    assert result['diff']['before'] == result['diff']['after'] and len(result['diff']['after']) == 5
    assert [r['method'] for r in server.requests] == ['HEAD'] * 5
    heads = [r for r in source.requests if r['method'] == 'HEAD']
    listings = [r for r in source.requests if r['method'] == 'GET']
    assert len(heads) == 5 and len(source.requests) == 7
    assert sorted(urlsplit(r['path']).path for r in listings) == ['/v2/dev/web/tags/list',
                                                                  '/v2/library/nginx/tags/list']


def test_the_images_of_a_release_are_copied_in_parallel_each_shared_blob_once(source, server):
    fill(source)
    source.add_image('dev/web', '1.4.3', [b'dev/web 1.4.2' * 50, b'more'])  # the layer of 1.4.2, and one more
    blob_gets = Overlap()

    def hold(request):  # every blob GET at the source stays open a moment, to see how many are at once
        if request['method'] == 'GET' and '/blobs/' in request['path']:
            blob_gets.hold(0.1)
    source.fault = hold
    result = sync(Factory(source, server), release(source, server), RunContext(workers=4)).to_result()
    # one image at a time would be at most its two blobs (config and layer) at once
    assert blob_gets.peak >= 3
    web = dict((t['tag'], t) for t in result['repositories'][1]['tags'])
    # 1.4.3, first in order, carries the shared config and layer to prod/web; 1.4.2 finds them carried
    assert (web['1.4.3']['blobs_copied'], web['1.4.3']['blobs_skipped']) == (3, 0)
    assert (web['1.4.2']['blobs_copied'], web['1.4.2']['blobs_skipped']) == (0, 2)
    gets = [r['path'] for r in source.requests if r['method'] == 'GET' and '/blobs/' in r['path']]
    assert len(gets) == len(set(gets)) == 8  # api 2, web 3, nginx 3 (one config each): no blob fetched twice


def test_a_failure_in_the_blob_phase_moves_no_tag_and_says_what_it_left(source, server):
    fill(source)
    bad = source.manifests[('library/nginx', '1.26.0')][1]
    layer = [d for d in source.blobs if d in bad.decode() and source.blobs[d].startswith(b'library/nginx')][0]
    source.fault = lambda request: {'corrupt': 3} if layer in request['path'] and request['method'] == 'GET' else None
    with pytest.raises(IntegrityError) as caught:
        sync(Factory(source, server), release(source, server), RunContext(workers=1))
    error = caught.value
    assert 'repositories[2]' in error.msg and 'tag 1.26.0' in error.msg and 'No destination tag was moved' in error.msg
    assert error.details['tags_moved'] == []
    assert all(not server.tags(repository) for repository in EXPECTED)
    left = dict((entry['repository'], entry) for entry in error.details['left'])
    # Every image's blobs are written before any manifest: the other blobs all went, no manifest did.
    assert left['%s/prod/api' % server.host]['blobs'] and all(not e['manifests'] for e in left.values())
    assert 'left in the destinations without a tag' in error.msg and not server.manifests
    # The rerun completes the promotion: what the failed run wrote is skipped, not copied again.
    source.fault = lambda request: None
    result = sync(Factory(source, server), release(source, server)).to_result()
    # Only the failed image's layer: its config (as every config here) went with the image before it.
    assert result['tags_changed'] == 5 and result['blobs_copied'] == 1
    assert [t['manifests_pushed'] for t in result['repositories'][0]['tags']] == [2]  # by digest, then the tag


def test_without_atomic_the_items_before_a_failure_are_promoted(source, server):
    fill(source)
    source.fault = lambda request: {'status': 500} if '/dev/web/' in request['path'] and '/blobs/' in request['path'] \
        else None
    with pytest.raises(Exception) as caught:
        sync(Factory(source, server), release(source, server), RunContext(retries=0), atomic=False)
    assert 'repositories[1]' in str(caught.value) and '1.4.2' in caught.value.details['tags_moved'][0]
    assert list(server.tags('prod/api')) == ['1.4.2'] and not server.tags('prod/web')


def test_an_overwrite_conflict_is_found_before_any_write(source, server):
    content = fill(source)
    other = server.add_image('prod/web', '1.4.1', [b'other'])[0]
    server.requests[:] = []
    with pytest.raises(TagConflictError) as caught:
        sync(Factory(source, server), release(source, server), overwrite=False)
    assert 'prod/web:1.4.1' in caught.value.msg and other in caught.value.msg
    assert caught.value.details['conflicts'] == [{'item': 1, 'tag': '1.4.1', 'current_digest': other,
                                                  'digest': content['dev/web']['1.4.1']}]
    assert writes(server) == []
    # The same tag moves with overwrite (the default); an item may also set it for itself.
    items = release(source, server)
    items[1]['overwrite'] = True
    assert sync(Factory(source, server), items, overwrite=False).to_result()['tags_changed'] == 5


def test_check_mode_plans_everything_and_writes_nothing(source, server):
    fill(source)
    server.add_image('prod/web', 'old', [b'x'])
    check = sync(Factory(source, server), release(source, server), RunContext(check_mode=True, diff_mode=True))
    assert writes(server) == []
    planned = check.to_result()
    real = sync(Factory(source, server), release(source, server), RunContext(diff_mode=True)).to_result()
    assert planned['repositories'] == real['repositories'] and planned['diff'] == real['diff']
    for key in ('tags_changed', 'blobs_copied', 'bytes_transferred', 'manifests_pushed'):
        assert planned[key] == real[key], key


def test_prune_deletes_what_the_selector_matches_and_the_source_does_not_have(source, server):
    fill(source)
    server.configure(delete_mode='oci')
    for tag in ('1.4.0', '1.3.9', 'keep'):
        server.add_image('prod/web', tag, [tag.encode()])
    items = release(source, server)
    items[1]['prune'] = True
    check = sync(Factory(source, server), items, RunContext(check_mode=True)).to_result()
    assert [p['tag'] for p in check['repositories'][1]['pruned']] == ['1.4.0'] and check['tags_pruned'] == 1
    assert '1.4.0' in server.tags('prod/web')
    result = sync(Factory(source, server), items, RunContext(diff_mode=True)).to_result()
    assert sorted(server.tags('prod/web')) == ['1.3.9', '1.4.1', '1.4.2', 'keep']
    assert '%s/prod/web:1.4.0' % server.host in result['diff']['before']
    assert not sync(Factory(source, server), items).to_result()['changed']


def test_a_listed_tag_the_source_lacks_fails_the_plan(source, server):
    fill(source)
    items = release(source, server)
    items[0]['tags'] = ['1.4.2', '9.9.9']
    with pytest.raises(Exception, match=r'repositories\[0\].*9\.9\.9 does not exist'):
        sync(Factory(source, server), items)
    assert writes(server) == []


def test_platforms_make_a_subset_and_an_unchanged_subset_writes_nothing(source, server):
    amd = source.add_image('dev/multi', None, [b'amd'], platform=('linux', 'amd64', None))[0]
    arm = source.add_image('dev/multi', None, [b'arm'], platform=('linux', 'arm64', None))[0]
    source.add_index('dev/multi', '1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', None))])
    items = [{'src': '%s/dev/multi' % source.host, 'dest': '%s/prod/multi' % server.host}]
    result = sync(Factory(source, server), items, platforms=['linux/arm64']).to_result()
    assert server.tags('prod/multi') == {'1': arm} and result['repositories'][0]['tags'][0]['after'] == arm
    server.requests[:] = []
    assert not sync(Factory(source, server), items, platforms=['linux/arm64']).to_result()['changed']
    assert writes(server) == []


def test_two_items_writing_one_tag_are_refused(source, server):
    items = [{'src': '%s/a' % source.host, 'dest': '%s/x' % server.host, 'tags': ['1']},
             {'src': '%s/b' % source.host, 'dest': '%s/x' % server.host, 'tags': ['1']}]
    with pytest.raises(InvalidInputError, match=r'repositories\[0\] and repositories\[1\] both write'):
        sync(Factory(source, server), items)
    with pytest.raises(InvalidInputError, match=r'repositories\[0\].src must name a repository'):
        sync(Factory(source, server), [{'src': '%s/a:1' % source.host, 'dest': '%s/x' % server.host}])


def test_a_plan_of_a_thousand_unchanged_tags_stays_small(source, server):
    """No manifest is kept for an unchanged tag: the plan's memory grows by a small entry per tag."""
    import tracemalloc
    digest = source.add_image('big', '0', [b'one layer'])[0]
    media_type, data = source.manifests[('big', digest)]
    for number in range(1000):
        source.manifests[('big', 't%d' % number)] = (media_type, data)
        server.manifests[('mirror', 't%d' % number)] = (media_type, data)
    server.manifests[('mirror', digest)] = (media_type, data)
    items = [{'src': '%s/big' % source.host, 'dest': '%s/mirror' % server.host, 'pattern': '^t'}]
    tracemalloc.start()
    try:
        outcome = sync(Factory(source, server), items, RunContext(workers=8))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.to_result()['tags_unchanged'] == 1000 and not outcome.changed
    assert all(entry.top is None for entry in outcome.items[0].tags)
    assert peak < 32 * 1024 * 1024, peak  # the fake registries' threads included


def test_referrers_go_with_unchanged_tags_too(source, server):
    digest = source.add_image('dev/app', '1', [b'app'])[0]
    signature_tag = 'sha256-%s.sig' % digest.split(':', 1)[1]
    signature = source.add_image('dev/app', signature_tag, [b'signature'])[0]
    items = [{'src': '%s/dev/app' % source.host, 'dest': '%s/prod/app' % server.host, 'tags': ['1']}]
    sync(Factory(source, server), items)
    assert server.tags('prod/app') == {'1': digest}  # without referrers, the image only
    result = sync(Factory(source, server), items, referrers=True).to_result()
    entry = result['repositories'][0]['tags'][0]
    assert result['changed'] and not entry['changed'] and result['tags_unchanged'] == 1
    assert [(r['tag'], r['changed']) for r in entry['referrers']] == [(signature_tag, True)]
    assert server.tags('prod/app') == {'1': digest, signature_tag: signature}
    assert not sync(Factory(source, server), items, referrers=True).changed
