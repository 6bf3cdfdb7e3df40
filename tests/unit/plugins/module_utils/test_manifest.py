# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    MAX_BLOB_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    Platform,
    history,
    layers_with_diff_ids,
    schema1_details,
    select_platform,
)


def d(n):
    return 'sha256:' + ('%x' % n) * 64


def test_accept_lists_every_manifest_type():
    for media_type in (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED,
                       'application/vnd.docker.distribution.manifest.v1+json'):
        assert media_type in ACCEPT


def test_digest_is_of_the_exact_bytes():
    raw = (b'{"schemaVersion": 2,  "mediaType": "%s", "config": {"digest": "%s", "size": 2}, "layers": []}'
           % (OCI_MANIFEST.encode(), d(9).encode()))
    manifest = Manifest(raw, None)
    assert manifest.digest == 'sha256:' + hashlib.sha256(raw).hexdigest()
    assert manifest.size == len(raw)
    assert manifest.is_image and not manifest.is_index


@pytest.mark.parametrize('document, header, expected', [
    ({'schemaVersion': 2, 'manifests': []}, None, OCI_INDEX),
    ({'schemaVersion': 2, 'config': {'digest': d(9), 'size': 2}, 'layers': []}, None, OCI_MANIFEST),
    ({'schemaVersion': 2, 'config': {'digest': d(9), 'size': 2}, 'layers': []}, DOCKER_MANIFEST + '; charset=utf-8',
     DOCKER_MANIFEST),
    ({'schemaVersion': 2, 'mediaType': DOCKER_LIST, 'manifests': []}, 'text/plain', DOCKER_LIST),
])
def test_media_type(document, header, expected):
    assert Manifest(json.dumps(document).encode(), header).media_type == expected


def test_not_json_is_an_integrity_error():
    with pytest.raises(IntegrityError):
        Manifest(b'<html>', None)


def test_platform_parse_and_match():
    wanted = Platform.parse('linux/arm64')
    assert wanted.matches(Platform('linux', 'arm64', 'v8'))
    assert Platform.parse('linux/arm64/v8').matches(Platform('linux', 'arm64'))
    assert not Platform.parse('linux/arm/v6').matches(Platform('linux', 'arm', 'v7'))
    assert not wanted.matches(Platform('windows', 'arm64'))
    assert str(Platform.parse('LINUX/AMD64')) == 'linux/amd64'
    for bad in ('linux', 'linux/', '/amd64', 'linux/amd64/v1/x', '', None):
        with pytest.raises(InvalidInputError):
            Platform.parse(bad)


def test_select_platform_lists_what_exists():
    index = Manifest(json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
        {'digest': d(1), 'mediaType': OCI_MANIFEST, 'size': 1, 'platform': {'os': 'linux', 'architecture': 'amd64'}},
        {'digest': d(2), 'mediaType': OCI_MANIFEST, 'size': 1,
         'platform': {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'}},
    ]}).encode(), None)
    assert index.select_platform(Platform.parse('linux/arm64'))['digest'] == d(2)
    with pytest.raises(InvalidInputError) as excinfo:
        index.select_platform(Platform.parse('linux/s390x'))
    assert 'linux/amd64, linux/arm64/v8' in excinfo.value.msg


def test_history_pairs_layers_and_skips_empty_layers():
    manifest = Manifest(json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                                    'config': {'digest': d(9), 'size': 10, 'mediaType': 'x'},
                                    'layers': [{'digest': d(1), 'size': 100, 'mediaType': 'l'},
                                               {'digest': d(2), 'size': 200, 'mediaType': 'l'}]}).encode(), None)
    config = {'rootfs': {'diff_ids': [d(3), d(4)]}, 'history': [
        {'created_by': 'ARG SUFFIX', 'empty_layer': True},
        {'created_by': 'RUN one'},
        {'created_by': 'ENV X=1', 'empty_layer': True},
        {'created_by': 'RUN two'},
        {'created_by': 'CMD ["sh"]', 'empty_layer': True},
    ]}
    layers = layers_with_diff_ids(manifest, config)
    assert [layer['diff_id'] for layer in layers] == [d(3), d(4)]
    entries = history(config, layers)
    assert [(e['created_by'], e['layer_digest'], e['size'], e['empty_layer']) for e in entries] == [
        ('ARG SUFFIX', None, 0, True), ('RUN one', d(1), 100, False), ('ENV X=1', None, 0, True),
        ('RUN two', d(2), 200, False), ('CMD ["sh"]', None, 0, True)]


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip('=')


def test_signed_schema1_digest_is_of_the_payload_without_signatures():
    payload = json.dumps({
        'schemaVersion': 1, 'name': 'a/b', 'tag': 'v1', 'architecture': 'amd64',
        'fsLayers': [{'blobSum': d(2)}, {'blobSum': d(1)}],
        'history': [{'v1Compatibility': json.dumps({'id': 'top', 'container_config': {'Cmd': ['/bin/sh', '-c', 'echo top']},
                                                    'Size': 20, 'os': 'linux'})},
                    {'v1Compatibility': json.dumps({'id': 'base', 'Size': 10, 'created': '2020-01-01T00:00:00Z'})}],
    }, indent=3).encode()
    # libtrust keeps the payload up to formatLength and replaces the tail with the signatures.
    format_length = len(payload) - 2
    tail = payload[format_length:]
    protected = _b64(json.dumps({'formatLength': format_length, 'formatTail': _b64(tail)}).encode())
    signed = payload[:format_length] + b',\n   "signatures": [{"protected": "%s", "signature": "x"}]\n}' % (
        protected.encode())
    manifest = Manifest(signed, DOCKER_SCHEMA1_SIGNED)
    assert manifest.is_schema1
    assert manifest.digest == 'sha256:' + hashlib.sha256(payload).hexdigest()
    layers, entries, platform = schema1_details(manifest)
    assert [layer['digest'] for layer in layers] == [d(1), d(2)]
    assert [e['created_by'] for e in entries] == [None, '/bin/sh -c echo top']
    assert str(platform) == 'linux/amd64'


# -- malformed manifests: every field a consumer reads is checked once, when the manifest is parsed ----------
def image_doc(**changes):
    document = {'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': d(9), 'size': 10},
                'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': d(1), 'size': 100}]}
    document.update(changes)
    return document


def index_doc(*entries):
    return {'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': list(entries) or [
        {'mediaType': OCI_MANIFEST, 'digest': d(1), 'size': 500, 'platform': {'os': 'linux', 'architecture': 'amd64'}}]}


def layer(**changes):
    entry = {'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': d(1), 'size': 100}
    entry.update(changes)
    for key in [k for k, v in entry.items() if v is KeyError]:
        del entry[key]
    return entry


def entry(**changes):
    value = {'mediaType': OCI_MANIFEST, 'digest': d(2), 'size': 500, 'platform': {'os': 'linux', 'architecture': 'arm64'}}
    value.update(changes)
    for key in [k for k, v in value.items() if v is KeyError]:
        del value[key]
    return value


MALFORMED = [
    (image_doc(layers=5), 'layers'),
    (image_doc(layers={'digest': d(1)}), 'layers'),
    (image_doc(layers=[5]), 'layers[0]'),
    (image_doc(config=[]), 'config'),
    (image_doc(config='sha256:abc'), 'config'),
    (image_doc(layers=[layer(), layer(size='abc')]), 'layers[1].size'),
    (image_doc(layers=[layer(size=True)]), 'layers[0].size'),
    (image_doc(layers=[layer(size=100.0)]), 'layers[0].size'),
    (image_doc(layers=[layer(size=-1)]), 'layers[0].size'),
    (image_doc(layers=[layer(size=2 ** 40 + 1)]), 'layers[0].size'),
    (image_doc(layers=[layer(size=10 ** 30)]), 'layers[0].size'),
    (image_doc(layers=[layer(size=KeyError)]), 'layers[0].size'),
    (image_doc(layers=[layer(digest=5)]), 'layers[0].digest'),
    (image_doc(layers=[layer(digest=KeyError)]), 'layers[0].digest'),
    (image_doc(layers=[layer(digest='latest')]), 'layers[0].digest'),
    (image_doc(layers=[layer(urls='http://x')]), 'layers[0].urls'),
    (image_doc(layers=[layer(mediaType=7)]), 'layers[0].mediaType'),
    (image_doc(config={'digest': d(9), 'size': '10'}), 'config.size'),
    (image_doc(config={'digest': ['sha256:x'], 'size': 10}), 'config.digest'),
    (index_doc(entry(), entry(size='abc')), 'manifests[1].size'),
    (index_doc(entry(digest=None)), 'manifests[0].digest'),
    (index_doc(entry(platform='linux/amd64')), 'manifests[0].platform'),
    (index_doc(entry(platform={'os': 'linux', 'architecture': 5})), 'manifests[0].platform.architecture'),
    (index_doc(entry(annotations=['a'])), 'manifests[0].annotations'),
    (index_doc(5), 'manifests[0]'),
    ({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': 5}, 'manifests'),
    ({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': {'digest': d(1)}}, 'manifests'),
    ({'schemaVersion': 1, 'architecture': 'amd64', 'fsLayers': 5, 'history': []}, 'fsLayers'),
    ({'schemaVersion': 1, 'architecture': 'amd64', 'fsLayers': [{'blobSum': 7}],
      'history': [{'v1Compatibility': '{}'}]}, 'fsLayers[0].blobSum'),
    ({'schemaVersion': 1, 'architecture': 'amd64', 'fsLayers': [{'blobSum': d(1)}],
      'history': [{'v1Compatibility': 5}]}, 'history[0].v1Compatibility'),
]


@pytest.mark.parametrize('document, field', MALFORMED, ids=[f for dummy, f in MALFORMED])
def test_malformed_manifest_is_an_integrity_error_naming_the_field(document, field):
    raw = json.dumps(document).encode()
    with pytest.raises(IntegrityError) as excinfo:
        Manifest(raw, None)
    error = excinfo.value
    digest = 'sha256:' + hashlib.sha256(raw).hexdigest()
    assert error.details['field'] == field and error.details['manifest_digest'] == digest
    assert ' %s ' % field in error.msg and digest in error.msg
    assert 'Traceback' not in error.msg and "<class" not in error.msg


def test_size_at_the_cap_is_accepted():
    manifest = Manifest(json.dumps(image_doc(layers=[layer(size=MAX_BLOB_SIZE)])).encode(), None)
    assert MAX_BLOB_SIZE == 2 ** 40
    assert manifest.layers()[0]['size'] == MAX_BLOB_SIZE
    assert Manifest(json.dumps(image_doc(layers=[layer(size=0)])).encode(), None).layers()[0]['size'] == 0


@pytest.mark.parametrize('depth', [100, 100000])
def test_deeply_nested_json_is_an_integrity_error(depth):
    raw = b'{"schemaVersion": 2, "annotations": {"x": ' + b'[' * depth + b']' * depth + b'}}'
    with pytest.raises(IntegrityError) as excinfo:
        Manifest(raw, OCI_MANIFEST)
    assert 'nested' in excinfo.value.msg


def test_manifest_digest_not_a_digest_is_an_integrity_error():
    manifest = json.dumps(image_doc(config={'digest': 'sha256:short', 'size': 1})).encode()
    with pytest.raises(IntegrityError) as excinfo:
        Manifest(manifest, None)
    assert excinfo.value.details['field'] == 'config.digest'


# -- platform matching: containers/image's WantedPlatforms order --------------------------------------------
def plat(text):
    parts = text.split('/')
    value = {'os': parts[0], 'architecture': parts[1]}
    if len(parts) > 2:
        value['variant'] = parts[2]
    return value


def entries_for(*platforms):
    return [{'digest': d(i + 1), 'platform': plat(p)} for i, p in enumerate(platforms)]


PICKS = [
    # 32-bit arm: a request for a variant accepts it, then every older variant, then an entry without one.
    ('linux/arm/v8', ('linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7'), 'linux/arm/v7'),
    ('linux/arm/v8', ('linux/arm/v5', 'linux/arm/v6'), 'linux/arm/v6'),
    ('linux/arm/v8', ('linux/arm/v5',), 'linux/arm/v5'),
    ('linux/arm/v8', ('linux/arm/v5', 'linux/arm/v8'), 'linux/arm/v8'),
    ('linux/arm/v7', ('linux/arm/v5', 'linux/arm/v6', 'linux/amd64'), 'linux/arm/v6'),
    ('linux/arm/v7', ('linux/arm', 'linux/arm/v6'), 'linux/arm/v6'),
    ('linux/arm/v7', ('linux/arm64', 'linux/arm'), 'linux/arm'),
    ('linux/arm/v6', ('linux/arm/v7', 'linux/arm/v5'), 'linux/arm/v5'),
    ('linux/arm/v5', ('linux/arm/v6', 'linux/arm/v7'), None),
    # linux/arm without a variant: the entry without one, then the newest variant.
    ('linux/arm', ('linux/arm/v6', 'linux/arm/v7', 'linux/arm'), 'linux/arm'),
    ('linux/arm', ('linux/arm/v6', 'linux/arm/v7'), 'linux/arm/v7'),
    ('linux/arm', ('linux/arm/v5', 'linux/arm/v6'), 'linux/arm/v6'),
    # amd64 microarchitecture levels fall back to plain amd64 (v1 is plain amd64).
    ('linux/amd64/v2', ('linux/arm64', 'linux/amd64'), 'linux/amd64'),
    ('linux/amd64/v3', ('linux/amd64',), 'linux/amd64'),
    ('linux/amd64/v3', ('linux/amd64', 'linux/amd64/v2'), 'linux/amd64/v2'),
    ('linux/amd64/v3', ('linux/amd64', 'linux/amd64/v3'), 'linux/amd64/v3'),
    ('linux/amd64', ('linux/amd64/v3', 'linux/amd64'), 'linux/amd64'),
    ('linux/amd64', ('linux/amd64/v2',), None),
    ('linux/amd64/v1', ('linux/amd64',), 'linux/amd64'),
    ('linux/amd64', ('linux/amd64/v1',), 'linux/amd64/v1'),
    # arm64's only variant is v8: "linux/arm64" and "linux/arm64/v8" accept each other.
    ('linux/arm64', ('linux/arm64/v8',), 'linux/arm64/v8'),
    ('linux/arm64/v8', ('linux/arm64',), 'linux/arm64'),
    ('linux/arm64', ('linux/arm64/v8', 'linux/arm64'), 'linux/arm64'),
    ('linux/arm64/v8', ('linux/arm64', 'linux/arm64/v8'), 'linux/arm64/v8'),
    # Other architectures: exact, then an entry without a variant; never another OS.
    ('linux/riscv64', ('linux/riscv64',), 'linux/riscv64'),
    ('linux/s390x', ('windows/s390x', 'linux/amd64'), None),
    ('linux/ppc64le/power9', ('linux/ppc64le',), 'linux/ppc64le'),
]


@pytest.mark.parametrize('wanted, available, expected', PICKS,
                         ids=['%s-from-%s' % (w, '+'.join(a)) for w, a, e in PICKS])
def test_platform_pick_follows_containers_image(wanted, available, expected):
    entries = entries_for(*available)
    picked = select_platform(entries, Platform.parse(wanted))
    assert (str(Platform.from_dict(picked['platform'])) if picked else None) == expected
    index = Manifest(json.dumps(index_doc(*[dict(e, mediaType=OCI_MANIFEST, size=10) for e in entries])).encode(),
                     None)
    if expected is None:
        with pytest.raises(InvalidInputError):
            index.select_platform(Platform.parse(wanted))
        assert not any(Platform.parse(wanted).matches(Platform.from_dict(e['platform'])) for e in entries)
    else:
        assert index.select_platform(Platform.parse(wanted))['digest'] == picked['digest']
        assert Platform.parse(wanted).matches(Platform.from_dict(picked['platform']))


@pytest.mark.parametrize('wanted, expected', [
    ('linux/arm/v8', ['linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5', 'linux/arm']),
    ('linux/arm/v7', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5', 'linux/arm']),
    ('linux/arm', ['linux/arm', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']),
    ('linux/arm64', ['linux/arm64', 'linux/arm64/v8']),
    ('linux/arm64/v8', ['linux/arm64/v8', 'linux/arm64']),
    ('linux/amd64', ['linux/amd64']),
    ('linux/amd64/v3', ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64']),
    ('linux/arm/v9', ['linux/arm/v9', 'linux/arm']),
])
def test_platform_candidates_in_order(wanted, expected):
    assert [str(p) for p in Platform.parse(wanted).candidates()] == expected


def test_select_platform_error_lists_platforms_without_none():
    index = Manifest(json.dumps(index_doc(
        entry(digest=d(1), platform={'os': 'linux', 'architecture': 'amd64'}),
        entry(digest=d(2), platform=KeyError),
        entry(digest=d(3), platform={}),
    )).encode(), None)
    with pytest.raises(InvalidInputError) as excinfo:
        index.select_platform(Platform.parse('linux/arm/v8'))
    msg = excinfo.value.msg
    assert 'None' not in msg and 'linux/amd64' in msg
    assert '2 entries without a platform' in msg
    assert 'linux/arm/v8, linux/arm/v7, linux/arm/v6, linux/arm/v5, linux/arm' in msg


# -- schema1: every fsLayer, throwaway ones marked -----------------------------------------------------------
EMPTY_TAR = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8c7c22955b46d4'


def schema1_manifest(steps):
    """steps: base first, (digest, size, throwaway, cmd)."""
    fs_layers = []
    history_entries = []
    for number, (digest, size, throwaway, cmd) in enumerate(steps):
        v1 = {'id': 'layer%d' % number, 'created': '2016-01-01T00:00:%02dZ' % number,
              'container_config': {'Cmd': ['/bin/sh', '-c', cmd]}, 'os': 'linux'}
        if throwaway:
            v1['throwaway'] = True
        if size is not None:
            v1['Size'] = size
        fs_layers.insert(0, {'blobSum': digest})
        history_entries.insert(0, {'v1Compatibility': json.dumps(v1)})
    raw = json.dumps({'schemaVersion': 1, 'name': 'a/b', 'tag': 'v1', 'architecture': 'amd64',
                      'fsLayers': fs_layers, 'history': history_entries}, indent=3).encode()
    return Manifest(raw, 'application/vnd.docker.distribution.manifest.v1+json')


def test_schema1_lists_every_fs_layer_and_marks_throwaway_ones():
    steps = []
    for number in range(15):
        if number % 3 == 1:
            steps.append((EMPTY_TAR, 0, True, '#(nop) ENV N=%d' % number))
        else:
            steps.append((d(number % 15 + 1), 1000 + number, False, 'RUN step %d' % number))
    layers, entries, platform = schema1_details(schema1_manifest(steps))
    assert len(layers) == 15
    assert [layer_entry['digest'] for layer_entry in layers] == [s[0] for s in steps]
    assert [layer_entry['empty_layer'] for layer_entry in layers] == [s[2] for s in steps]
    assert sum(1 for layer_entry in layers if layer_entry['empty_layer']) == 5
    assert [layer_entry['digest'] for layer_entry in layers].count(EMPTY_TAR) == 5
    assert [e['empty_layer'] for e in entries] == [s[2] for s in steps]
    assert str(platform) == 'linux/amd64'


def test_schema1_with_only_a_throwaway_layer():
    layers, entries, dummy = schema1_details(schema1_manifest([(EMPTY_TAR, 0, True, '#(nop) CMD ["sh"]')]))
    assert [(layer_entry['digest'], layer_entry['empty_layer']) for layer_entry in layers] == [(EMPTY_TAR, True)]
    assert len(entries) == 1 and entries[0]['empty_layer']


@pytest.mark.parametrize('v1, field', [
    ('[1]', 'history[0].v1Compatibility'),
    ('{"Size": "big"}', 'history[0].v1Compatibility.Size'),
    ('{"Size": -4}', 'history[0].v1Compatibility.Size'),
    ('{"container_config": {"Cmd": [1, 2]}}', 'history[0].v1Compatibility.container_config.Cmd[0]'),
    ('[' * 100000 + ']' * 100000, 'history[0].v1Compatibility'),
])
def test_schema1_malformed_v1_compatibility(v1, field):
    raw = json.dumps({'schemaVersion': 1, 'architecture': 'amd64', 'fsLayers': [{'blobSum': d(1)}],
                      'history': [{'v1Compatibility': v1}]}).encode()
    manifest = Manifest(raw, None)
    with pytest.raises(IntegrityError) as excinfo:
        schema1_details(manifest)
    assert excinfo.value.details['field'] == field and field in excinfo.value.msg
