#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push a small OCI artifact whose ``subject`` is a given manifest (a stand-in for a signature or an SBOM).

Test helper for the referrers integration tests. The artifact is an OCI image manifest with
``artifactType``, the empty config and one layer holding ``--payload``; it is PUT by digest. With
``--fallback`` it is also added to the subject's ``sha256-<hex>`` fallback index, as an OCI 1.1
client does on a registry without the referrers API; with ``--tag`` it is PUT under that tag
(a cosign-style tag) instead of its digest.

    push_referrer.py --registry 127.0.0.1:5100 --repo app --subject sha256:... --artifact-type T --payload text

Prints JSON: ``digest``, ``size``, ``media_type``, ``artifact_type``, ``subject``, and ``oci_subject``
(the ``OCI-Subject`` header the registry answered, or null).
"""

from __future__ import annotations

import argparse
import json
import sys

from synth_image import Registry, RegistryError, sha256_digest

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
EMPTY_TYPE = 'application/vnd.oci.empty.v1+json'


def _dumps(document) -> bytes:
    return json.dumps(document, separators=(',', ':'), sort_keys=True).encode('utf-8')


def artifact(reg: Registry, repo: str, subject: str, artifact_type: str, payload: bytes, annotations: dict) -> bytes:
    head = reg.request('HEAD', reg.url('/v2/%s/manifests/%s' % (repo, subject)), headers={'Accept': ', '.join(
        [OCI_INDEX, OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json',
         'application/vnd.docker.distribution.manifest.list.v2+json'])})
    if head.status_code != 200:
        raise RegistryError('HEAD subject %s' % subject, head)
    empty = reg.push_blob(repo, b'{}')
    layer = reg.push_blob(repo, payload)
    document = {
        'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'artifactType': artifact_type,
        'config': {'mediaType': EMPTY_TYPE, 'digest': empty, 'size': 2},
        'layers': [{'mediaType': 'application/octet-stream', 'digest': layer, 'size': len(payload)}],
        'subject': {'mediaType': head.headers['Content-Type'].split(';')[0], 'digest': subject,
                    'size': int(head.headers['Content-Length'])}}
    if annotations:
        document['annotations'] = annotations
    return _dumps(document)


def add_to_fallback(reg: Registry, repo: str, subject: str, descriptor: dict) -> None:
    tag = subject.replace(':', '-')
    found = reg.request('GET', reg.url('/v2/%s/manifests/%s' % (repo, tag)), headers={'Accept': OCI_INDEX})
    empty = {'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': []}
    index = found.json() if found.status_code == 200 else empty
    if not any(entry.get('digest') == descriptor['digest'] for entry in index['manifests']):
        index['manifests'].append(descriptor)
        reg.push_manifest(repo, tag, _dumps(index), OCI_INDEX)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--registry', required=True)
    parser.add_argument('--repo', required=True)
    parser.add_argument('--subject', required=True, help='digest of the manifest it refers to')
    parser.add_argument('--artifact-type', required=True)
    parser.add_argument('--payload', default='payload')
    parser.add_argument('--annotation', action='append', default=[], help='key=value, repeatable')
    parser.add_argument('--fallback', action='store_true', help='also add it to the fallback index')
    parser.add_argument('--tag', help='PUT it under this tag instead of its digest')
    options = parser.parse_args(argv)
    reg = Registry(options.registry)
    annotations = dict(item.split('=', 1) for item in options.annotation)
    raw = artifact(reg, options.repo, options.subject, options.artifact_type, options.payload.encode(), annotations)
    digest = sha256_digest(raw)
    response = reg.request('PUT', reg.url('/v2/%s/manifests/%s' % (options.repo, options.tag or digest)), data=raw,
                           headers={'Content-Type': OCI_MANIFEST})
    if response.status_code != 201:
        raise RegistryError('PUT artifact %s' % digest, response)
    descriptor = {'mediaType': OCI_MANIFEST, 'digest': digest, 'size': len(raw), 'artifactType': options.artifact_type}
    if annotations:
        descriptor['annotations'] = annotations
    if options.fallback:
        add_to_fallback(reg, options.repo, options.subject, descriptor)
    json.dump({'digest': digest, 'size': len(raw), 'media_type': OCI_MANIFEST, 'subject': options.subject,
               'artifact_type': options.artifact_type, 'oci_subject': response.headers.get('OCI-Subject')},
              sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
