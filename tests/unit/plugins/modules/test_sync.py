# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync module end to end against in-process registries: options, check mode and diff, per-side credentials."""

from __future__ import annotations

import json

from ansible_collections.imagelayers.registry.plugins.modules import sync as sync_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    basic_authorization as basic,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import requiring_basic


def items(source, server):
    return [{'src': '%s/dev/app' % source.host, 'dest': '%s/prod/app' % server.host, 'semver': '^1.4'},
            {'src': '%s/dev/web' % source.host, 'dest': '%s/prod/web' % server.host, 'tags': ['main']}]


def test_check_real_check_real_with_diff(source, server):
    for tag in ('1.3.0', '1.4.0', '1.4.1', '2.0.0'):
        source.add_image('dev/app', tag, [tag.encode() * 100])
    web = source.add_image('dev/web', 'main', [b'web' * 100])[0]
    args = {'repositories': items(source, server), '_ansible_diff': True}
    code, checked = run_module(sync_module, dict(args, _ansible_check_mode=True))
    assert code == 0 and checked['changed'] and not server.tags('prod/app'), checked
    assert checked['diff']['before'] == {} and len(checked['diff']['after']) == 3
    code, real = run_module(sync_module, args)
    assert code == 0 and real['changed'] and real['diff'] == checked['diff']
    assert real['tags_changed'] == 3 and server.tags('prod/web') == {'main': web}
    assert sorted(server.tags('prod/app')) == ['1.4.0', '1.4.1']
    for dummy in range(2):
        code, again = run_module(sync_module, dict(args, _ansible_check_mode=not dummy))
        assert code == 0 and not again['changed'] and again['diff']['before'] == again['diff']['after']
        assert again['tags_unchanged'] == 3 and again['bytes_transferred'] == 0


def test_options_are_checked_before_any_request(source, server):
    bad = items(source, server)
    bad[1]['pattern'] = '^m'
    code, result = run_module(sync_module, {'repositories': bad})
    assert code == 1 and 'mutually exclusive' in result['msg']
    bad = items(source, server)
    bad[0]['semver'] = '>= one'
    code, result = run_module(sync_module, {'repositories': bad})
    assert code == 1 and result['msg'].startswith("repositories[0]: Invalid semver range '>= one'")
    assert source.requests == [] and server.requests == []


def test_side_credentials_go_to_their_side_only(source, server):
    source.add_image('dev/web', 'main', [b'web'])
    check = requiring_basic('rel', 'dest-secret', server.handle, realm='test')
    seen = []

    def handler(request):
        seen.append(request['headers'].get('Authorization'))
        return check(request)
    server.handler = handler
    code, result = run_module(sync_module, {
        'repositories': items(source, server)[1:], 'src_username': 'ci', 'src_password': 'src-secret',
        'dest_username': 'rel', 'dest_password': 'dest-secret'})
    assert code == 0 and result['changed'], result
    assert basic('rel', 'dest-secret') in seen and basic('ci', 'src-secret') not in seen
    assert 'secret' not in json.dumps(result)


def test_a_failure_is_one_message_naming_the_item(source, server):
    source.add_image('dev/web', 'main', [b'web'])
    code, result = run_module(sync_module, {'repositories': [
        {'src': '%s/dev/web' % source.host, 'dest': '%s/prod/web' % server.host, 'tags': ['main', 'gone']}]})
    assert code == 1 and 'repositories[0]' in result['msg'] and 'gone does not exist' in result['msg']
    assert result['item'] == 0 and result['tag'] == 'gone'
