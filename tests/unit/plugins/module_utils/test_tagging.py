# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""put_tags / tag_present / tag_absent against an in-memory registry served on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryHTTPError,
    UnsupportedError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    EMPTY_DIGEST,
    PLACEHOLDER_ANNOTATION,
    PreconditionError,
    TagConflictError,
    put_tags,
    tag_absent,
    tag_present,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import (
    client_for,
    registry_error,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import digest_of as sha


def manifest(name, media_type=DOCKER_MANIFEST):
    raw = json.dumps({'schemaVersion': 2, 'mediaType': media_type,
                      'config': {'mediaType': 'application/vnd.docker.container.image.v1+json',
                                 'digest': sha(name.encode()), 'size': len(name)},
                      'layers': []}, indent=3).encode()
    return raw, sha(raw)


IMAGE_A, DIGEST_A = manifest('a')
IMAGE_B, DIGEST_B = manifest('b')
INDEX = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': []}).encode()
INDEX_DIGEST = sha(INDEX)


def app_repository(server, **behaviour):
    """The repository 'app' of the fake registry ``server``, behaving as told (test_support.registry.DELETE_MODES)."""
    return server.configure(**behaviour).repository('app')


@pytest.fixture
def registry(server):
    return app_repository(server)


def ref(server, rest):
    return ImageReference.parse('%s/app%s' % (server.host, rest))


def absent(registry, tag):
    return tag not in registry.tags


# -- state=present ---------------------------------------------------------------------
def test_new_tags_are_written_with_one_get_and_one_put_each(server, registry):
    registry.add(IMAGE_A, tags=['build'])
    outcome = tag_present(client_for(server), ref(server, ':build'), ['1.0', '1', 'latest'])
    sync, source = outcome.sync, outcome.source
    assert sync.changed and source['digest'] == DIGEST_A
    assert registry.tags == {'build': DIGEST_A, '1.0': DIGEST_A, '1': DIGEST_A, 'latest': DIGEST_A}
    log = registry.log
    assert log[0] == 'HEAD /v2/app/manifests/build'
    assert sorted(log[1:4]) == ['HEAD /v2/app/manifests/1', 'HEAD /v2/app/manifests/1.0',
                                'HEAD /v2/app/manifests/latest']
    assert log[4] == 'GET /v2/app/manifests/%s' % DIGEST_A   # by digest: the source cannot move meanwhile
    assert sorted(log[5:]) == ['PUT /v2/app/manifests/1', 'PUT /v2/app/manifests/1.0', 'PUT /v2/app/manifests/latest']
    puts = [r for r in server.requests if r['method'] == 'PUT']
    assert all(r['body'] == IMAGE_A and r['headers']['Content-Type'] == DOCKER_MANIFEST for r in puts)
    assert [e['tag'] for e in sync.results()] == ['1.0', '1', 'latest']
    assert sync.diff()['before'] == {} and sync.diff()['after'] == {'1.0': DIGEST_A, '1': DIGEST_A, 'latest': DIGEST_A}


def test_unchanged_tags_are_never_put_even_on_an_immutable_registry(server):
    registry = app_repository(server, immutable=True)
    registry.add(IMAGE_A, tags=['build', '1.0', 'latest'])
    sync = tag_present(client_for(server), ref(server, ':build'), ['1.0', 'latest']).sync
    assert not sync.changed
    assert len(registry.log) == 3 and registry.writes() == []
    diff = sync.diff()
    assert diff['before'] == diff['after'] == {'1.0': DIGEST_A, 'latest': DIGEST_A}


def test_only_the_tags_that_differ_are_written(server, registry):
    registry.add(IMAGE_B, tags=['old'])
    registry.add(IMAGE_A, tags=['build', 'same'])
    sync = tag_present(client_for(server), ref(server, ':build'), ['same', 'old', 'new']).sync
    assert registry.writes() == ['PUT /v2/app/manifests/old', 'PUT /v2/app/manifests/new'] or \
        sorted(registry.writes()) == ['PUT /v2/app/manifests/new', 'PUT /v2/app/manifests/old']
    assert [(e['tag'], e['before'], e['changed']) for e in sync.results()] == [
        ('same', DIGEST_A, False), ('old', DIGEST_B, True), ('new', None, True)]
    assert registry.tags['old'] == DIGEST_A


def test_check_mode_reports_the_plan_and_writes_nothing(server, registry):
    registry.add(IMAGE_B, tags=['old'])
    registry.add(IMAGE_A, tags=['build'])
    sync = tag_present(client_for(server), ref(server, ':build'), ['old', 'new'], ctx=RunContext(check_mode=True)).sync
    assert sync.changed
    assert sync.diff()['before'] == {'old': DIGEST_B}
    assert sync.diff()['after'] == {'old': DIGEST_A, 'new': DIGEST_A}
    assert registry.writes() == [] and not any(line.startswith('GET') for line in registry.log)
    assert registry.tags['old'] == DIGEST_B and absent(registry, 'new')


def test_overwrite_false_refuses_every_move_before_any_write(server, registry):
    registry.add(IMAGE_B, tags=['1.0', '1'])
    registry.add(IMAGE_A, tags=['build'])
    with pytest.raises(TagConflictError) as excinfo:
        tag_present(client_for(server), ref(server, ':build'), ['new', '1.0', '1'], overwrite=False)
    assert registry.writes() == []
    assert absent(registry, 'new') and registry.tags['1.0'] == DIGEST_B
    assert [c['tag'] for c in excinfo.value.details['conflicts']] == ['1.0', '1']
    assert 'nothing was changed' in excinfo.value.msg


def test_overwrite_false_accepts_a_tag_already_at_the_digest(server, registry):
    registry.add(IMAGE_A, tags=['build', '1.0'])
    sync = tag_present(client_for(server), ref(server, ':build'), ['1.0', 'new'], overwrite=False).sync
    assert [e['changed'] for e in sync.results()] == [False, True]


def test_expected_digest_mismatch_fails_after_one_request(server, registry):
    registry.add(IMAGE_A, tags=['build'])
    with pytest.raises(PreconditionError) as excinfo:
        tag_present(client_for(server), ref(server, ':build'), ['release'], expected_digest=DIGEST_B)
    assert registry.log == ['HEAD /v2/app/manifests/build']
    assert excinfo.value.details == {'expected_digest': DIGEST_B, 'actual_digest': DIGEST_A}


def test_expected_digest_must_be_a_digest(server, registry):
    registry.add(IMAGE_A, tags=['build'])
    with pytest.raises(InvalidInputError):
        tag_present(client_for(server), ref(server, ':build'), ['release'], expected_digest='latest')


def test_source_by_digest_and_index_keep_their_digest(server, registry):
    registry.add(INDEX, OCI_INDEX)
    source = tag_present(client_for(server), ref(server, '@' + INDEX_DIGEST), ['multi']).source
    assert source['media_type'] == OCI_INDEX and registry.tags['multi'] == INDEX_DIGEST
    put = [r for r in server.requests if r['method'] == 'PUT'][0]
    assert put['headers']['Content-Type'] == OCI_INDEX and put['body'] == INDEX


def test_missing_source_is_not_found(server, registry):
    with pytest.raises(NotFoundError) as excinfo:
        tag_present(client_for(server), ref(server, ':nope'), ['x'])
    assert 'does not exist' in excinfo.value.msg


def test_schema1_source_is_refused_before_any_write(server, registry):
    registry.add(b'{"schemaVersion": 1, "signatures": []}', DOCKER_SCHEMA1_SIGNED, tags=['old'])
    with pytest.raises(InvalidInputError) as excinfo:
        tag_present(client_for(server), ref(server, ':old'), ['new'])
    assert 'schema1' in excinfo.value.msg and registry.writes() == []


def test_without_digest_headers_the_source_is_fetched_once(server):
    registry = app_repository(server, digest_header=False)
    registry.add(IMAGE_A, tags=['build'])
    tag_present(client_for(server), ref(server, ':build'), ['x', 'y'])
    gets = [line for line in registry.log if line.startswith('GET')]
    # The source GET of resolve() is reused for the PUTs; the PUT answers carry no digest either,
    # so each written tag is read back (HEAD, then GET) to verify it.
    assert gets[0] == 'GET /v2/app/manifests/build' and gets.count('GET /v2/app/manifests/build') == 1
    assert sorted(gets[1:]) == ['GET /v2/app/manifests/x', 'GET /v2/app/manifests/y']
    assert registry.tags['x'] == registry.tags['y'] == DIGEST_A


def test_a_registry_storing_other_content_is_an_integrity_error(server, registry):
    registry.add(IMAGE_A, tags=['build'])
    answer = server.handle

    def other_content(request):  # the registry says it stored something else
        status, headers, body = answer(request)
        if request['method'] == 'PUT':
            headers['Docker-Content-Digest'] = DIGEST_B
        return status, headers, body
    server.handler = other_content
    with pytest.raises(IntegrityError) as excinfo:
        tag_present(client_for(server), ref(server, ':build'), ['x'])
    assert DIGEST_B in excinfo.value.msg
    assert excinfo.value.details['tags'][0]['after'] == DIGEST_B


def test_put_tags_takes_bytes_for_copy_and_push(server, registry):
    client = client_for(server)
    sync = put_tags(client, 'app', ['v1', 'v1'], DIGEST_A, DOCKER_MANIFEST, IMAGE_A)
    assert [e['tag'] for e in sync.results()] == ['v1'] and registry.tags == {'v1': DIGEST_A}
    with pytest.raises(IntegrityError):
        put_tags(client, 'app', ['v2'], DIGEST_B, DOCKER_MANIFEST, IMAGE_A)
    assert absent(registry, 'v2')


@pytest.mark.parametrize('bad', ['app:1.0', 'a/b', '-x', '', 'x' * 129, 'x\n', '1.0\n', 'a b', '\tx'])
def test_tags_must_be_tag_names(server, registry, bad):
    registry.add(IMAGE_A, tags=['build'])
    with pytest.raises(InvalidInputError):
        tag_present(client_for(server), ref(server, ':build'), [bad])
    assert registry.log == []


@pytest.mark.parametrize('state', ['present', 'absent'])
def test_a_tag_with_a_trailing_line_break_is_refused_before_any_request(server, registry, state):
    registry.add(IMAGE_A, tags=['build', 'x'])
    with pytest.raises(InvalidInputError) as excinfo:
        if state == 'present':
            tag_present(client_for(server), ref(server, ':build'), ['1.0', 'x\n'])
        else:
            tag_absent(client_for(server), ref(server, ''), ['x\n'])
    assert excinfo.value.msg.startswith("Invalid tag 'x\\n': ")
    assert 'contains white space or a line break' in excinfo.value.msg
    assert registry.log == [] and registry.tags == {'build': DIGEST_A, 'x': DIGEST_A}


# -- state=absent ----------------------------------------------------------------------
def test_oci_tag_delete_removes_only_the_tag(server):
    registry = app_repository(server, delete_mode='oci')
    registry.add(IMAGE_A, tags=['rc', 'keep'])
    sync = tag_absent(client_for(server), ref(server, ''), ['rc']).sync
    assert sync.changed and registry.tags == {'keep': DIGEST_A} and DIGEST_A in registry.manifests
    assert registry.writes() == ['DELETE /v2/app/manifests/rc']


@pytest.mark.parametrize('mode', ['distribution', 'no-tag-delete', 'tag-delete-404'])
def test_without_tag_delete_a_placeholder_is_pushed_and_deleted(server, mode):
    registry = app_repository(server, delete_mode=mode)
    registry.add(IMAGE_A, tags=['rc', 'rc2', 'keep'])
    sync = tag_absent(client_for(server), ref(server, ''), ['rc', 'rc2', 'missing']).sync
    assert [e['changed'] for e in sync.results()] == [True, True, False]
    assert registry.tags == {'keep': DIGEST_A}
    assert DIGEST_A in registry.manifests, 'the original image must never be deleted'
    assert EMPTY_DIGEST in registry.blobs
    placeholders = [r for r in server.requests if r['method'] == 'PUT' and '/manifests/' in r['path']]
    assert len(placeholders) == 2
    bodies = [json.loads(r['body']) for r in placeholders]
    assert bodies[0] != bodies[1] and all(PLACEHOLDER_ANNOTATION in b['annotations'] for b in bodies)
    assert set(registry.manifests) == {DIGEST_A}, 'placeholders are deleted again'
    # The tag DELETE is tried once per run, the empty blob uploaded once.
    assert registry.writes().count('DELETE /v2/app/manifests/rc') == 1
    assert 'DELETE /v2/app/manifests/rc2' not in registry.writes()
    assert registry.writes().count('POST /v2/app/blobs/uploads/') == 1


def test_deletion_disabled_fails_and_writes_nothing(server):
    registry = app_repository(server, delete_mode='disabled')
    registry.add(IMAGE_A, tags=['rc', 'keep'])
    with pytest.raises(UnsupportedError) as excinfo:
        tag_absent(client_for(server), ref(server, ''), ['rc'])
    assert 'disabled' in excinfo.value.msg and 'Nothing was changed' in excinfo.value.msg
    assert registry.tags == {'rc': DIGEST_A, 'keep': DIGEST_A}
    assert not [line for line in registry.writes() if not line.startswith('DELETE')]


def test_failed_placeholder_delete_puts_the_tag_back(server):
    registry = app_repository(server, delete_mode='distribution')
    registry.add(IMAGE_A, tags=['rc'])

    def failing(request):  # deleting a manifest it has fails
        reference = request['path'].rsplit('/', 1)[1]
        if request['method'] == 'DELETE' and reference.startswith('sha256:') and ('app', reference) in server.manifests:
            return registry_error(500, 'UNKNOWN')
        return server.handle(request)
    server.handler = failing
    with pytest.raises(RegistryHTTPError) as excinfo:
        tag_absent(client_for(server), ref(server, ''), ['rc'])
    assert registry.tags['rc'] == DIGEST_A
    assert 'put back' in excinfo.value.msg
    assert excinfo.value.details['tags'][0]['changed'] is False


def test_absent_tag_is_unchanged_and_check_mode_deletes_nothing(server, registry):
    registry.add(IMAGE_A, tags=['rc'])
    client = client_for(server)
    assert not tag_absent(client, ref(server, ''), ['nope']).sync.changed
    sync = tag_absent(client, ref(server, ''), ['rc', 'nope'], ctx=RunContext(check_mode=True)).sync
    assert sync.changed and sync.diff()['before'] == {'rc': DIGEST_A} and sync.diff()['after'] == {}
    # The one write is the deletion probe: a DELETE of a digest the registry does not have.
    probes = registry.writes()
    assert len(probes) == 1 and probes[0].startswith('DELETE /v2/app/manifests/sha256:')
    assert probes[0].rsplit('/', 1)[1] not in registry.manifests and registry.tags == {'rc': DIGEST_A}


def test_absent_with_expected_digest_refuses_moved_tags(server, registry):
    registry.add(IMAGE_A, tags=['rc'])
    registry.add(IMAGE_B, tags=['rc2'])
    with pytest.raises(PreconditionError) as excinfo:
        tag_absent(client_for(server), ref(server, ''), ['rc', 'rc2'], expected_digest=DIGEST_A)
    assert registry.writes() == [] and 'rc2' in excinfo.value.msg


# -- one token per scope, however many tags ------------------------------------------------
def with_token_auth(server, registry):
    """Put a Bearer token service in front of ``registry``; returns the list of token requests."""
    tokens = []

    def handler(request):
        path = request['path']
        if path.startswith('/token'):
            scopes = [p.split('=', 1)[1] for p in path.split('?', 1)[1].split('&') if p.startswith('scope=')]
            tokens.append(scopes)
            return 200, {'Content-Type': 'application/json'}, json.dumps({'token': 'T ' + ' '.join(scopes)}).encode()
        needed = 'delete' if request['method'] == 'DELETE' else (
            'push' if request['method'] in ('PUT', 'POST', 'PATCH') else 'pull')
        granted = request['headers'].get('Authorization', '')
        if not granted.startswith('Bearer T ') or needed not in granted:
            challenge = 'Bearer realm="http://%s/token",service="fake",scope="repository:app:%s"' % (
                server.host, 'pull,push' if needed == 'push' else needed)
            return 401, {'WWW-Authenticate': challenge, 'Content-Type': 'application/json'}, \
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        return server.handle(request)

    server.handler = handler
    return tokens


def test_many_tags_share_one_token_per_scope(server, registry):
    registry.add(IMAGE_A, tags=['build'])
    tokens = with_token_auth(server, registry)
    tags = ['t%d' % i for i in range(20)]
    sync = tag_present(client_for(server), ref(server, ':build'), tags).sync
    assert sync.changed and all(registry.tags[t] == DIGEST_A for t in tags)
    assert len(tokens) == 2, tokens
    assert len([r for r in server.requests if r['method'] == 'PUT']) == 20


def test_a_tag_deleted_meanwhile_is_unchanged(server):
    registry = app_repository(server, delete_mode='oci')
    registry.add(IMAGE_A, tags=['rc'])

    def racing(request):
        if request['method'] == 'DELETE':
            server.manifests.pop(('app', 'rc'), None)  # someone else was faster
        return server.handle(request)
    server.handler = racing
    sync = tag_absent(client_for(server), ref(server, ''), ['rc']).sync
    assert not sync.changed and registry.writes() == ['DELETE /v2/app/manifests/rc']
