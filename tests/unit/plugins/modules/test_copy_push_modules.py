# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy and push modules end to end against in-process registries: per-side credentials, no secrets out."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._archive import load_image
from ansible_collections.imagelayers.registry.plugins.modules import copy as copy_module
from ansible_collections.imagelayers.registry.plugins.modules import push as push_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.archives import (
    assert_outside_untouched,
    docker_archive,
    docker_entries,
    hostile_members,
    link_blob_outside,
    nest,
    oci_layout,
    tar_entries,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    basic_authorization as basic,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import requiring_basic


def guarded(server, user, password):
    """Basic auth with exactly these credentials in front of the registry; the Authorization headers it saw."""
    check = requiring_basic(user, password, server.handle, realm='test')
    seen = []

    def handler(request):
        seen.append(request['headers'].get('Authorization'))
        return check(request)
    server.handler = handler
    return seen


def test_dest_credentials_go_to_the_destination_only(source, server):
    digest, dummy, dummy = source.add_image('app', '1', [b'layer' * 100])
    seen = guarded(server, 'rel', 'dest-secret')
    code, result = run_module(copy_module, {
        'src': '%s/app:1' % source.host, 'dest': '%s/prod/app' % server.host,
        'src_username': 'ci', 'src_password': 'src-secret',
        'dest_username': 'rel', 'dest_password': 'dest-secret', '_ansible_diff': True})
    assert code == 0, result
    assert result['changed'] and result['digest'] == digest and result['dest'].endswith('prod/app:1')
    assert result['diff']['after'] == {'1': digest}
    assert basic('ci', 'src-secret') not in seen and basic('rel', 'dest-secret') in seen
    assert 'secret' not in json.dumps(result)
    # The shared credentials are used for a side without its own.
    code, result = run_module(copy_module, {
        'src': '%s/app:1' % source.host, 'dest': '%s/prod/app:2' % server.host,
        'username': 'rel', 'password': 'dest-secret'})
    assert code == 0 and result['changed'], result


def test_copy_failure_is_a_message_not_a_traceback(source, server):
    code, result = run_module(copy_module, {'src': '%s/app:missing' % source.host,
                                            'dest': '%s/prod/app:1' % server.host})
    assert code == 1 and 'does not exist' in result['msg'] and 'Traceback' not in json.dumps(result)


def test_push_twice_second_unchanged_and_check_mode_writes_nothing(server, tmp_path):
    archive = str(tmp_path / 'd.tar')
    docker_archive(archive, [(['app:1'], [b'one', b'two'])])
    target = server
    image = '%s/pushed/app:1' % server.host
    code, check = run_module(push_module, {'src': archive, 'image': image, '_ansible_check_mode': True})
    assert code == 0 and check['changed'] and check['blobs_copied'] == 3 and target.manifests == {}
    code, first = run_module(push_module, {'src': archive, 'image': image})
    code, second = run_module(push_module, {'src': archive, 'image': image})
    assert first['changed'] and not second['changed'] and first['digest'] == second['digest'] == check['digest']
    assert first['format'] == 'docker-archive' and first['image'] == image
    assert target.manifests[('pushed/app', '1')][1] and second['blobs_copied'] == 0


# -- push of crafted archives ---------------------------------------------------------------------------
def test_push_of_a_crafted_tar_gz_writes_nothing_outside_even_in_check_mode(server, tmp_path, outside):
    archive = str(tmp_path / 'evil.tar.gz')
    tar_entries(archive, hostile_members(outside) + docker_entries([b'one', b'two']))
    target = server
    image = '%s/crafted/app:1' % server.host
    code, check = run_module(push_module, {'src': archive, 'image': image, '_ansible_check_mode': True})
    assert code == 0 and check['changed'] and target.manifests == {}, check
    assert_outside_untouched(outside)
    code, real = run_module(push_module, {'src': archive, 'image': image})
    assert code == 0 and real['changed'] and real['digest'] == check['digest'], real
    assert_outside_untouched(outside)


@pytest.mark.parametrize('check_mode', [True, False])
@pytest.mark.parametrize('same_bytes', [True, False])
def test_push_of_a_layout_with_a_blob_linked_outside_sends_nothing(server, tmp_path, same_bytes,
                                                                   check_mode):
    root = str(tmp_path / 'layout')
    oci_layout(root, ['1.0'])
    layer = [b for b in load_image(root, str(tmp_path))[0].blobs if b['kind'] == 'layer'][0]
    with open(os.path.join(root, 'blobs', 'sha256', layer['digest'][7:]), 'rb') as handle:
        data = handle.read()
    link = link_blob_outside(root, tmp_path, layer['digest'], data if same_bytes else b'secret ' * 100)
    code, result = run_module(push_module, {'src': root, 'image': '%s/linked/app:1' % server.host,
                                            '_ansible_check_mode': check_mode})
    assert code == 1 and os.path.relpath(link, root) in result['msg'] and 'outside' in result['msg'], result
    assert server.requests == []  # refused while reading the layout: not a byte, not even a HEAD


def test_push_of_a_layout_with_nested_indexes(server, tmp_path):
    root = str(tmp_path / 'layout')
    image = oci_layout(root, ['1.0'])[0]
    top = nest(root, 2)
    target = server
    code, result = run_module(push_module, {'src': root, 'image': '%s/nested/app:1' % server.host,
                                            'workers': 1})
    assert code == 0 and result['changed'] and result['digest'] == top, result
    assert result['manifests_pushed'] == 3 and result['blobs_copied'] == 2
    assert [i['digest'] for i in result['images']] == [image['digest']]
    puts = [r['path'].rsplit('/', 1)[1] for r in server.requests if r['method'] == 'PUT' and '/manifests/' in r['path']]
    assert puts[0] == image['digest'] and puts[-1] == '1' and len(puts) == 3  # the image before the index listing it
    assert target.manifests[('nested/app', '1')][1] == target.manifests[('nested/app', top)][1]


def test_copy_one_arm_platform_gives_one_image(source, server):
    children = []
    for variant in ('v6', 'v7'):
        digest = source.add_image('app', None, [variant.encode() * 100], platform=('linux', 'arm', variant))[0]
        children.append((digest, ('linux', 'arm', variant)))
    source.add_index('app', '1', children)
    target = server
    code, result = run_module(copy_module, {'src': '%s/app:1' % source.host, 'dest': '%s/prod/app:1' % server.host,
                                            'platforms': ['linux/arm']})
    assert code == 0, result
    assert result['digest'] == children[1][0] and [i['digest'] for i in result['images']] == [children[1][0]]
    assert target.manifests[('prod/app', '1')][1] == source.manifests[('app', children[1][0])][1]
