# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The delete module end to end against the fake registry: refusal, force, check mode and diff."""

from __future__ import annotations

from ansible_collections.imagelayers.registry.plugins.modules import delete as delete_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.test_retention import OLD, push, tag
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module


def test_refused_while_tagged_elsewhere_then_check_real_check_real_with_force(server):
    digest = push(server, 'pr-7', 'a', OLD)
    tag(server, digest, 'latest')
    image = '%s/app:pr-7' % server.host
    code, refused = run_module(delete_module, {'image': image})
    assert code == 1 and 'still referenced by the tag latest' in refused['msg'] and refused['tags'] == ['latest', 'pr-7']
    args = {'image': image, 'force': True, '_ansible_diff': True}
    code, checked = run_module(delete_module, dict(args, _ansible_check_mode=True))
    assert code == 0 and checked['changed'] and checked['deleted'] == digest and len(server.tags('app')) == 2
    code, real = run_module(delete_module, args)
    assert code == 0 and real == checked and server.tags('app') == {}
    assert digest not in server.repository('app').manifests
    for check_mode in (True, False):
        code, again = run_module(delete_module, dict(args, _ansible_check_mode=check_mode))
        assert code == 0 and not again['changed'] and again['deleted'] is None
        assert again['diff']['before'] == again['diff']['after']


def test_a_tag_must_be_named_and_bad_references_fail(server):
    code, result = run_module(delete_module, {'image': '%s/app' % server.host})
    assert code == 1 and 'by digest' in result['msg'] and server.requests == []
