#!/usr/bin/env python
"""Write crafted image archives for the push integration tests (standard library only).

Every archive holds a small valid image (deterministic bytes) that push can publish, plus what a
hostile or unusual archive adds:

``docker-absolute``  a gzip-compressed docker-archive whose first members have absolute names inside
                     ``--outside`` (a file, a setuid file, a directory, a link): extracting the tarball
                     would create them there.
``oci-linked``       an OCI layout directory whose layer blob is a symbolic link to ``--outside`` (a file
                     this script writes with the layer's bytes, or other bytes with ``--other-bytes``).
``oci-nested``       an OCI layout directory whose image is wrapped in ``--depth`` nested indexes.

CLI::

    archive_crafted.py docker-absolute --out /tmp/x/evil.tar.gz --outside /tmp/x-outside
    archive_crafted.py oci-linked --out /tmp/x/layout --outside /tmp/x-outside/layer
    archive_crafted.py oci-nested --out /tmp/x/nested --depth 2

Output (stdout) is JSON: ``digest`` (what push should report), ``layer`` (the layer digest),
``link`` (oci-linked: the link's path inside the layout), ``outside`` (the paths that must not appear).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'
REF_NAME = 'org.opencontainers.image.ref.name'


def sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def layer_tar(content):
    """An uncompressed layer holding one file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo('hello.txt')
        info.size = len(content)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def member(name, data=b'', mode=0o644, kind=tarfile.REGTYPE, linkname=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def docker_absolute(out, outside, label):
    outside = os.path.abspath(outside)
    layer = layer_tar(('crafted %s' % label).encode())
    config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {'Labels': {'crafted': label}},
                         'rootfs': {'type': 'layers', 'diff_ids': [sha(layer)]}}, sort_keys=True).encode()
    layer_name = '%s/layer.tar' % sha(layer)[7:]
    manifest = json.dumps([{'Config': 'config.json', 'RepoTags': ['crafted:1'], 'Layers': [layer_name]}]).encode()
    entries = [
        member(outside + '/evil', b'written outside\n'),
        member(outside + '/setuid', b'#!/bin/sh\n', mode=0o4755),
        member(outside + '/dir', kind=tarfile.DIRTYPE, mode=0o777),
        member(outside + '/link', kind=tarfile.SYMTYPE, linkname='/etc/passwd'),
        member('manifest.json', manifest),
        member('config.json', config),
        member(layer_name, layer),
    ]
    with tarfile.open(out, 'w:gz', format=tarfile.GNU_FORMAT) as archive:
        for info, data in entries:
            archive.addfile(info, data)
    return {'config': sha(config), 'layer_diff_id': sha(layer),
            'outside': [outside + '/evil', outside + '/setuid', outside + '/dir', outside + '/link']}


def write_blob(root, data):
    with open(os.path.join(root, 'blobs', 'sha256', sha(data)[7:]), 'wb') as handle:
        handle.write(data)
    return {'digest': sha(data), 'size': len(data)}


def oci_layout(root, label):
    """A one-image OCI layout; ``(manifest descriptor, layer descriptor)``."""
    os.makedirs(os.path.join(root, 'blobs', 'sha256'))
    plain = layer_tar(('crafted %s' % label).encode())
    config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {'Labels': {'crafted': label}},
                         'rootfs': {'type': 'layers', 'diff_ids': [sha(plain)]}}, sort_keys=True).encode()
    layer = gzip.compress(plain, mtime=0)
    config_descriptor = dict(write_blob(root, config), mediaType=OCI_CONFIG)
    layer_descriptor = dict(write_blob(root, layer), mediaType=OCI_LAYER)
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST, 'config': config_descriptor,
                           'layers': [layer_descriptor]}, sort_keys=True).encode()
    entry = dict(write_blob(root, manifest), mediaType=OCI_MANIFEST)
    write_index(root, entry)
    with open(os.path.join(root, 'oci-layout'), 'w') as handle:
        handle.write('{"imageLayoutVersion": "1.0.0"}')
    return entry, layer_descriptor


def write_index(root, entry):
    entry = dict(entry, annotations={REF_NAME: '1'})
    with open(os.path.join(root, 'index.json'), 'w') as handle:
        json.dump({'schemaVersion': 2, 'manifests': [entry]}, handle)


def oci_linked(out, outside, label, other_bytes):
    entry, layer = oci_layout(out, label)
    link = os.path.join(out, 'blobs', 'sha256', layer['digest'][7:])
    with open(link, 'rb') as handle:
        data = handle.read()
    os.makedirs(os.path.dirname(os.path.abspath(outside)), exist_ok=True)
    with open(outside, 'wb') as handle:
        handle.write(b'outside bytes\n' * 64 if other_bytes else data)
    os.unlink(link)
    os.symlink(os.path.abspath(outside), link)
    return {'digest': entry['digest'], 'layer': layer['digest'], 'link': os.path.relpath(link, out)}


def oci_nested(out, depth, label):
    entry, layer = oci_layout(out, label)
    entry = dict(entry, platform={'os': 'linux', 'architecture': 'amd64'})
    for level in range(depth):
        document = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [entry],
                               'annotations': {'crafted.level': str(level)}}, sort_keys=True).encode()
        entry = dict(write_blob(out, document), mediaType=OCI_INDEX)
    write_index(out, entry)
    return {'digest': entry['digest'], 'layer': layer['digest']}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('kind', choices=['docker-absolute', 'oci-linked', 'oci-nested'])
    parser.add_argument('--out', required=True, help='the archive file or layout directory to write')
    parser.add_argument('--outside', help='docker-absolute: directory; oci-linked: file the blob links to')
    parser.add_argument('--other-bytes', action='store_true', help='oci-linked: the outside file differs')
    parser.add_argument('--depth', type=int, default=2, help='oci-nested: how many indexes')
    parser.add_argument('--label', default='push-int', help='makes the image (and its digests) unique')
    args = parser.parse_args(argv)
    if args.kind == 'docker-absolute':
        result = docker_absolute(args.out, args.outside, args.label)
    elif args.kind == 'oci-linked':
        result = oci_linked(args.out, args.outside, args.label, args.other_bytes)
    else:
        result = oci_nested(args.out, args.depth, args.label)
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
