# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image archives and OCI layouts written for the unit tests: plain, nested and crafted ones."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import digest_of as sha

OCI_INDEX_TYPE = 'application/vnd.oci.image.index.v1+json'


def layer_tar(content):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo('hello.txt')
        info.size = len(content)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_tar(path, files):
    with tarfile.open(path, 'w') as archive:
        for name, data in files.items():
            if isinstance(data, tuple):  # ('link', target)
                info = tarfile.TarInfo(name)
                info.type = tarfile.SYMTYPE
                info.linkname = data[1]
                archive.addfile(info)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def docker_archive(path, images, diff_id_override=None):
    """images: [(repo_tags, [layer contents])]."""
    files = {}
    manifest = []
    for number, (tags, contents) in enumerate(images):
        layers = [layer_tar(c) for c in contents]
        diff_ids = [sha(layer) for layer in layers]
        if diff_id_override:
            diff_ids[0] = diff_id_override
        config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'n': number,
                             'rootfs': {'type': 'layers', 'diff_ids': diff_ids}}).encode()
        config_name = sha(config)[7:] + '.json'
        files[config_name] = config
        names = []
        for layer in layers:
            real = sha(layer)[7:] + '.tar'
            files[real] = layer
            link = 'id%d-%s/layer.tar' % (number, real[:8])
            files[link] = ('link', '../' + real)
            names.append(link)
        manifest.append({'Config': config_name, 'RepoTags': tags, 'Layers': names})
    files['manifest.json'] = json.dumps(manifest).encode()
    write_tar(path, files)


def oci_layout(root, names):
    os.makedirs(os.path.join(root, 'blobs', 'sha256'))
    entries = []
    for name in names:
        blobs = {}
        config = json.dumps({'architecture': 'arm64', 'os': 'linux', 'name': name}).encode()
        layer = gzip.compress(layer_tar(name.encode()), mtime=0)
        for data in (config, layer):
            blobs[sha(data)] = data
        manifest = json.dumps({
            'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
            'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': sha(config),
                       'size': len(config)},
            'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': sha(layer),
                        'size': len(layer)}]}).encode()
        blobs[sha(manifest)] = manifest
        for digest, data in blobs.items():
            with open(os.path.join(root, 'blobs', 'sha256', digest[7:]), 'wb') as handle:
                handle.write(data)
        entries.append({'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': sha(manifest),
                        'size': len(manifest), 'annotations': {'org.opencontainers.image.ref.name': name}})
    with open(os.path.join(root, 'index.json'), 'w') as handle:
        json.dump({'schemaVersion': 2, 'manifests': entries}, handle)
    with open(os.path.join(root, 'oci-layout'), 'w') as handle:
        handle.write('{"imageLayoutVersion": "1.0.0"}')
    return entries


# -- crafted archives: members that would write outside the work directory -----------------------
def tar_entries(path, entries, mode='w:gz', compresslevel=1):
    """Write a tarball from ``(TarInfo, data-or-None)`` pairs, in order."""
    kwargs = {'compresslevel': compresslevel} if mode in ('w:gz', 'w:bz2') else {}
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT, **kwargs) as archive:
        for info, data in entries:
            archive.addfile(info, data if hasattr(data, 'read') or data is None else io.BytesIO(data))


def member(name, data=b'', mode=0o644, kind=tarfile.REGTYPE, linkname=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def docker_entries(contents, tags=('app:1',)):
    """The members of a plain docker-archive (no links), as ``tar_entries`` pairs."""
    layers = [layer_tar(c) for c in contents]
    config = json.dumps({'architecture': 'amd64', 'os': 'linux',
                         'rootfs': {'type': 'layers', 'diff_ids': [sha(layer) for layer in layers]}}).encode()
    names = ['%s/layer.tar' % sha(layer)[7:19] for layer in layers]
    manifest = json.dumps([{'Config': 'config.json', 'RepoTags': list(tags), 'Layers': names}]).encode()
    return [member('manifest.json', manifest), member('config.json', config)] + [
        member(name, layer) for name, layer in zip(names, layers)]


def make_outside(tmp_path):
    """A directory outside the archive and the work directory, with a file and a directory in it."""
    root = tmp_path / 'outside'
    root.mkdir()
    (root / 'existing').write_bytes(b'original')
    os.chmod(str(root / 'existing'), 0o644)
    (root / 'dir').mkdir()
    os.chmod(str(root / 'dir'), 0o755)
    return root


def hostile_members(outside):
    """Members that an extraction would write outside its target, or that waste its disk."""
    unique = str(outside)
    return [
        member(unique + '/evil', b'evil'),                                     # absolute path
        member('../' * 12 + unique.lstrip('/') + '/dotdot', b'dotdot'),      # ../ path
        member(unique + '/existing', b'overwritten', mode=0o4755),             # setuid, over an existing file
        member(unique + '/dir', kind=tarfile.DIRTYPE, mode=0o777),            # a directory mode change
        member(unique + '/link', kind=tarfile.SYMTYPE, linkname='/etc/passwd'),
        member(unique + '/hard', kind=tarfile.LNKTYPE, linkname=unique + '/existing'),
    ]


def assert_outside_untouched(outside):
    assert sorted(os.listdir(str(outside))) == ['dir', 'existing']
    assert (outside / 'existing').read_bytes() == b'original'
    assert os.stat(str(outside / 'existing')).st_mode & 0o7777 == 0o644
    assert os.stat(str(outside / 'dir')).st_mode & 0o7777 == 0o755
    assert os.listdir(str(outside / 'dir')) == []


def link_blob_outside(root, tmp_path, digest, data):
    """Replace the blob ``digest`` of the layout by a symbolic link to a file outside holding ``data``."""
    target = tmp_path / ('outside-%s' % digest[7:15])
    target.write_bytes(data)
    blob = os.path.join(root, 'blobs', 'sha256', digest[7:])
    os.unlink(blob)
    os.symlink(str(target), blob)
    return blob


def write_blob(root, data):
    with open(os.path.join(root, 'blobs', 'sha256', sha(data)[7:]), 'wb') as handle:
        handle.write(data)
    return sha(data)


def nest(root, depth):
    """Wrap the layout's single image in ``depth`` indexes (depth 1: one index); returns the top digest."""
    with open(os.path.join(root, 'index.json')) as handle:
        layout_index = json.load(handle)
    entry = dict(layout_index['manifests'][0])
    entry.pop('annotations', None)
    entry['platform'] = {'os': 'linux', 'architecture': 'arm64'}
    for level in range(depth):
        document = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX_TYPE, 'manifests': [entry],
                               'annotations': {'level': str(level)}}).encode()
        entry = {'mediaType': OCI_INDEX_TYPE, 'digest': write_blob(root, document), 'size': len(document)}
    entry['annotations'] = {'org.opencontainers.image.ref.name': 'nested'}
    layout_index['manifests'] = [entry]
    with open(os.path.join(root, 'index.json'), 'w') as handle:
        json.dump(layout_index, handle)
    return entry['digest']
