# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""put_tags / tag_present / tag_absent against an in-memory registry served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

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
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.config import ConnectionConfig
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import HTTPSession
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    EMPTY_DIGEST,
    PLACEHOLDER_ANNOTATION,
    PreconditionError,
    TagConflictError,
    put_tags,
    tag_absent,
    tag_present,
)


def sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


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


class FakeRegistry:
    """Manifests, tags and blobs of one repository, with the deletion behaviour of a chosen registry.

    delete_mode: 'oci' (tag DELETE works), 'distribution' (tag DELETE: 400 DIGEST_INVALID),
    'no-tag-delete' (tag DELETE: 405 UNSUPPORTED, digest DELETE works), 'tag-delete-404' (a tag DELETE
    is not routed: 404), 'disabled' (every DELETE: 405).
    """

    def __init__(self, server, delete_mode='distribution', immutable=False, digest_header=True):
        self.server = server
        self.manifests = {}   # digest -> (raw, media_type)
        self.tags = {}        # tag -> digest
        self.blobs = {}
        self.delete_mode = delete_mode
        self.immutable = immutable
        self.digest_header = digest_header
        self.put_digest_override = None
        self.fail_digest_delete = False
        server.handler = self.handle

    def add(self, raw, media_type=DOCKER_MANIFEST, tags=()):
        digest = sha(raw)
        self.manifests[digest] = (raw, media_type)
        for tag in tags:
            self.tags[tag] = digest
        return digest

    @property
    def log(self):
        return ['%s %s' % (r['method'], r['path'].split('?', 1)[0]) for r in self.server.requests]

    def writes(self):
        return [line for line in self.log if not line.startswith(('GET', 'HEAD'))]

    @staticmethod
    def error(status, code):
        body = json.dumps({'errors': [{'code': code, 'message': code.lower()}]}).encode()
        return status, {'Content-Type': 'application/json'}, body

    def handle(self, request):
        method, path = request['method'], request['path'].split('?', 1)[0]
        match = re.match(r'^/v2/app/manifests/(.+)$', path)
        if match:
            return self.handle_manifest(method, match.group(1), request)
        match = re.match(r'^/v2/app/blobs/(sha256:[a-f0-9]{64})$', path)
        if match and method == 'HEAD':
            found = match.group(1) in self.blobs
            return (200, {'Content-Length': '2'}, b'') if found else self.error(404, 'BLOB_UNKNOWN')
        if path == '/v2/app/blobs/uploads/' and method == 'POST':
            return 202, {'Location': '/v2/app/blobs/uploads/u1?_state=x'}, b''
        if path == '/v2/app/blobs/uploads/u1' and method == 'PUT':
            digest = request['path'].split('digest=', 1)[1]
            assert sha(request['body']) == digest
            self.blobs[digest] = request['body']
            return 201, {'Docker-Content-Digest': digest}, b''
        return self.error(404, 'NAME_UNKNOWN')

    def handle_manifest(self, method, reference, request):
        digest = reference if reference.startswith('sha256:') else self.tags.get(reference)
        if method in ('GET', 'HEAD'):
            if digest not in self.manifests:
                return self.error(404, 'MANIFEST_UNKNOWN')
            raw, media_type = self.manifests[digest]
            headers = {'Content-Type': media_type}
            if self.digest_header:
                headers['Docker-Content-Digest'] = digest
            if method == 'HEAD':
                headers['Content-Length'] = str(len(raw))
            return 200, headers, raw
        if method == 'PUT':
            if self.immutable and reference in self.tags:
                return self.error(400, 'TAG_INVALID')
            body = request['body']
            stored = self.add(body, request['headers'].get('Content-Type'), tags=() if reference.startswith('sha256:')
                              else (reference,))
            if not self.digest_header:
                return 201, {}, b''
            return 201, {'Docker-Content-Digest': self.put_digest_override or stored}, b''
        if method == 'DELETE':
            if self.delete_mode == 'disabled':
                return self.error(405, 'UNSUPPORTED')
            if not reference.startswith('sha256:'):
                if self.delete_mode == 'distribution':
                    return self.error(400, 'DIGEST_INVALID')
                if self.delete_mode == 'no-tag-delete':
                    return self.error(405, 'UNSUPPORTED')
                if self.delete_mode == 'tag-delete-404':
                    return self.error(404, 'NOT_FOUND')
                if reference not in self.tags:
                    return self.error(404, 'MANIFEST_UNKNOWN')
                del self.tags[reference]
                return 202, {}, b''
            if reference not in self.manifests:
                return self.error(404, 'MANIFEST_UNKNOWN')
            if self.fail_digest_delete:
                return self.error(500, 'UNKNOWN')
            # Deleting a manifest removes every tag pointing at it, as distribution does.
            del self.manifests[reference]
            for tag in [t for t, d in self.tags.items() if d == reference]:
                del self.tags[tag]
            return 202, {}, b''
        return self.error(405, 'UNSUPPORTED')


@pytest.fixture
def registry(server):
    return FakeRegistry(server)


def client_for(server):
    return RegistryClient(HTTPSession(sleep=lambda s: None), server.host, ConnectionConfig(timeout=5, retries=0),
                          loopback=True)


def ref(server, rest):
    return ImageReference.parse('%s/app%s' % (server.host, rest))


def absent(registry, tag):
    return tag not in registry.tags


# -- state=present ---------------------------------------------------------------------
def test_new_tags_are_written_with_one_get_and_one_put_each(server, registry):
    registry.add(IMAGE_A, tags=['build'])
    sync, source = tag_present(client_for(server), ref(server, ':build'), ['1.0', '1', 'latest'])
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
    registry = FakeRegistry(server, immutable=True)
    registry.add(IMAGE_A, tags=['build', '1.0', 'latest'])
    sync, dummy = tag_present(client_for(server), ref(server, ':build'), ['1.0', 'latest'])
    assert not sync.changed
    assert len(registry.log) == 3 and registry.writes() == []
    diff = sync.diff()
    assert diff['before'] == diff['after'] == {'1.0': DIGEST_A, 'latest': DIGEST_A}


def test_only_the_tags_that_differ_are_written(server, registry):
    registry.add(IMAGE_B, tags=['old'])
    registry.add(IMAGE_A, tags=['build', 'same'])
    sync, dummy = tag_present(client_for(server), ref(server, ':build'), ['same', 'old', 'new'])
    assert registry.writes() == ['PUT /v2/app/manifests/old', 'PUT /v2/app/manifests/new'] or \
        sorted(registry.writes()) == ['PUT /v2/app/manifests/new', 'PUT /v2/app/manifests/old']
    assert [(e['tag'], e['before'], e['changed']) for e in sync.results()] == [
        ('same', DIGEST_A, False), ('old', DIGEST_B, True), ('new', None, True)]
    assert registry.tags['old'] == DIGEST_A


def test_check_mode_reports_the_plan_and_writes_nothing(server, registry):
    registry.add(IMAGE_B, tags=['old'])
    registry.add(IMAGE_A, tags=['build'])
    sync, dummy = tag_present(client_for(server), ref(server, ':build'), ['old', 'new'], check_mode=True)
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
    sync, dummy = tag_present(client_for(server), ref(server, ':build'), ['1.0', 'new'], overwrite=False)
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
    sync, source = tag_present(client_for(server), ref(server, '@' + INDEX_DIGEST), ['multi'])
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
    registry = FakeRegistry(server, digest_header=False)
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
    registry.put_digest_override = DIGEST_B
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
    registry = FakeRegistry(server, delete_mode='oci')
    registry.add(IMAGE_A, tags=['rc', 'keep'])
    sync = tag_absent(client_for(server), ref(server, ''), ['rc'])
    assert sync.changed and registry.tags == {'keep': DIGEST_A} and DIGEST_A in registry.manifests
    assert registry.writes() == ['DELETE /v2/app/manifests/rc']


@pytest.mark.parametrize('mode', ['distribution', 'no-tag-delete', 'tag-delete-404'])
def test_without_tag_delete_a_placeholder_is_pushed_and_deleted(server, mode):
    registry = FakeRegistry(server, delete_mode=mode)
    registry.add(IMAGE_A, tags=['rc', 'rc2', 'keep'])
    sync = tag_absent(client_for(server), ref(server, ''), ['rc', 'rc2', 'missing'])
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
    registry = FakeRegistry(server, delete_mode='disabled')
    registry.add(IMAGE_A, tags=['rc', 'keep'])
    with pytest.raises(UnsupportedError) as excinfo:
        tag_absent(client_for(server), ref(server, ''), ['rc'])
    assert 'disabled' in excinfo.value.msg and 'Nothing was changed' in excinfo.value.msg
    assert registry.tags == {'rc': DIGEST_A, 'keep': DIGEST_A}
    assert not [line for line in registry.writes() if not line.startswith('DELETE')]


def test_failed_placeholder_delete_puts_the_tag_back(server):
    registry = FakeRegistry(server, delete_mode='distribution')
    registry.add(IMAGE_A, tags=['rc'])
    registry.fail_digest_delete = True
    with pytest.raises(RegistryHTTPError) as excinfo:
        tag_absent(client_for(server), ref(server, ''), ['rc'])
    assert registry.tags['rc'] == DIGEST_A
    assert 'put back' in excinfo.value.msg
    assert excinfo.value.details['tags'][0]['changed'] is False


def test_absent_tag_is_unchanged_and_check_mode_deletes_nothing(server, registry):
    registry.add(IMAGE_A, tags=['rc'])
    client = client_for(server)
    assert not tag_absent(client, ref(server, ''), ['nope']).changed
    sync = tag_absent(client, ref(server, ''), ['rc', 'nope'], check_mode=True)
    assert sync.changed and sync.diff()['before'] == {'rc': DIGEST_A} and sync.diff()['after'] == {}
    assert registry.writes() == [] and registry.tags == {'rc': DIGEST_A}


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
        return registry.handle(request)

    server.handler = handler
    return tokens


def test_many_tags_share_one_token_per_scope(server, registry):
    registry.add(IMAGE_A, tags=['build'])
    tokens = with_token_auth(server, registry)
    tags = ['t%d' % i for i in range(20)]
    sync, dummy = tag_present(client_for(server), ref(server, ':build'), tags)
    assert sync.changed and all(registry.tags[t] == DIGEST_A for t in tags)
    assert len(tokens) == 2, tokens
    assert len([r for r in server.requests if r['method'] == 'PUT']) == 20


def test_a_tag_deleted_meanwhile_is_unchanged(server):
    registry = FakeRegistry(server, delete_mode='oci')
    registry.add(IMAGE_A, tags=['rc'])
    original = registry.handle_manifest

    def racing(method, reference, request):
        if method == 'DELETE':
            registry.tags.pop('rc', None)  # someone else was faster
        return original(method, reference, request)
    registry.handle_manifest = racing
    sync = tag_absent(client_for(server), ref(server, ''), ['rc'])
    assert not sync.changed and registry.writes() == ['DELETE /v2/app/manifests/rc']
