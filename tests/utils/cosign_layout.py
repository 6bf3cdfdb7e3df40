#!/usr/bin/env python
"""Lay out a signature made by someone else (openssl) the way cosign stores it, and push it.

Test helper for the imagelayers.registry collection: the signatures the integration tests ask
``signature_verify`` to check are made with ``openssl``, not with the collection, and this
script only arranges bytes. Standard library and ``requests`` only (pushes go through
``synth_image.Registry``).

Subcommands::

    cosign_layout.py payload --reference 127.0.0.1:5100/app --digest sha256:... > payload.json
        cosign's simple signing payload naming the digest (sign it with ``openssl dgst -sha256 -sign``).
    cosign_layout.py set-message --payload payload.json --signature sig.bin --certificate leaf.pem \\
            --integrated-time 1700000000 > set-message.json
        The canonical JSON of the Rekor entry a SignedEntryTimestamp signs (sign it with the Rekor key).
    cosign_layout.py push --registry 127.0.0.1:5100 --repo app --digest sha256:... --payload payload.json \\
            --signature sig.bin [--certificate leaf.pem --chain ca.pem] [--set set.bin --integrated-time N] \\
            [--tamper-annotation] [--append]
        The payload as a layer of the manifest under ``sha256-<hex>.sig``, the signature (base64) in the
        ``dev.cosignproject.cosign/signature`` annotation; keyless adds the certificate, the chain and the
        Rekor bundle annotation. ``--append`` keeps the layers already under the tag, as cosign does.

Output of ``push`` (stdout): JSON ``{"digest", "tag", "payload_digest", "layers"}``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synth_image import MT_OCI_MANIFEST, Registry, RegistryError, sha256_digest  # noqa: E402

SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature'
ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate'
ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain'
ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle'
LOG_ID = 'c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d'
LOG_INDEX = 1


def payload(reference: str, digest: str) -> bytes:
    """cosign's simple signing payload (the same bytes cosign writes)."""
    document = {'critical': {'identity': {'docker-reference': reference},
                             'image': {'docker-manifest-digest': digest},
                             'type': 'cosign container image signature'},
                'optional': None}
    return json.dumps(document, separators=(',', ':')).encode('utf-8')


def read(path: str) -> bytes:
    with open(path, 'rb') as handle:
        return handle.read()


def rekor_body(payload_bytes: bytes, signature: bytes, certificate: bytes) -> str:
    """The base64 hashedrekord entry body Rekor would have logged for this signature."""
    body = {'apiVersion': '0.0.1', 'kind': 'hashedrekord',
            'spec': {'data': {'hash': {'algorithm': 'sha256', 'value': sha256_digest(payload_bytes)[7:]}},
                     'signature': {'content': base64.b64encode(signature).decode(),
                                   'publicKey': {'content': base64.b64encode(certificate).decode()}}}}
    return base64.b64encode(json.dumps(body, separators=(',', ':')).encode()).decode()


def set_message(payload_bytes: bytes, signature: bytes, certificate: bytes, integrated_time: int) -> bytes:
    """What a SignedEntryTimestamp signs: the canonical JSON (sorted keys, no spaces) of the entry."""
    entry = {'body': rekor_body(payload_bytes, signature, certificate), 'integratedTime': integrated_time,
             'logID': LOG_ID, 'logIndex': LOG_INDEX}
    return json.dumps(entry, sort_keys=True, separators=(',', ':')).encode()


def annotations(args: argparse.Namespace, payload_bytes: bytes, signature: bytes) -> dict:
    encoded = base64.b64encode(signature).decode()
    if args.tamper_annotation:
        encoded = encoded[:10] + ('A' if encoded[10] != 'A' else 'B') + encoded[11:]
    result = {ANNOTATION_SIGNATURE: encoded}
    if args.certificate:
        certificate = read(args.certificate)
        result[ANNOTATION_CERTIFICATE] = certificate.decode()
        if args.chain:
            result[ANNOTATION_CHAIN] = read(args.chain).decode()
        if args.set:
            result[ANNOTATION_BUNDLE] = json.dumps({
                'SignedEntryTimestamp': base64.b64encode(read(args.set)).decode(),
                'Payload': {'body': rekor_body(payload_bytes, signature, certificate),
                            'integratedTime': args.integrated_time, 'logIndex': LOG_INDEX, 'logID': LOG_ID}})
    return result


def existing_layers(reg: Registry, repo: str, tag: str) -> list:
    response = reg.request('GET', reg.url('/v2/%s/manifests/%s' % (repo, tag)),
                           headers={'Accept': MT_OCI_MANIFEST})
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise RegistryError('GET manifest %s:%s' % (repo, tag), response)
    return response.json().get('layers') or []


def push(args: argparse.Namespace) -> dict:
    reg = Registry(args.registry)
    tag = args.digest.replace(':', '-') + '.sig'
    payload_bytes = read(args.payload)
    signature = read(args.signature)
    layers = existing_layers(reg, args.repo, tag) if args.append else []
    layer = {'mediaType': SIMPLESIGNING, 'size': len(payload_bytes), 'digest': reg.push_blob(args.repo, payload_bytes),
             'annotations': annotations(args, payload_bytes, signature)}
    layers.append(layer)
    config = json.dumps({'architecture': '', 'config': {}, 'created': '0001-01-01T00:00:00Z',
                         'history': [{'created': '0001-01-01T00:00:00Z'}], 'os': '',
                         'rootfs': {'type': 'layers', 'diff_ids': [entry['digest'] for entry in layers]}},
                        separators=(',', ':')).encode()
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': MT_OCI_MANIFEST,
                           'config': {'mediaType': OCI_CONFIG, 'size': len(config),
                                      'digest': reg.push_blob(args.repo, config)},
                           'layers': layers}, separators=(',', ':')).encode()
    digest = reg.push_manifest(args.repo, tag, manifest, MT_OCI_MANIFEST)
    return {'digest': digest, 'tag': tag, 'payload_digest': layer['digest'], 'layers': len(layers)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    commands = parser.add_subparsers(dest='command', required=True)
    make = commands.add_parser('payload', help='print the simple signing payload')
    make.add_argument('--reference', required=True)
    make.add_argument('--digest', required=True)
    message = commands.add_parser('set-message', help='print the bytes a Rekor SET signs')
    for name in ('--payload', '--signature', '--certificate'):
        message.add_argument(name, required=True)
    message.add_argument('--integrated-time', type=int, required=True)
    upload = commands.add_parser('push', help='push the signature under sha256-<hex>.sig')
    for name in ('--registry', '--repo', '--digest', '--payload', '--signature'):
        upload.add_argument(name, required=True)
    upload.add_argument('--certificate')
    upload.add_argument('--chain')
    upload.add_argument('--set', help='the SignedEntryTimestamp (raw signature bytes)')
    upload.add_argument('--integrated-time', type=int, default=0)
    upload.add_argument('--tamper-annotation', action='store_true', help='change one character of the signature')
    upload.add_argument('--append', action='store_true', help='keep the layers already under the tag')
    args = parser.parse_args(argv)
    if args.command == 'payload':
        sys.stdout.buffer.write(payload(args.reference, args.digest))
    elif args.command == 'set-message':
        sys.stdout.buffer.write(set_message(read(args.payload), read(args.signature), read(args.certificate),
                                            args.integrated_time))
    else:
        json.dump(push(args), sys.stdout, sort_keys=True)
        sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (RegistryError, requests.RequestException, OSError, ValueError) as exc:
        print('cosign_layout.py: error: %s' % exc, file=sys.stderr)
        sys.exit(1)
