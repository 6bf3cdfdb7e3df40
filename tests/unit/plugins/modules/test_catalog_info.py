# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog_info module end to end against an in-process registry: result, check mode and clean failures."""

from __future__ import annotations

import json

import pytest

from ansible_collections.imagelayers.registry.plugins.modules import catalog_info
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module


def _fill(registry, names):
    for name in names:
        registry.repository(name).add(b'{"schemaVersion": 2, "name": "%s"}' % name.encode(), tags=['v1'])


@pytest.mark.parametrize('check_mode', [False, True])
def test_lists_filtered_repositories_in_pages(registry, check_mode):
    _fill(registry, ['other/app', 'team/api', 'team/web'])
    code, result = run_module(catalog_info, {'registry': registry.host, 'pattern': '^team/', 'page_size': 1,
                                             '_ansible_check_mode': check_mode, '_ansible_diff': True})
    assert code == 0 and not result.get('failed')
    assert result['changed'] is False and result['registry'] == registry.host
    assert result['repositories'] == ['team/api', 'team/web'] and result['total'] == 3 and result['pages'] == 3
    assert [r['path'].split('?')[0] for r in registry.requests].count('/v2/_catalog') == 3


def test_a_registry_without_a_catalog_fails_with_what_to_do(registry):
    _fill(registry, ['team/api'])
    registry.configure(catalog_refusal=404)
    code, result = run_module(catalog_info, {'registry': registry.host, 'username': 'dev', 'password': 'pw-s3cret'})
    assert code == 1 and result['failed'] is True and result['status'] == 404
    assert 'does not offer its catalog' in result['msg'] and 'tags_info' in result['msg']
    assert 'exception' not in result and 'Traceback' not in json.dumps(result) and 'pw-s3cret' not in json.dumps(result)


@pytest.mark.parametrize('args, words', [
    ({'registry': 'https://r.example'}, 'without scheme or path'),
    ({'registry': 'r.example:99999'}, 'Invalid port'),
    ({'registry': '127.0.0.1:1', 'pattern': '['}, 'Invalid pattern'),
    ({'registry': '127.0.0.1:1', 'page_size': 0}, 'page_size must be between 1 and 100000'),
])
def test_user_mistakes_are_clean_failures_without_requests(args, words):
    code, result = run_module(catalog_info, args)
    assert code == 1 and words in result['msg'] and 'exception' not in result
