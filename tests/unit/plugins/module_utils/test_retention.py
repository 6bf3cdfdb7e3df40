# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prune (plan rules, ages, references, execution) and delete against the fake registry on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    InvalidInputError,
    RegistryHTTPError,
    UnsupportedError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import OCI_MANIFEST
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._retention import (
    PruneOptions,
    delete_manifest,
    parse_age,
    parse_created,
    prune,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import PreconditionError, tag_absent
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for, registry_error

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
OLD = '2026-01-01T00:00:00Z'                   # five months before NOW
NEW = '2026-05-30T12:00:00.123456789+02:00'    # two days before NOW


def push(server, tag, name, created=None, platform=('linux', 'amd64'), repo='app', extra=None):
    """An OCI image whose one layer is ``name``, with ``created`` in its config; its digest."""
    config = {'os': platform[0], 'architecture': platform[1], 'rootfs': {'type': 'layers', 'diff_ids': []}}
    if created:
        config['created'] = created
    raw_config = json.dumps(config).encode()
    document = {'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                           'digest': server.add_blob(raw_config, repo), 'size': len(raw_config)},
                'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip',
                            'digest': server.add_blob(name.encode(), repo), 'size': len(name)}]}
    document.update(extra or {})
    return server.add_manifest(repo, tag, json.dumps(document).encode(), OCI_MANIFEST)


def tag(server, digest, *tags, repo='app'):
    media_type, data = server.manifests[(repo, digest)]
    for name in tags:
        server.manifests[(repo, name)] = (media_type, data)


def signature(server, subject, repo='app'):
    """A cosign-style signature manifest under ``sha256-<hex>.sig``; its digest."""
    return push(server, 'sha256-%s.sig' % subject.split(':', 1)[1], 'sig of ' + subject, repo=repo)


def options(**keep_and_more):
    keep = {k: keep_and_more.pop(k) for k in ('semver_latest', 'patterns', 'newer_than', 'tags') if k in keep_and_more}
    return PruneOptions.from_params(keep, **keep_and_more)


def run_prune(server, check_mode=False, **opts):
    ctx = RunContext(check_mode=check_mode, diff_mode=True)
    reference = ImageReference.parse('%s/app' % server.host)
    return prune(client_for(server), reference, options(**opts), ctx=ctx, now=NOW).to_result()


def plan_of(result):
    return {e['tag']: (e['action'], e['rule']) for e in result['plan']}


# -- options -------------------------------------------------------------------------
@pytest.mark.parametrize('text, seconds', [('30d', 30 * 86400), ('12h', 43200), ('2w', 1209600), ('1d12h', 129600),
                                           ('90m', 5400), (' 45s ', 45)])
def test_ages(text, seconds):
    assert parse_age(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize('text', ['30', 'd', '30x', '30 days', '-1d', '0d', '', '1.5d', 30])
def test_a_malformed_age_is_a_clear_error(text):
    with pytest.raises(InvalidInputError) as excinfo:
        parse_age(text)
    assert 'keep.newer_than' in excinfo.value.msg


def test_created_dates():
    assert parse_created(NEW) == datetime(2026, 5, 30, 10, 0, 0, tzinfo=timezone.utc)
    assert parse_created('1970-01-01T00:00:00Z') == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert parse_created('yesterday') is None and parse_created(None) is None and parse_created('2026-13-01T00:00:00Z') is None


@pytest.mark.parametrize('opts, words', [
    ({'patterns': ['^(stable']}, ['keep.patterns', "'^(stable'", 'does not compile']),
    ({'candidates': '(build', 'tags': ['x']}, ['candidates', 'does not compile']),
    ({'newer_than': '30 days'}, ['keep.newer_than']),
    ({}, ['keep keeps nothing', 'force: true', 'nothing was deleted']),
    ({'candidates': '.*', 'semver_latest': -1}, ['semver_latest']),
    ({'tags': ['x'], 'referrers': True}, ['referrers: true needs delete: manifests']),
])
def test_bad_input_fails_before_any_request(server, opts, words):
    push(server, 'build-1', 'a', OLD)
    with pytest.raises(InvalidInputError) as excinfo:
        run_prune(server, **opts)
    assert all(word in excinfo.value.msg for word in words), excinfo.value.msg
    assert server.requests == []


def test_keep_that_keeps_nothing_while_every_tag_is_a_candidate_fails_unless_forced(server):
    push(server, 'build-1', 'a', OLD)
    push(server, 'build-2', 'b', OLD)
    with pytest.raises(InvalidInputError) as excinfo:
        run_prune(server, candidates='^build-', patterns=['^stable$'], newer_than='30d')
    assert 'keeps none of the 2 tags' in excinfo.value.msg and 'nothing was deleted' in excinfo.value.msg
    assert server.repository('app').writes() == [] and len(server.tags('app')) == 2
    result = run_prune(server, candidates='^build-', patterns=['^stable$'], force=True)
    assert result['deleted_tags'] == ['build-1', 'build-2'] and server.tags('app') == {}


# -- the plan ------------------------------------------------------------------------
def repository_with_rules(server):
    """Tags decided by every rule; returns their digests."""
    digests = {'old': push(server, 'build-1', 'old', OLD), 'new': push(server, 'build-2', 'new', NEW),
               'release': push(server, '1.0.0', 'release', OLD)}
    tag(server, digests['release'], 'build-3')          # a build promoted to a release: shared digest
    digests['pr'] = push(server, 'pr-7', 'pr', OLD)
    for version in ('1.1.0', '1.2.0', 'v2.0.0-rc.1'):
        digests[version] = push(server, version, version, None if version == '1.1.0' else OLD)
    digests['stable'] = push(server, 'stable', 'stable', OLD)
    digests['prod'] = push(server, 'prod-x', 'prod', OLD)
    digests['dev'] = push(server, 'dev', 'dev', OLD)
    return digests


RULES = {'semver_latest': 2, 'patterns': ['^stable$'], 'newer_than': '30d', 'tags': ['prod-x'],
         'candidates': '^(build|pr)-|^1\\.'}


def test_every_tag_is_decided_by_the_first_rule_that_applies(server):
    repository_with_rules(server)
    result = run_prune(server, check_mode=True, **RULES)
    assert plan_of(result) == {
        '1.0.0': ('delete', 'candidate'), '1.1.0': ('keep', 'newer_than: no created date'),
        '1.2.0': ('keep', 'semver_latest'), 'build-1': ('delete', 'candidate'), 'build-2': ('keep', 'newer_than'),
        'build-3': ('delete', 'candidate'), 'dev': ('keep', 'not a candidate'), 'pr-7': ('delete', 'candidate'),
        'prod-x': ('keep', 'tags'), 'stable': ('keep', 'patterns: ^stable$'), 'v2.0.0-rc.1': ('keep', 'semver_latest')}
    created = {e['tag']: e.get('created') for e in result['plan']}
    assert created['build-2'] == '2026-05-30T10:00:00Z' and created['build-1'] == OLD and 'created' not in result['plan'][2]


def test_1_1_0_without_created_is_kept_and_the_rest_are_deleted(server):
    digests = repository_with_rules(server)
    push(server, '1.1.0', '1.1.0b', OLD)  # now with a date: old, so a candidate
    result = run_prune(server, **RULES)
    assert result['deleted_tags'] == ['1.0.0', '1.1.0', 'build-1', 'build-3', 'pr-7']
    assert result['deleted_manifests'] == [] and result['changed']
    assert sorted(server.tags('app')) == ['1.2.0', 'build-2', 'dev', 'prod-x', 'stable', 'v2.0.0-rc.1']
    assert digests['release'] in server.repository('app').manifests, 'delete: tags never deletes a manifest'


def test_requests_one_list_one_head_per_tag_and_one_config_per_age_dependent_digest(server):
    repository_with_rules(server)
    result = run_prune(server, check_mode=True, **RULES)
    log = server.repository('app').log
    by_age = [e['tag'] for e in result['plan'] if e['rule'] in ('candidate', 'newer_than', 'newer_than: no created date')]
    assert sorted(by_age) == ['1.0.0', '1.1.0', 'build-1', 'build-2', 'build-3', 'pr-7']
    assert log.count('GET /v2/app/tags/list') == 1
    heads = sorted(line.rsplit('/', 1)[1] for line in log if line.startswith('HEAD /v2/app/manifests/'))
    assert heads == ['1.2.0', 'dev', 'prod-x', 'stable', 'v2.0.0-rc.1']
    gets = sorted(line.rsplit('/', 1)[1] for line in log if line.startswith('GET /v2/app/manifests/'))
    assert gets == sorted(by_age)
    # build-3 shares 1.0.0's digest: one config for both; 1.1.0's config has no date but is read.
    assert len([line for line in log if line.startswith('GET /v2/app/blobs/')]) == 5
    assert [line for line in log if line.startswith('DELETE')] == [
        line for line in log if line.startswith('DELETE /v2/app/manifests/sha256:')] and len(
        [line for line in log if line.startswith('DELETE')]) == 1, 'the only write is the deletion probe'
    assert len(log) == 1 + 5 + 6 + 5 + 1


def test_check_mode_plan_is_the_real_plan_and_a_second_run_is_unchanged(server):
    digests = repository_with_rules(server)
    before = server.tags('app')
    checked = run_prune(server, check_mode=True, **RULES)
    assert server.tags('app') == before
    real = run_prune(server, **RULES)
    assert real == checked
    assert set(before) - set(server.tags('app')) == set(real['deleted_tags'])
    assert real['diff']['after'] == server.tags('app')
    assert server.tags('app')['build-2'] == digests['new']
    for check_mode in (True, False):
        again = run_prune(server, check_mode=check_mode, **RULES)
        assert not again['changed'] and again['deleted_tags'] == [] and again['diff']['before'] == again['diff']['after']


def test_deleting_a_tag_keeps_the_other_tags_of_its_image(server):
    shared = push(server, 'build-1', 'shared', OLD)
    tag(server, shared, 'stable')
    result = run_prune(server, patterns=['^stable$'])
    assert result['deleted_tags'] == ['build-1'] and server.tags('app') == {'stable': shared}
    assert shared in server.repository('app').manifests


@pytest.mark.parametrize('mode', ['oci', 'distribution', 'tag-delete-404'])
def test_tags_go_however_the_registry_deletes_them(server, mode):
    server.configure(delete_mode=mode)
    keep = push(server, 'keep', 'k', OLD)
    for index in range(5):
        push(server, 'build-%d' % index, 'b%d' % index, OLD)
    result = run_prune(server, tags=['keep'])
    assert len(result['deleted_tags']) == 5 and server.tags('app') == {'keep': keep}


# -- delete: manifests -----------------------------------------------------------------
def multi_arch(server, tag_name):
    """A tagged index over two untagged children; ``(index digest, [child digests])``."""
    children = [push(server, None, 'child-%s-%s' % (tag_name, arch), OLD, platform=('linux', arch))
                for arch in ('amd64', 'arm64')]
    return server.add_index('app', tag_name, [(d, ('linux', a, None)) for d, a in zip(children, ('amd64', 'arm64'))]), \
        children


def test_untagged_children_of_a_kept_index_survive_a_manifest_prune(server):
    index, children = multi_arch(server, 'v1')
    tag(server, children[0], 'build-amd64')              # a build tag on a child of the kept index
    other = push(server, 'build-9', 'other', OLD)
    old_index, old_children = multi_arch(server, 'build-idx')
    checked = run_prune(server, check_mode=True, tags=['v1'], delete='manifests')
    real = run_prune(server, tags=['v1'], delete='manifests')
    assert real == checked
    entries = {e['tag']: e for e in real['plan']}
    assert entries['build-amd64']['manifest'] == 'keep'
    assert entries['build-amd64']['manifest_rule'] == 'listed by the kept index %s' % index
    assert entries['build-9']['manifest'] == 'delete' and entries['build-idx']['manifest'] == 'delete'
    assert sorted(real['deleted_manifests']) == sorted([other, old_index])
    stored = server.repository('app').manifests
    assert index in stored and all(child in stored for child in children)
    assert other not in stored and old_index not in stored
    assert all(child in stored for child in old_children), 'children of a deleted index are left for GC'
    assert server.tags('app') == {'v1': index}
    assert not run_prune(server, tags=['v1'], delete='manifests')['changed']


def test_a_digest_a_kept_tag_shares_loses_only_its_other_tag(server):
    shared = push(server, 'build-1', 'shared', OLD)
    tag(server, shared, 'stable')
    result = run_prune(server, patterns=['^stable$'], delete='manifests')
    assert result['deleted_tags'] == ['build-1'] and result['deleted_manifests'] == []
    assert 'manifest' not in result['plan'][0], 'a tag whose digest stays is not a manifest decision'
    assert server.tags('app') == {'stable': shared}


def test_signatures_follow_their_image(server):
    kept = push(server, 'stable', 'kept', OLD)
    kept_sig = signature(server, kept)
    gone = push(server, 'build-1', 'gone', OLD)
    gone_sig = signature(server, gone)
    gone_sig_tag = 'sha256-%s.sig' % gone.split(':', 1)[1]
    # delete: tags and delete: manifests without referrers keep every signature (and, with manifests, the signed image).
    for delete in ('tags', 'manifests'):
        plan = plan_of(run_prune(server, check_mode=True, patterns=['^stable$'], delete=delete))
        assert plan['sha256-%s.sig' % kept.split(':', 1)[1]] == ('keep', 'referrer of a kept image')
        assert plan[gone_sig_tag] == ('keep', 'referrer of a manifest that stays')
    result = run_prune(server, check_mode=True, patterns=['^stable$'], delete='manifests')
    assert result['plan'][0]['manifest_rule'] == 'it has referrers (signatures, attestations) and referrers is false'
    checked = run_prune(server, check_mode=True, patterns=['^stable$'], delete='manifests', referrers=True)
    real = run_prune(server, patterns=['^stable$'], delete='manifests', referrers=True)
    assert real == checked
    assert plan_of(real)[gone_sig_tag] == ('delete', 'referrer of the deleted manifest %s' % gone)
    assert real['deleted_tags'] == ['build-1', gone_sig_tag]
    assert real['deleted_manifests'] == [gone_sig, gone]
    stored = server.repository('app').manifests
    assert kept in stored and kept_sig in stored and gone not in stored and gone_sig not in stored


def test_the_subject_of_a_kept_referrer_stays(server):
    server.configure(referrers_api=True)
    subject = push(server, 'build-1', 'subject', OLD)
    sbom = push(server, 'sbom-1', 'sbom', OLD, extra={'subject': {
        'mediaType': OCI_MANIFEST, 'digest': subject, 'size': len(server.manifests[('app', subject)][1])}})
    result = run_prune(server, patterns=['^sbom-'], delete='manifests', referrers=True)
    assert result['plan'][0]['manifest'] == 'keep'
    assert result['plan'][0]['manifest_rule'] == 'the subject of the kept referrer %s' % sbom
    assert result['deleted_tags'] == ['build-1'] and result['deleted_manifests'] == []
    assert subject in server.repository('app').manifests


# -- deletion disabled ------------------------------------------------------------------
@pytest.mark.parametrize('check_mode', [True, False])
def test_deletion_disabled_fails_before_the_first_delete(server, check_mode):
    server.configure(delete_mode='disabled')
    push(server, 'build-1', 'a', OLD)
    push(server, 'stable', 'b', OLD)
    with pytest.raises(UnsupportedError) as excinfo:
        run_prune(server, check_mode=check_mode, patterns=['^stable$'], delete='manifests')
    assert 'deletion is disabled' in excinfo.value.msg and 'so nothing can be pruned' in excinfo.value.msg
    assert 'Nothing was changed' in excinfo.value.msg
    assert len(server.tags('app')) == 2
    assert len(server.repository('app').writes()) == 1, 'only the probe'


def test_a_plan_that_deletes_nothing_sends_no_probe(server):
    server.configure(delete_mode='disabled')
    push(server, 'stable', 'b', OLD)
    result = run_prune(server, patterns=['^stable$'])
    assert not result['changed'] and server.repository('app').writes() == []


# -- tag state=absent in check mode: the probe closes its blind spot --------------------
def test_tag_absent_in_check_mode_sees_disabled_deletion(server):
    server.configure(delete_mode='disabled')
    push(server, 'rc', 'a', OLD)
    reference = ImageReference.parse('%s/app' % server.host)
    with pytest.raises(UnsupportedError) as excinfo:
        tag_absent(client_for(server), reference, ['rc'], ctx=RunContext(check_mode=True))
    assert excinfo.value.msg.startswith('The registry %s does not allow deleting manifests (HTTP 405 UNSUPPORTED)'
                                        % server.host)
    assert 'so the tag cannot be removed. Nothing was changed' in excinfo.value.msg
    assert 'rc' in server.tags('app')


def test_tag_absent_in_check_mode_probes_only_when_it_would_delete(server):
    push(server, 'rc', 'a', OLD)
    reference = ImageReference.parse('%s/app' % server.host)
    client = client_for(server)
    assert not tag_absent(client, reference, ['gone'], ctx=RunContext(check_mode=True)).sync.changed
    assert server.repository('app').writes() == []
    assert tag_absent(client, reference, ['rc'], ctx=RunContext(check_mode=True)).sync.changed
    writes = server.repository('app').writes()
    assert len(writes) == 1 and writes[0].startswith('DELETE /v2/app/manifests/sha256:') and 'rc' in server.tags('app')


# -- delete ------------------------------------------------------------------------------
def run_delete(server, rest, force=False, check_mode=False):
    reference = ImageReference.parse('%s/app%s' % (server.host, rest))
    return delete_manifest(client_for(server), reference, force=force,
                           ctx=RunContext(check_mode=check_mode, diff_mode=True)).to_result()


def test_delete_refuses_while_other_tags_point_at_the_digest_then_forces(server):
    digest = push(server, 'rc', 'a', OLD)
    tag(server, digest, 'latest', 'rc2')
    with pytest.raises(PreconditionError) as excinfo:
        run_delete(server, ':rc')
    assert 'latest, rc2' in excinfo.value.msg and 'nothing was deleted' in excinfo.value.msg
    assert excinfo.value.details['tags'] == ['latest', 'rc', 'rc2']
    assert server.repository('app').writes() == []
    checked = run_delete(server, ':rc', force=True, check_mode=True)
    assert len(server.tags('app')) == 3
    result = run_delete(server, ':rc', force=True)
    assert result == checked
    assert result['deleted'] == digest and result['digest'] == digest and result['tags'] == ['latest', 'rc', 'rc2']
    header = '%s/app manifests' % server.host
    assert result['diff'] == {'before': {digest: ['latest', 'rc', 'rc2']}, 'after': {},
                              'before_header': header, 'after_header': header}
    assert digest not in server.repository('app').manifests and server.tags('app') == {}


def test_delete_refuses_a_child_of_a_tagged_index(server):
    index, children = multi_arch(server, 'v1')
    with pytest.raises(PreconditionError) as excinfo:
        run_delete(server, '@' + children[0])
    assert 'the index %s (tag v1)' % index in excinfo.value.msg
    assert excinfo.value.details['indexes'] == [{'digest': index, 'tags': ['v1']}]
    assert children[0] in server.repository('app').manifests


def test_delete_by_tag_alone_and_what_is_not_there(server):
    digest = push(server, 'pr-7', 'a', OLD)
    push(server, 'stable', 'b', OLD)
    result = run_delete(server, ':pr-7')
    assert result['changed'] and result['deleted'] == digest and result['tags'] == ['pr-7']
    assert sorted(server.tags('app')) == ['stable']
    for rest in (':pr-7', '@' + digest):
        again = run_delete(server, rest)
        assert not again['changed'] and again['deleted'] is None and again['digest'] is None
        assert again['diff']['before'] == again['diff']['after'] == {}


@pytest.mark.parametrize('check_mode', [True, False])
def test_delete_with_deletion_disabled_says_so(server, check_mode):
    server.configure(delete_mode='disabled')
    digest = push(server, 'pr-7', 'a', OLD)
    with pytest.raises(UnsupportedError) as excinfo:
        run_delete(server, '@' + digest, force=True, check_mode=check_mode)
    assert 'deletion is disabled' in excinfo.value.msg and 'so the manifest cannot be deleted' in excinfo.value.msg
    assert digest in server.repository('app').manifests


def test_a_failed_deletion_stops_the_run_and_says_what_was_done(server):
    server.configure(delete_mode='oci')
    for index in (1, 2, 3):
        push(server, 'build-%d' % index, 'b%d' % index, OLD)
    push(server, 'stable', 's', OLD)

    def failing(request):
        if request['method'] == 'DELETE' and request['path'].endswith('/build-2'):
            return registry_error(500, 'UNKNOWN')
        return server.handle(request)
    server.handler = failing
    with pytest.raises(RegistryHTTPError) as excinfo:
        run_prune(server, patterns=['^stable$'])
    assert excinfo.value.msg.startswith('Could not delete build-2 of %s/app: ' % server.host)
    assert excinfo.value.msg.endswith('Deleted before: build-1')
    assert excinfo.value.details['deleted_tags'] == ['build-1'] and excinfo.value.details['failed'] == 'build-2'
    assert sorted(server.tags('app')) == ['build-2', 'build-3', 'stable']
