# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OCI 1.1 referrers: discovery (API pages, filter, fallback index, cosign tags) and writing (put_referrer, attach)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import OCI_INDEX, OCI_MANIFEST
from ansible_collections.imagelayers.registry.plugins.module_utils._referrers import (
    MAX_REFERRER_PAGES,
    attach,
    cosign_tags,
    discover,
    fallback_tag,
    put_referrer,
)
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import client_for, digest_of

SIGNATURE = 'application/vnd.example.signature'
SBOM = 'application/vnd.example.sbom'
SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
EMPTY = {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': digest_of(b'{}'), 'size': 2}


def artifact(registry, subject, artifact_type, payload, annotations=None, repository='app'):
    """The bytes of an OCI artifact manifest whose subject is the image ``subject`` (its blobs stored)."""
    registry.add_blob(b'{}', repository)
    layer = registry.add_blob(payload, repository)
    media_type, data = registry.manifests[(repository, subject)]
    document = {'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'artifactType': artifact_type, 'config': EMPTY,
                'layers': [{'mediaType': 'application/octet-stream', 'digest': layer, 'size': len(payload)}],
                'subject': {'mediaType': media_type, 'digest': subject, 'size': len(data)}}
    if annotations:
        document['annotations'] = annotations
    return json.dumps(document).encode()


def image(registry, repository='app'):
    return registry.add_image(repository, '1', [b'layer'])[0]


def paths(registry, method=None):
    return [r['path'] for r in registry.requests if method is None or r['method'] == method]


def test_tag_names():
    digest = 'sha256:' + 'a' * 64
    assert fallback_tag(digest) == 'sha256-' + 'a' * 64
    assert cosign_tags(digest) == ['sha256-%s.%s' % ('a' * 64, suffix) for suffix in ('sig', 'att', 'sbom')]


def test_every_api_page_is_read_and_the_cosign_tags_looked_up(registry):
    registry.configure(referrers_api=True, referrers_page_size=2)
    subject = image(registry)
    pushed = [registry.add_manifest('app', None, artifact(registry, subject, SIGNATURE, b'sig %d' % n,
                                                          annotations={'n': str(n)}), OCI_MANIFEST)
              for n in range(5)]
    found = discover(client_for(registry), 'app', subject)
    assert sorted(r.digest for r in found) == sorted(pushed)
    assert {r.source for r in found} == {'api'} and {r.artifact_type for r in found} == {SIGNATURE}
    assert sorted(r.annotations['n'] for r in found) == ['0', '1', '2', '3', '4']
    listed = [p for p in paths(registry, 'GET') if '/referrers/' in p]
    assert len(listed) == 3  # five referrers, two a page
    assert [p.rsplit('/', 1)[1] for p in paths(registry, 'GET') if '/manifests/' in p] == cosign_tags(subject)


@pytest.mark.parametrize('filtering', [True, False])
def test_one_artifact_type_is_asked_of_the_registry_and_checked_when_it_did_not_filter(registry, filtering):
    registry.configure(referrers_api=True, referrers_filter=filtering)
    subject = image(registry)
    signature = registry.add_manifest('app', None, artifact(registry, subject, SIGNATURE, b's'), OCI_MANIFEST)
    registry.add_manifest('app', None, artifact(registry, subject, SBOM, b'b'), OCI_MANIFEST)
    found = discover(client_for(registry), 'app', subject, artifact_types=[SIGNATURE], include_tags=False)
    assert [r.digest for r in found] == [signature]
    assert paths(registry) == ['/v2/app/referrers/%s?artifactType=application%%2Fvnd.example.signature' % subject]


def test_a_next_link_to_another_host_is_refused(registry, other_server):
    subject = 'sha256:' + 'c' * 64
    hostile = 'http://%s/v2/app/referrers/%s?page=2' % (other_server.host, subject)
    registry.handler = lambda request: (200, {'Content-Type': OCI_INDEX, 'Link': '<%s>; rel="next"' % hostile},
                                        json.dumps({'schemaVersion': 2, 'manifests': []}).encode())
    with pytest.raises(IntegrityError) as excinfo:
        discover(client_for(registry), 'app', subject)
    assert 'links its next page to another host (%s)' % other_server.host in excinfo.value.msg
    assert other_server.requests == []


def test_a_listing_without_end_stops_at_the_page_bound(registry):
    subject = 'sha256:' + 'c' * 64
    count = iter(range(10 ** 6))

    def endless(request):
        link = '</v2/app/referrers/%s?page=%d>; rel="next"' % (subject, next(count))
        return 200, {'Content-Type': OCI_INDEX, 'Link': link}, b'{"schemaVersion": 2, "manifests": []}'
    registry.handler = endless
    with pytest.raises(IntegrityError) as excinfo:
        discover(client_for(registry), 'app', subject)
    assert 'more than %d pages' % MAX_REFERRER_PAGES in excinfo.value.msg
    assert len(registry.requests) == MAX_REFERRER_PAGES


def test_an_entry_that_is_no_descriptor_is_refused(registry):
    subject = 'sha256:' + 'c' * 64
    registry.handler = lambda request: (200, {'Content-Type': OCI_INDEX},
                                        json.dumps({'schemaVersion': 2, 'manifests': [{'digest': 'x'}]}).encode())
    with pytest.raises(IntegrityError) as excinfo:
        discover(client_for(registry), 'app', subject)
    assert 'not a descriptor' in excinfo.value.msg


def test_without_the_api_the_fallback_index_then_the_cosign_tags(registry):
    subject = image(registry)
    client = client_for(registry)
    assert discover(client, 'app', subject) == []  # no API, no index tag, no cosign tag: none, no error
    raw = artifact(registry, subject, SIGNATURE, b'sig')
    digest, changed = put_referrer(client, 'app', raw, OCI_MANIFEST)
    cosign = registry.add_image('app', cosign_tags(subject)[0], [b'simple signing payload'])[0]
    found = discover(client, 'app', subject)
    assert [(r.digest, r.source, r.artifact_type, r.tag) for r in found] == [
        (digest, 'fallback', SIGNATURE, None),
        (cosign, 'tag', 'application/vnd.oci.image.layer.v1.tar+gzip', cosign_tags(subject)[0])]


def test_a_cosign_signature_tag_is_typed_by_its_layers_and_found_once_beside_the_api(registry):
    registry.configure(referrers_api=True)
    subject = image(registry)
    both = artifact(registry, subject, SIGNATURE, b'listed and tagged')
    listed = registry.add_manifest('app', cosign_tags(subject)[1], both, OCI_MANIFEST)  # .att tag, and a referrer
    payload = registry.add_blob(b'{"critical": {}}', 'app')
    config = registry.add_blob(b'{"architecture": "", "os": ""}', 'app')
    sig = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                      'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': config,
                                 'size': 30},
                      'layers': [{'mediaType': SIMPLE_SIGNING, 'digest': payload, 'size': 16,
                                  'annotations': {'dev.cosignproject.cosign/signature': 'MEUC'}}]}).encode()
    signed = registry.add_manifest('app', cosign_tags(subject)[0], sig, OCI_MANIFEST)
    found = discover(client_for(registry), 'app', subject)
    assert [(r.digest, r.source, r.artifact_type) for r in found] == [
        (listed, 'api', SIGNATURE), (signed, 'tag', SIMPLE_SIGNING)]
    assert found[1].to_dict()['tag'] == cosign_tags(subject)[0]
    assert found[0].tag == cosign_tags(subject)[1]  # listed and tagged: found once, with its tag


def test_put_referrer_without_the_api_writes_the_fallback_index_once(registry):
    subject = image(registry)
    client = client_for(registry)
    raw = artifact(registry, subject, SIGNATURE, b'sig', annotations={'by': 'ci'})
    digest, changed = put_referrer(client, 'app', raw, OCI_MANIFEST)
    assert changed and digest == digest_of(raw)
    assert paths(registry, 'PUT') == ['/v2/app/manifests/%s' % digest, '/v2/app/manifests/%s' % fallback_tag(subject)]
    index = json.loads(registry.manifests[('app', fallback_tag(subject))][1])
    assert index['mediaType'] == OCI_INDEX and index['schemaVersion'] == 2
    # The descriptor carries the manifest's artifactType and annotations, as the referrers API would list it.
    assert index['manifests'] == [{'mediaType': OCI_MANIFEST, 'digest': digest, 'size': len(raw),
                                   'artifactType': SIGNATURE, 'annotations': {'by': 'ci'}}]

    before = len(registry.requests)
    assert put_referrer(client, 'app', raw, OCI_MANIFEST) == (digest, False)
    # Reads only: the manifest's HEAD, the API (absent), the fallback index.
    assert paths(registry)[before:] == ['/v2/app/manifests/%s' % digest, '/v2/app/referrers/%s' % subject,
                                        '/v2/app/manifests/%s' % fallback_tag(subject)]


def test_put_referrer_to_a_registry_with_the_api_writes_no_index(registry):
    registry.configure(referrers_api=True)
    subject = image(registry)
    client = client_for(registry)
    raw = artifact(registry, subject, SIGNATURE, b'sig')
    digest, changed = put_referrer(client, 'app', raw, OCI_MANIFEST)
    assert changed and paths(registry, 'PUT') == ['/v2/app/manifests/%s' % digest]
    assert ('app', fallback_tag(subject)) not in registry.manifests
    assert put_referrer(client, 'app', raw, OCI_MANIFEST) == (digest, False)
    assert len(paths(registry, 'PUT')) == 1
    assert [r.digest for r in discover(client, 'app', subject)] == [digest]


def test_a_writer_whose_put_replaced_ours_loses_no_entry(registry):
    subject = image(registry)
    client = client_for(registry)
    mine = {'mediaType': OCI_MANIFEST, 'digest': 'sha256:' + '1' * 64, 'size': 10, 'artifactType': SIGNATURE}
    theirs = {'mediaType': OCI_MANIFEST, 'digest': 'sha256:' + '2' * 64, 'size': 20, 'artifactType': SBOM}
    stale = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [theirs]}).encode()
    index_path = '/v2/app/manifests/%s' % fallback_tag(subject)
    raced = []

    def racing(request):
        answer = registry.handle(request)
        if request['method'] == 'PUT' and request['path'] == index_path and not raced:
            # Another writer read the index before our PUT and writes its own right after it.
            raced.append(True)
            registry.add_manifest('app', fallback_tag(subject), stale, OCI_INDEX)
        return answer
    registry.handler = racing
    assert attach(client, 'app', subject, mine) is True
    index = json.loads(registry.manifests[('app', fallback_tag(subject))][1])
    assert [entry['digest'] for entry in index['manifests']] == [theirs['digest'], mine['digest']]
    assert paths(registry, 'PUT') == [index_path, index_path]  # one retry
    assert attach(client, 'app', subject, mine) is False and len(paths(registry, 'PUT')) == 2


def test_an_index_written_between_our_read_and_our_put_is_merged_not_overwritten(registry):
    subject = image(registry)
    client = client_for(registry)
    mine = {'mediaType': OCI_MANIFEST, 'digest': 'sha256:' + '1' * 64, 'size': 10, 'artifactType': SIGNATURE}
    theirs = {'mediaType': OCI_MANIFEST, 'digest': 'sha256:' + '2' * 64, 'size': 20, 'artifactType': SBOM}
    landed = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [theirs]}).encode()
    index_path = '/v2/app/manifests/%s' % fallback_tag(subject)
    raced = []

    def racing(request):
        answer = registry.handle(request)
        if request['method'] == 'GET' and request['path'] == index_path and not raced:
            # Another writer's whole attach lands right after our read: our PUT must not drop it.
            raced.append(True)
            registry.add_manifest('app', fallback_tag(subject), landed, OCI_INDEX)
        return answer
    registry.handler = racing
    assert attach(client, 'app', subject, mine) is True
    index = json.loads(registry.manifests[('app', fallback_tag(subject))][1])
    assert [entry['digest'] for entry in index['manifests']] == [theirs['digest'], mine['digest']]
    assert paths(registry, 'PUT') == [index_path]


def test_a_fallback_tag_that_is_no_index_is_refused(registry):
    subject = image(registry)
    registry.add_image('app', fallback_tag(subject), [b'not an index'])
    with pytest.raises(IntegrityError) as excinfo:
        attach(client_for(registry), 'app', subject, {'mediaType': OCI_MANIFEST, 'digest': subject, 'size': 1})
    assert 'not an image index' in excinfo.value.msg
    assert paths(registry, 'PUT') == []


def test_a_manifest_without_subject_is_not_put_as_a_referrer(registry):
    raw = registry.manifests[('app', image(registry))][1]
    before = len(registry.requests)
    with pytest.raises(InvalidInputError) as excinfo:
        put_referrer(client_for(registry), 'app', raw, OCI_MANIFEST)
    assert 'has no subject' in excinfo.value.msg
    assert len(registry.requests) == before
