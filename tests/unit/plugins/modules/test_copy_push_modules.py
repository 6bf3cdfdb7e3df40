# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy and push modules end to end against in-process registries: per-side credentials, no secrets out."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.module_args import patch_module_args

from ansible_collections.imagelayers.registry.plugins.modules import copy as copy_module
from ansible_collections.imagelayers.registry.plugins.modules import push as push_module
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.conftest import ScriptedServer
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.fake_registry import FakeRegistry
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.test_archive import docker_archive
from ansible_collections.imagelayers.registry.tests.unit.plugins.module_utils.test_copy import UploadTarget


@pytest.fixture
def source():
    reg = FakeRegistry()
    yield reg
    reg.close()


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def basic(user, password):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


def guarded(target, user, password):
    """Wrap the target's handler: Basic auth with exactly these credentials."""
    handle = target.handle
    seen = []

    def handler(request):
        auth = request['headers'].get('Authorization')
        seen.append(auth)
        if auth != basic(user, password):
            return 401, {'WWW-Authenticate': 'Basic realm="test"'}, b''
        return handle(request)
    target.server.handler = handler
    return seen


def run(capsys, module, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            module.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def test_dest_credentials_go_to_the_destination_only(capsys, source, server):
    digest, dummy, dummy = source.add_image('app', '1', [b'layer' * 100])
    seen = guarded(UploadTarget(server), 'rel', 'dest-secret')
    code, result = run(capsys, copy_module, {
        'src': '%s/app:1' % source.host, 'dest': '%s/prod/app' % server.host,
        'src_username': 'ci', 'src_password': 'src-secret',
        'dest_username': 'rel', 'dest_password': 'dest-secret', '_ansible_diff': True})
    assert code == 0, result
    assert result['changed'] and result['digest'] == digest and result['dest'].endswith('prod/app:1')
    assert result['diff']['after'] == {'1': digest}
    assert basic('ci', 'src-secret') not in seen and basic('rel', 'dest-secret') in seen
    assert 'secret' not in json.dumps(result)
    # The shared credentials are used for a side without its own.
    code, result = run(capsys, copy_module, {
        'src': '%s/app:1' % source.host, 'dest': '%s/prod/app:2' % server.host,
        'username': 'rel', 'password': 'dest-secret'})
    assert code == 0 and result['changed'], result


def test_copy_failure_is_a_message_not_a_traceback(capsys, source, server):
    UploadTarget(server)
    code, result = run(capsys, copy_module, {'src': '%s/app:missing' % source.host,
                                             'dest': '%s/prod/app:1' % server.host})
    assert code == 1 and 'does not exist' in result['msg'] and 'Traceback' not in json.dumps(result)


def test_push_twice_second_unchanged_and_check_mode_writes_nothing(capsys, server, tmp_path):
    archive = str(tmp_path / 'd.tar')
    docker_archive(archive, [(['app:1'], [b'one', b'two'])])
    target = UploadTarget(server)
    image = '%s/pushed/app:1' % server.host
    code, check = run(capsys, push_module, {'src': archive, 'image': image, '_ansible_check_mode': True})
    assert code == 0 and check['changed'] and check['blobs_copied'] == 3 and target.manifests == {}
    code, first = run(capsys, push_module, {'src': archive, 'image': image})
    code, second = run(capsys, push_module, {'src': archive, 'image': image})
    assert first['changed'] and not second['changed'] and first['digest'] == second['digest'] == check['digest']
    assert first['format'] == 'docker-archive' and first['image'] == image
    assert target.manifests[('pushed/app', '1')][1] and second['blobs_copied'] == 0
