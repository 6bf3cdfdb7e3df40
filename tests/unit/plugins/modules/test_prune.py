# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prune module end to end against the fake registry: check/real/check/real with diff, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ansible_collections.imagelayers.registry.plugins.modules import prune as prune_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.test_retention import push, tag
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module


def ago(days):
    return (datetime.now(timezone.utc) - timedelta(days=days)).strftime('%Y-%m-%dT%H:%M:%SZ')


def test_check_real_check_real_with_diff(server):
    release = push(server, '1.0.0', 'release', ago(90))
    tag(server, release, 'build-1')
    push(server, 'build-2', 'recent', ago(2))
    push(server, 'build-3', 'old', ago(40))
    push(server, 'pr-7', 'pr', ago(60))
    args = {'repository': '%s/app' % server.host, 'keep': {'semver_latest': 1, 'newer_than': '30d'},
            'candidates': '^(build|pr)-', 'delete': 'manifests', '_ansible_diff': True}
    code, checked = run_module(prune_module, dict(args, _ansible_check_mode=True))
    assert code == 0 and checked['changed'] and len(server.tags('app')) == 5, checked
    assert checked['deleted_tags'] == ['build-1', 'build-3', 'pr-7'] and len(checked['deleted_manifests']) == 2
    assert [e['rule'] for e in checked['plan']] == ['semver_latest', 'candidate', 'newer_than', 'candidate', 'candidate']
    assert 'manifest' not in checked['plan'][1], 'build-1 shares the kept 1.0.0: only the tag goes'
    assert [checked['plan'][i]['manifest'] for i in (3, 4)] == ['delete', 'delete']
    code, real = run_module(prune_module, args)
    assert code == 0 and real == checked
    assert sorted(server.tags('app')) == ['1.0.0', 'build-2'] and real['diff']['after'] == server.tags('app')
    for check_mode in (True, False):
        code, again = run_module(prune_module, dict(args, _ansible_check_mode=check_mode))
        assert code == 0 and not again['changed'] and again['diff']['before'] == again['diff']['after']
        assert again['deleted_tags'] == [] and again['deleted_manifests'] == []


def test_bad_input_is_one_clear_failure_before_any_request(server):
    push(server, 'build-1', 'a', ago(40))
    repository = '%s/app' % server.host
    for args, words in (
            ({'keep': {'newer_than': 'a month'}}, "Invalid age 'a month' for keep.newer_than"),
            ({'keep': {'patterns': ['[']}}, "keep.patterns: the regular expression '[' does not compile"),
            ({'candidates': '^build-('}, 'candidates: the regular expression'),
            ({}, 'keep keeps nothing and candidates selects every tag'),
            ({'keep': {'tags': ['x']}, 'repository': repository + ':build-1'}, 'without a tag or digest')):
        code, result = run_module(prune_module, dict({'repository': repository}, **args))
        assert code == 1 and words in result['msg'], result
    assert server.requests == [] and server.tags('app')


def test_deletion_disabled_fails_in_check_mode_too(server):
    server.configure(delete_mode='disabled')
    push(server, 'build-1', 'a', ago(40))
    push(server, 'stable', 'b', ago(40))
    code, result = run_module(prune_module, {'repository': '%s/app' % server.host, 'keep': {'tags': ['stable']},
                                             '_ansible_check_mode': True})
    assert code == 1 and 'deletion is disabled' in result['msg'] and result['status'] == 405
    assert sorted(server.tags('app')) == ['build-1', 'stable']
