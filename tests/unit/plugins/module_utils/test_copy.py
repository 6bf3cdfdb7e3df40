# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy: blob uploads (HEAD-skip, mount, Location handling, streamed verification) and the copy plan."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._copy import add_referrers, copy_image
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    RegistryError,
    TransportError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import MAX_INDEX_DEPTH, OCI_MANIFEST
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._referrers import attach, fallback_tag, put_referrer
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import upload_location, with_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import PreconditionError, TagConflictError
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for, digest_of


def copy_parts(*args, **kwargs):
    """copy_image with the run options (workers, check_mode, retries) as keywords; the outcome's parts:
    ``(result, plan, sync, stats)``."""
    ctx = RunContext(**{key: kwargs.pop(key) for key in ('workers', 'check_mode', 'retries') if key in kwargs})
    outcome = copy_image(*args, ctx=ctx, **kwargs)
    return outcome.to_result(), outcome.plan, outcome.sync, outcome.stats


def refs(source, server, src='app:1', dest='prod/app:1'):
    return ImageReference.parse('%s/%s' % (source.host, src)), ImageReference.parse('%s/%s' % (server.host, dest))


def writes(server):
    return [(r['method'], urlsplit(r['path']).path) for r in server.requests if r['method'] in ('POST', 'PUT')]


@pytest.mark.parametrize('style', ['absolute', 'relative', 'bare'])
def test_cross_registry_copy_uploads_every_blob_then_the_tag_last(source, server, style):
    digest, config, layers = source.add_image('app', '1', [b'a' * 3000, b'b' * 5000], oci=False)
    target = server.configure(location_style=style)
    src_ref, dest_ref = refs(source, server)
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, workers=2)
    assert sync.changed and plan.digest == digest == extra['source_digest']
    assert stats.blobs_copied == 3 and stats.bytes_transferred == 8000 + source_size(source, config)
    assert target.manifests[('prod/app', '1')][1] == source.manifests[('app', digest)][1]
    assert writes(server)[-1] == ('PUT', '/v2/prod/app/manifests/1')
    puts = [r for r in server.requests if r['method'] == 'PUT' and '/blobs/uploads/' in r['path']]
    assert len(puts) == 3
    for put in puts:
        query = parse_qs(urlsplit(put['path']).query)
        assert query['digest'][0] == digest_of(put['body'])
        if style != 'bare':
            assert '_state' in query  # the registry's own query string is kept


def source_size(source, digest):
    return len(source.blobs[digest])


def test_upload_location_and_digest_query():
    assert upload_location('a/b', 'abc') == '/v2/a/b/blobs/uploads/abc'
    assert upload_location('a/b', '/v2/a/b/blobs/uploads/abc?x=1') == '/v2/a/b/blobs/uploads/abc?x=1'
    assert with_digest('/v2/a/uploads/x?_state=1', 'sha256:ab') == '/v2/a/uploads/x?_state=1&digest=sha256:ab'
    assert with_digest('https://h/v2/a/uploads/x', 'sha256:ab') == 'https://h/v2/a/uploads/x?digest=sha256:ab'
    with pytest.raises(RegistryError):
        upload_location('a', None)


def test_existing_blobs_are_skipped_and_an_existing_tag_costs_only_heads(source, server):
    digest, config, layers = source.add_image('app', '1', [b'a' * 100], oci=True)
    target = server
    target.add_blob(source.blobs[layers[0]], 'prod/app')
    src_ref, dest_ref = refs(source, server)
    dummy, dummy, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref)
    assert (stats.blobs_skipped, stats.blobs_copied, stats.manifests_pushed) == (1, 1, 1)
    server.requests[:] = []
    source.requests[:] = []
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref)
    assert not sync.changed and stats.to_dict() == {'blobs_copied': 0, 'blobs_mounted': 0, 'blobs_skipped': 0,
                                                    'bytes_transferred': 0, 'manifests_pushed': 0}
    assert set(r['method'] for r in server.requests + source.requests) == {'HEAD'}


def test_mount_201_is_done_and_202_falls_back_to_an_upload(source, server):
    # Same registry: source and destination are both this registry's host.
    digest, config, layers = server.add_image('dev/app', '1', [b'x' * 64, b'y' * 64])

    def handler(request):
        # The registry refuses to mount the second layer (202, a plain upload): it is streamed from the source.
        if 'mount=' + layers[1] in request['path']:
            request = dict(request, path=urlsplit(request['path']).path)
        return server.handle(request)
    server.handler = handler
    src_ref = ImageReference.parse('%s/dev/app:1' % server.host)
    dest_ref = ImageReference.parse('%s/prod/app:1' % server.host)
    client = client_for(server)
    dummy, dummy, sync, stats = copy_parts(client, src_ref, client, dest_ref, workers=1)
    assert (stats.blobs_mounted, stats.blobs_copied, stats.bytes_transferred) == (2, 1, 64)
    mounts = [r for r in server.requests if r['method'] == 'POST' and 'mount=' in r['path']]
    assert len(mounts) == 3 and all('from=dev/app' in r['path'] for r in mounts)


def test_a_corrupted_source_blob_fails_before_the_tag_is_written(source, server):
    digest, config, layers = source.add_image('app', '1', [b'z' * 4096])
    target = server
    source.fault = lambda request: {'corrupt': 10} if layers[0] in request['path'] and request['method'] == 'GET' \
        else None
    src_ref, dest_ref = refs(source, server)
    with pytest.raises(IntegrityError) as caught:
        copy_parts(client_for(source), src_ref, client_for(server), dest_ref, workers=1)
    assert layers[0] in caught.value.msg
    assert not any('/manifests/' in path for method, path in writes(server))
    assert not target.has_blob('prod/app', layers[0])


def test_platform_subset_writes_a_new_index_or_the_single_manifest(source, server):
    amd, c1, l1 = source.add_image('app', None, [b'1' * 10], platform=('linux', 'amd64', None))
    arm, c2, l2 = source.add_image('app', None, [b'2' * 10], platform=('linux', 'arm64', 'v8'))
    arm7, c3, l3 = source.add_image('app', None, [b'3' * 10], platform=('linux', 'arm', 'v7'))
    index = source.add_index('app', '1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', 'v8')),
                                          (arm7, ('linux', 'arm', 'v7'))])
    target = server
    src_ref, dest_ref = refs(source, server, dest='sub/app:1')
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref,
                                          platforms=['linux/arm64', 'linux/amd64'])
    assert extra['digest_changed'] and plan.digest != index
    written = json.loads(target.manifests[('sub/app', '1')][1])
    assert [m['digest'] for m in written['manifests']] == [amd, arm]  # the index's order
    assert not target.has_blob('sub/app', l3[0]) and stats.manifests_pushed == 3
    # Again: unchanged.
    extra, plan2, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref,
                                           platforms=['linux/arm64', 'linux/amd64'])
    assert not sync.changed and plan2.digest == plan.digest
    # One platform: its image manifest.
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server),
                                          ImageReference.parse('%s/one/app:1' % server.host), platforms=['linux/arm/v7'])
    assert plan.digest == arm7 and extra['digest_changed']
    with pytest.raises(InvalidInputError, match='linux/s390x'):
        copy_parts(client_for(source), src_ref, client_for(server), dest_ref, platforms=['linux/s390x'])


def test_every_platform_by_default_children_by_digest_before_the_index(source, server):
    amd, c1, l1 = source.add_image('app', None, [b'1' * 10], platform=('linux', 'amd64', None))
    arm, c2, l2 = source.add_image('app', None, [b'2' * 10], platform=('linux', 'arm64', 'v8'))
    index = source.add_index('app', '1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', 'v8'))])
    src_ref, dest_ref = refs(source, server)
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref)
    assert plan.digest == index and not extra['digest_changed']
    manifest_puts = [path for method, path in writes(server) if '/manifests/' in path]
    assert sorted(manifest_puts[:2]) == sorted(['/v2/prod/app/manifests/' + amd, '/v2/prod/app/manifests/' + arm])
    assert manifest_puts[2:] == ['/v2/prod/app/manifests/1']
    assert [i['platform'] for i in plan.images] == ['linux/amd64', 'linux/arm64/v8']


def test_overwrite_false_and_expected_digest_fail_before_any_write(source, server):
    digest, config, layers = source.add_image('app', '1', [b'a'])
    other, dummy, dummy = source.add_image('app', '2', [b'b'])
    target = server
    target.manifests[('prod/app', '1')] = source.manifests[('app', other)]
    src_ref, dest_ref = refs(source, server)
    with pytest.raises(TagConflictError):
        copy_parts(client_for(source), src_ref, client_for(server), dest_ref, overwrite=False)
    with pytest.raises(PreconditionError):
        copy_parts(client_for(source), src_ref, client_for(server), dest_ref, expected_digest=other)
    assert writes(server) == []


def test_check_mode_writes_nothing_and_reports_the_plan(source, server):
    digest, config, layers = source.add_image('app', '1', [b'a' * 10, b'b' * 20])
    src_ref, dest_ref = refs(source, server)
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, check_mode=True)
    assert sync.changed and stats.blobs_copied == 3 and stats.manifests_pushed == 1
    assert writes(server) == []


def test_a_401_to_a_streamed_blob_put_sends_the_whole_blob_again(source, server):
    # A token that expired (or was revoked) between the upload's POST and its PUT: the registry
    # answers the PUT with a new challenge after the streamed body went out. The body cannot be
    # replayed; the blob is started over with the fresh token, all of its bytes.
    digest, config, layers = source.add_image('app', '1', [b'x' * 300000], oci=True)
    target = server
    handle = target.handle
    refused = []

    def handler(request):
        path = urlsplit(request['path']).path
        if path == '/token':
            return 200, {'Content-Type': 'application/json'}, json.dumps({'token': 'fresh', 'expires_in': 300}).encode()
        if request['method'] == 'PUT' and '/blobs/uploads/' in path and not refused:
            refused.append(len(request['body']))
            return 401, {'WWW-Authenticate': 'Bearer realm="http://%s/token",service="t"' % server.host}, b''
        return handle(request)
    server.handler = handler
    src_ref, dest_ref = refs(source, server)
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server, retries=2), dest_ref,
                                          workers=1)
    assert refused and sync.changed
    puts = [r for r in server.requests if r['method'] == 'PUT' and '/blobs/uploads/' in r['path']]
    # Every PUT that reached the registry carried the whole blob (none a half-read body sent again),
    # the ones after the challenge with the fresh token.
    assert all(digest_of(r['body']) == parse_qs(urlsplit(r['path']).query)['digest'][0] for r in puts)
    assert all(target.has_blob('prod/app', d) for d in layers + [config])
    assert all(r['headers'].get('Authorization') == 'Bearer fresh' for r in puts[1:])
    assert stats.blobs_copied == 2


def sig_tag(digest, suffix=''):
    return digest.replace(':', '-') + suffix


def test_referrers_go_before_the_tag_and_follow_a_new_signature(source, server):
    amd, c1, l1 = source.add_image('app', None, [b'1' * 10], platform=('linux', 'amd64', None))
    arm, c2, l2 = source.add_image('app', None, [b'2' * 10], platform=('linux', 'arm64', 'v8'))
    index = source.add_index('app', '1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', 'v8'))])
    # cosign keeps a signature of the index and an attestation of the arm64 image under derived tags.
    sig, dummy, dummy = source.add_image('app', sig_tag(index, '.sig'), [b'signature one'])
    att, dummy, dummy = source.add_image('app', sig_tag(arm, '.att'), [b'attestation'])
    target = server
    src_ref, dest_ref = refs(source, server)
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, check_mode=True,
                                          referrers=True)
    assert writes(server) == []
    assert [(r['subject'], r['tag'], r['changed']) for r in extra['referrers']] == [
        (index, sig_tag(index, '.sig'), True), (arm, sig_tag(arm, '.att'), True)]

    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)
    assert [r['digest'] for r in extra['referrers']] == [sig, att]
    assert target.manifests[('prod/app', sig_tag(index, '.sig'))] == source.manifests[('app', sig)]
    assert target.manifests[('prod/app', sig_tag(arm, '.att'))] == source.manifests[('app', att)]
    tag_puts = [path for method, path in writes(server) if '/manifests/' in path and 'sha256:' not in path]
    assert tag_puts[-1] == '/v2/prod/app/manifests/1'  # the image's tag last, after its signatures

    # Nothing new: no write at all. Then a second signature moves the .sig tag: it follows.
    before = len(writes(server))
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)
    assert not sync.changed and not any(r['changed'] for r in extra['referrers'])
    assert len(writes(server)) == before
    sig2, dummy, dummy = source.add_image('app', sig_tag(index, '.sig'), [b'signature one', b'signature two'])
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True,
                                          overwrite=False)
    moved = [r for r in extra['referrers'] if r['changed']]
    assert not sync.changed and [(r['tag'], r['before'], r['digest']) for r in moved] == [
        (sig_tag(index, '.sig'), sig, sig2)]


def test_referrers_of_a_platform_subset_are_those_of_the_kept_platforms(source, server):
    amd, c1, l1 = source.add_image('app', None, [b'1' * 10], platform=('linux', 'amd64', None))
    arm, c2, l2 = source.add_image('app', None, [b'2' * 10], platform=('linux', 'arm64', 'v8'))
    index = source.add_index('app', '1', [(amd, ('linux', 'amd64', None)), (arm, ('linux', 'arm64', 'v8'))])
    source.add_image('app', sig_tag(index, '.sig'), [b'index signature'])
    source.add_image('app', sig_tag(amd, '.sig'), [b'amd64 signature'])
    source.add_image('app', sig_tag(arm, '.sig'), [b'arm64 signature'])
    src_ref, dest_ref = refs(source, server)
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref,
                                          platforms=['linux/arm64'], referrers=True)
    # The index's signature does not sign what was written (the arm64 image alone), so it stays behind.
    assert plan.digest == arm and [r['tag'] for r in extra['referrers']] == [sig_tag(arm, '.sig')]


def test_add_referrers_folds_them_into_the_result_and_the_diff():
    result = {'changed': False, 'diff': {'before': {'1': 'sha256:a'}, 'after': {'1': 'sha256:a'}}}
    add_referrers(result, [{'tag': 'sha256-a.sig', 'before': 'sha256:s1', 'digest': 'sha256:s2', 'changed': True},
                           {'tag': 'sha256-a.att', 'before': None, 'digest': 'sha256:t', 'changed': True}])
    assert result['changed']
    assert result['diff']['before'] == {'1': 'sha256:a', 'sha256-a.sig': 'sha256:s1'}
    assert result['diff']['after'] == {'1': 'sha256:a', 'sha256-a.sig': 'sha256:s2', 'sha256-a.att': 'sha256:t'}


# -- platform picks: one requested platform gives one image, the one manifest_info describes ----------------
def arm_source(source, variants=('v6', 'v7'), with_amd=True):
    children = []
    digests = {}
    platforms = [('linux', 'arm', v) for v in variants] + ([('linux', 'amd64', None)] if with_amd else [])
    for platform in platforms:
        digest = source.add_image('app', None, [('%s' % (platform,)).encode() * 10], platform=platform)[0]
        children.append((digest, platform))
        digests['/'.join(p for p in platform if p)] = digest
    digests['index'] = source.add_index('app', '1', children)
    return digests


@pytest.mark.parametrize('wanted, expected', [
    ('linux/arm', 'linux/arm/v7'),
    ('linux/arm/v8', 'linux/arm/v7'),
    ('linux/arm/v7', 'linux/arm/v7'),
    ('linux/amd64/v3', 'linux/amd64'),
])
def test_one_platform_gives_one_image_manifest(source, server, wanted, expected):
    digests = arm_source(source)
    target = server
    src_ref, dest_ref = refs(source, server, dest='one/app:1')
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref,
                                          platforms=[wanted])
    assert plan.digest == digests[expected] and extra['digest_changed']
    media_type, written = target.manifests[('one/app', '1')]
    assert written == source.manifests[('app', digests[expected])][1] and media_type != 'application/vnd.oci.image.index.v1+json'
    assert len(plan.images) == 1


def test_one_platform_of_a_one_entry_index_gives_its_image_manifest(source, server):
    digests = arm_source(source, variants=('v7',), with_amd=False)
    target = server
    src_ref, dest_ref = refs(source, server, dest='one/app:1')
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref,
                                          platforms=['linux/arm/v7'])
    assert plan.digest == digests['linux/arm/v7'] != digests['index']
    assert target.manifests[('one/app', '1')][1] == source.manifests[('app', digests['linux/arm/v7'])][1]


def test_several_platforms_each_pick_one_entry_in_index_order(source, server):
    digests = arm_source(source, variants=('v5', 'v6', 'v7'))
    target = server
    src_ref, dest_ref = refs(source, server, dest='sub/app:1')
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref,
                                          platforms=['linux/amd64', 'linux/arm'])
    written = json.loads(target.manifests[('sub/app', '1')][1])
    assert [m['digest'] for m in written['manifests']] == [digests['linux/arm/v7'], digests['linux/amd64']]
    # Two requests that pick the same entry: that entry once, so its image manifest alone.
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server),
                                          ImageReference.parse('%s/dup/app:1' % server.host),
                                          platforms=['linux/arm/v8', 'linux/arm/v7'])
    assert plan.digest == digests['linux/arm/v7']


def test_malformed_source_manifest_fails_before_any_write(source, server):
    config = source.add_blob(b'{}')
    raw = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                      'config': {'digest': config, 'size': 2},
                      'layers': [{'digest': digest_of(b'x'), 'size': '1'}]}).encode()
    source.add_manifest('app', '1', raw, 'application/vnd.oci.image.manifest.v1+json')
    src_ref, dest_ref = refs(source, server)
    with pytest.raises(IntegrityError) as excinfo:
        copy_parts(client_for(source), src_ref, client_for(server), dest_ref)
    assert excinfo.value.details['field'] == 'layers[0].size' and digest_of(raw) in excinfo.value.msg
    assert writes(server) == []


def test_malformed_child_manifest_fails_before_any_write(source, server):
    child = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                        'config': {'digest': digest_of(b'{}'), 'size': 2}, 'layers': 5}).encode()
    child_digest = source.add_manifest('app', None, child, 'application/vnd.oci.image.manifest.v1+json')
    source.add_index('app', '1', [(child_digest, ('linux', 'amd64', None))])
    src_ref, dest_ref = refs(source, server)
    with pytest.raises(IntegrityError) as excinfo:
        copy_parts(client_for(source), src_ref, client_for(server), dest_ref)
    assert excinfo.value.details['field'] == 'layers' and child_digest in excinfo.value.msg
    assert writes(server) == []


def test_nested_indexes_stop_at_the_depth_limit(source, server):
    digest = source.add_image('app', None, [b'deep' * 10])[0]
    for level in range(MAX_INDEX_DEPTH + 1):
        media_type, data = source.manifests[('app', digest)]
        index = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',
                            'manifests': [{'mediaType': media_type, 'digest': digest, 'size': len(data),
                                           'platform': {'os': 'linux', 'architecture': 'amd64'}}]}).encode()
        digest = source.add_manifest('app', '1' if level == MAX_INDEX_DEPTH else None, index,
                                     'application/vnd.oci.image.index.v1+json')
    src_ref, dest_ref = refs(source, server)
    with pytest.raises(InvalidInputError) as excinfo:
        copy_parts(client_for(source), src_ref, client_for(server), dest_ref)
    assert 'deeper than %d' % MAX_INDEX_DEPTH in excinfo.value.msg
    assert writes(server) == []
    # Within the limit it is copied.
    extra, plan, sync, stats = copy_parts(client_for(source), ImageReference.parse(
        '%s/app@%s' % (source.host, json.loads(source.manifests[('app', '1')][1])['manifests'][0]['digest'])),
        client_for(server), dest_ref)
    assert sync.changed


def test_a_nested_index_is_written_after_every_manifest_it_lists(source, server):
    images = [source.add_image('app', None, [content * 50], platform=('linux', arch, None))[0]
              for content, arch in ((b'a', 'amd64'), (b'b', 'arm64'), (b'c', 's390x'))]
    inner = source.add_index('app', None, [(images[1], ('linux', 'arm64', None)),
                                           (images[2], ('linux', 's390x', None))])
    media_type, data = source.manifests[('app', inner)]
    outer = json.dumps({'schemaVersion': 2, 'mediaType': media_type, 'manifests': [
        {'mediaType': source.manifests[('app', images[0])][0], 'digest': images[0],
         'size': len(source.manifests[('app', images[0])][1]), 'platform': {'os': 'linux', 'architecture': 'amd64'}},
        {'mediaType': media_type, 'digest': inner, 'size': len(data)}]}).encode()
    source.add_manifest('app', '1', outer, media_type)
    target = server.configure(strict=True)
    src_ref, dest_ref = refs(source, server)
    extra, plan, sync, stats = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, workers=4)
    assert sync.changed and stats.manifests_pushed == 5
    assert all(('prod/app', digest) in target.manifests for digest in images + [inner])


def test_a_source_dripping_a_blob_fails_the_copy_at_its_deadline(source, server):
    digest, config, layers = source.add_image('app', '1', [b'd' * 1000], oci=False)
    source.fault = lambda request: ({'drip': 0.2, 'drip_bytes': 40}
                                    if request['method'] == 'GET' and layers[0] in request['path'] else None)
    target = server
    src_ref, dest_ref = refs(source, server)
    src_client = client_for(source)
    src_client.api.options.timeout = 1
    started = time.monotonic()
    with pytest.raises(TransportError, match='deadline'):
        copy_parts(src_client, src_ref, client_for(server), dest_ref, workers=1, retries=0)
    assert time.monotonic() - started < 6  # the drip alone would last 8 s
    assert ('prod/app', '1') not in target.manifests


# -- referrers found by the OCI 1.1 API or a fallback index --------------------------------------------
SIGNATURE = 'application/vnd.example.signature'
SBOM = 'application/vnd.example.sbom'


def referrer(registry, subject, artifact_type, payload, repository='app'):
    """The bytes of an OCI artifact manifest whose subject is ``subject`` of ``repository`` (its blobs stored)."""
    empty = registry.add_blob(b'{}', repository)
    layer = registry.add_blob(payload, repository)
    media_type, data = registry.manifests[(repository, subject)]
    return json.dumps({
        'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'artifactType': artifact_type,
        'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': empty, 'size': 2},
        'layers': [{'mediaType': 'application/octet-stream', 'digest': layer, 'size': len(payload)}],
        'subject': {'mediaType': media_type, 'digest': subject, 'size': len(data)}}).encode()


def index_entries(registry, repository, subject):
    found = registry.manifests.get((repository, fallback_tag(subject)))
    return [entry['digest'] for entry in json.loads(found[1])['manifests']] if found else None


def test_referrers_from_an_api_registry_are_listed_in_the_fallback_index_of_one_without(source, server):
    source.configure(referrers_api=True, referrers_page_size=1)
    subject = source.add_image('app', '1', [b'image layer'])[0]
    sig = source.add_manifest('app', None, referrer(source, subject, SIGNATURE, b'signature'), OCI_MANIFEST)
    sbom = source.add_manifest('app', None, referrer(source, subject, SBOM, b'sbom'), OCI_MANIFEST)
    cosign = source.add_image('app', sig_tag(subject, '.sig'), [b'cosign signature'])[0]
    src_ref, dest_ref = refs(source, server)
    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, check_mode=True, referrers=True)[0]
    assert writes(server) == [] and extra['changed']
    assert [(r['source'], r['changed'], r['before']) for r in extra['referrers']] == [
        ('api', True, None), ('api', True, None), ('tag', True, None)]

    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)[0]
    assert sorted((r['digest'], r['artifact_type']) for r in extra['referrers'][:2]) == sorted(
        [(sig, SIGNATURE), (sbom, SBOM)])
    assert extra['referrers'][2]['digest'] == cosign and extra['referrers'][2]['tag'] == sig_tag(subject, '.sig')
    assert sorted(index_entries(server, 'prod/app', subject)) == sorted([sig, sbom])
    assert server.manifests[('prod/app', sig)] == source.manifests[('app', sig)]
    assert server.manifests[('prod/app', sig_tag(subject, '.sig'))][1] == source.manifests[('app', cosign)][1]
    # The image's tag last: its referrers are there when it appears.
    assert [p for m, p in writes(server) if '/manifests/' in p][-1] == '/v2/prod/app/manifests/1'

    # Nothing new: no write, and the reads are pinned. Source: HEAD of the tag, 2 referrer pages, the 3
    # cosign tags, HEAD of the .sig tag. Destination: HEAD of the tag, per API referrer a HEAD and the
    # fallback index, HEAD of the .sig tag.
    before_source, before_dest = len(source.requests), len(server.requests)
    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)[0]
    assert not extra['changed'] and not any(r['changed'] for r in extra['referrers'])
    assert [r['before'] for r in extra['referrers']] == [r['digest'] for r in extra['referrers']]
    assert len(server.requests) - before_dest == 6 and writes(server)[-1][1] == '/v2/prod/app/manifests/1'
    assert len(source.requests) - before_source == 7


def test_referrers_from_a_fallback_index_go_to_the_api_of_the_destination(source, server):
    server.configure(referrers_api=True)
    subject = source.add_image('app', '1', [b'image layer'])[0]
    digest, changed = put_referrer(client_for(source), 'app', referrer(source, subject, SIGNATURE, b'sig'),
                                   OCI_MANIFEST)
    assert changed and index_entries(source, 'app', subject) == [digest]
    src_ref, dest_ref = refs(source, server)
    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)[0]
    assert [(r['source'], r['digest'], r['tag'], r['changed']) for r in extra['referrers']] == [
        ('fallback', digest, None, True)]
    # The source's index is not copied as an image: the destination's API lists the referrer.
    assert ('prod/app', fallback_tag(subject)) not in server.manifests
    assert [entry['digest'] for entry in server.referrers_of('prod/app', subject)] == [digest]
    before = len(writes(server))
    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)[0]
    assert not extra['changed'] and len(writes(server)) == before


def test_a_referrer_listed_and_tagged_keeps_both_at_the_destination(source, server):
    source.configure(referrers_api=True)
    subject = source.add_image('app', '1', [b'image layer'])[0]
    both = source.add_manifest('app', sig_tag(subject, '.att'), referrer(source, subject, SIGNATURE, b'att'),
                               OCI_MANIFEST)
    src_ref, dest_ref = refs(source, server)
    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)[0]
    assert [(r['source'], r['digest'], r['tag'], r['changed']) for r in extra['referrers']] == [
        ('api', both, sig_tag(subject, '.att'), True)]
    assert index_entries(server, 'prod/app', subject) == [both]
    assert server.manifests[('prod/app', sig_tag(subject, '.att'))][1] == source.manifests[('app', both)][1]
    before = len(writes(server))
    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)[0]
    assert not extra['changed'] and len(writes(server)) == before


def test_a_referrer_already_copied_is_added_to_an_index_that_lacks_it(source, server):
    source.configure(referrers_api=True)
    subject = source.add_image('app', '1', [b'image layer'])[0]
    raw = referrer(source, subject, SIGNATURE, b'sig')
    sig = source.add_manifest('app', None, raw, OCI_MANIFEST)
    other = {'mediaType': OCI_MANIFEST, 'digest': 'sha256:' + '9' * 64, 'size': 9, 'artifactType': SBOM}
    src_ref, dest_ref = refs(source, server)
    copy_image(client_for(source), src_ref, client_for(server), dest_ref)  # the image alone
    attach(client_for(server), 'prod/app', subject, other)                  # someone else's referrer
    server.add_manifest('prod/app', None, raw, OCI_MANIFEST)                # ours stored, not listed
    extra = copy_parts(client_for(source), src_ref, client_for(server), dest_ref, referrers=True)[0]
    assert [(r['digest'], r['changed'], r['before'], r['blobs_copied']) for r in extra['referrers']] == [
        (sig, True, None, 0)]
    assert index_entries(server, 'prod/app', subject) == [other['digest'], sig]  # merged, nothing lost
