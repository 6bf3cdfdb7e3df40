# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The export module end to end against an in-process registry: check, real, check, real; failures."""

from __future__ import annotations

import json
import os

from ansible_collections.imagelayers.registry.plugins.modules import export
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import run_module

LAYER = b'layer bytes' * 5000


def test_check_real_check_real(registry, tmp_path):
    digest = registry.add_image('app', 'v1', [LAYER])[0]
    dest = str(tmp_path / 'layout')
    args = {'images': ['%s/app:v1' % registry.host], 'dest': dest, '_ansible_diff': True}
    runs = []
    for check in (True, False, True, False):
        code, result = run_module(export, dict(args, _ansible_check_mode=check))
        assert code == 0 and not result.get('failed')
        runs.append(result)
    assert [r['changed'] for r in runs] == [True, True, False, False]
    assert runs[0]['diff']['after'] == runs[1]['diff']['after'] == {'refs': {'v1': digest}, 'blobs': 3}
    assert runs[2]['diff']['before'] == runs[2]['diff']['after'] == runs[3]['diff']['after']
    assert runs[1]['blobs_fetched'] == 2 and runs[3]['blobs_present'] == 2 and runs[3]['bytes_transferred'] == 0
    assert runs[1]['images'] == [{'reference': '%s/app:v1' % registry.host, 'ref_name': 'v1', 'digest': digest,
                                  'media_type': 'application/vnd.oci.image.manifest.v1+json',
                                  'platforms': ['linux/amd64'], 'blobs': 3}]


def test_missing_image_is_a_clean_failure(registry, tmp_path):
    code, result = run_module(export, {'images': ['%s/app:nope' % registry.host], 'dest': str(tmp_path / 'd')})
    assert code == 1 and 'does not exist' in result['msg'] and 'Traceback' not in json.dumps(result)
    assert not os.path.exists(str(tmp_path / 'd'))


def test_docker_archive_of_two_images_is_refused_before_any_request(registry, tmp_path):
    code, result = run_module(export, {'images': ['%s/a:1' % registry.host, '%s/b:1' % registry.host],
                                       'dest': str(tmp_path / 'x.tar'), 'format': 'docker-archive'})
    assert code == 1 and 'holds one image' in result['msg'] and registry.requests == []
