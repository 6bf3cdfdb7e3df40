#!/usr/bin/env python
"""Push the prune target's repository: 40 tags over 14 digests, printed as JSON.

Usage: seed.py REPO_ROOT REGISTRY REPOSITORY. Single images differ by their layer size; ``2.1.0`` is an
OCI index whose amd64 child is also tagged ``build-16`` .. ``build-20``; ``build-13`` .. ``build-15`` a
Docker manifest list whose children are untagged; ``sha256-<hex>.sig`` signs ``1.0.0`` and ``build-10``.
Output: ``{"tags": {tag: digest}, "child": digest, "list_children": [digest], "index_children": [digest]}``.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(sys.argv[1], 'tests', 'utils'))
from cosign_layout import OCI_CONFIG, SIMPLESIGNING, payload  # noqa: E402
from synth_image import MT_OCI_MANIFEST, Registry, push_image  # noqa: E402

SINGLES = [  # (layer size, kind, tags)
    (1001, 'schema2', ['1.0.0', 'build-1']),
    (1002, 'schema2', ['1.1.0', 'build-2']),
    (1003, 'oci', ['1.2.0', '1.2', 'build-3']),
    (1004, 'schema2', ['2.0.0', 'stable', 'latest', 'build-4']),
    (1005, 'oci', ['build-5', 'build-6', 'pr-5', 'pr-6', 'pr-7', 'pr-8']),
    (1006, 'schema2', ['build-7', 'build-8']),
    (1007, 'schema2', ['prod', 'build-9']),
    (1008, 'oci', ['build-10', 'build-11']),
    (1009, 'schema2', ['build-12', 'pr-1', 'pr-2', 'pr-3', 'pr-4']),
]


def sign(reg: Registry, repo: str, host: str, digest: str) -> str:
    """A cosign simple-signing manifest (the signature is not checked here) under the .sig tag of ``digest``."""
    body = payload('%s/%s' % (host, repo), digest)
    layer = {'mediaType': SIMPLESIGNING, 'size': len(body), 'digest': reg.push_blob(repo, body),
             'annotations': {'dev.cosignproject.cosign/signature': 'bm90IGNoZWNrZWQ='}}
    config = json.dumps({'architecture': '', 'os': '', 'rootfs': {'type': 'layers', 'diff_ids': [layer['digest']]}},
                        separators=(',', ':')).encode()
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': MT_OCI_MANIFEST,
                           'config': {'mediaType': OCI_CONFIG, 'size': len(config),
                                      'digest': reg.push_blob(repo, config)},
                           'layers': [layer]}, separators=(',', ':')).encode()
    return reg.push_manifest(repo, digest.replace(':', '-') + '.sig', manifest, MT_OCI_MANIFEST)


def main() -> None:
    host, repo = sys.argv[2], sys.argv[3]
    reg = Registry(host)
    tags = {}
    for size, kind, names in SINGLES:
        for name in names:
            tags[name] = push_image(reg, repo, name, kind=kind, layer_sizes=[size])['digest']
    index = push_image(reg, repo, '2.1.0', kind='oci-index', layer_sizes=[1010])
    tags['2.1.0'] = tags['2.1'] = push_image(reg, repo, '2.1', kind='oci-index', layer_sizes=[1010])['digest']
    child = index['children']['linux/amd64']['digest']
    raw = reg.request('GET', reg.url('/v2/%s/manifests/%s' % (repo, child)), headers={'Accept': MT_OCI_MANIFEST})
    for number in range(16, 21):
        tags['build-%d' % number] = reg.push_manifest(repo, 'build-%d' % number, raw.content, MT_OCI_MANIFEST)
    for number in range(13, 16):
        listed = push_image(reg, repo, 'build-%d' % number, kind='docker-list', layer_sizes=[1011])
        tags['build-%d' % number] = listed['digest']
    for name in ('1.0.0', 'build-10'):
        signature = sign(reg, repo, host, tags[name])
        tags[tags[name].replace(':', '-') + '.sig'] = signature
    print(json.dumps({'tags': tags, 'child': child,
                      'index_children': [c['digest'] for c in index['children'].values()],
                      'list_children': [c['digest'] for c in listed['children'].values()]}))


if __name__ == '__main__':
    main()
