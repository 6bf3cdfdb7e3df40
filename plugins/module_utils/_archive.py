# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Images from files: an OCI image layout directory, an OCI archive, a docker-archive tarball.

:func:`load_image` returns an :class:`ImagePlan` (the manifests and blobs to
publish) and a blob source reading from the archive, for ``_copy.publish``.

- OCI layouts (a directory, or a tarball of one as ``podman save --format
  oci-archive`` writes) are published as they are: the manifest selected from
  ``index.json`` keeps its digest.
- docker-archive tarballs (``docker save``, ``podman save``) have a
  ``manifest.json`` and uncompressed layer tars. Each layer is compressed
  deterministically (gzip, level 6, no file name, mtime 0) into a temporary
  file, checked against the config's ``rootfs.diff_ids`` while compressing, and
  a Docker schema2 manifest is built around the config, so the same archive
  always gives the same digest and pushing it twice changes nothing.
  (Archives written by Docker 25 and later also contain an OCI ``index.json``;
  that is used then.)

Blobs of a plain tarball are read in place (seek to the member's data), never
extracted; a compressed tarball is extracted to the temporary directory first.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
import zlib

from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import CHUNK_SIZE
from ansible_collections.imagelayers.registry.plugins.module_utils._copy import ImagePlan, image_details, unique_blobs
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import (
    compute_digest,
    new_hasher,
    validate_digest,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    Manifest,
    Platform,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import BlobSource

GZIP_LEVEL = 6
DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
REF_NAME = 'org.opencontainers.image.ref.name'
CONTAINERD_NAME = 'io.containerd.image.name'
MAX_JSON = 64 * 1024 * 1024
_COMPRESSED_MAGIC = (b'\x1f\x8b', b'BZh', b'\xfd7zXZ', b'\x28\xb5\x2f\xfd')


# -- reading files from a directory or a tarball -------------------------------------
class DirectoryFiles:
    """Files of a directory, by relative POSIX path."""

    def __init__(self, root):
        self.root = root

    def _path(self, name):
        name = posixpath.normpath(name.lstrip('/'))
        if name.startswith('..'):
            raise InvalidInputError('The archive refers to %s, outside of it' % name)
        return os.path.join(self.root, *name.split('/'))

    def exists(self, name):
        return os.path.isfile(self._path(name))

    def size(self, name):
        return os.path.getsize(self._path(name))

    def open(self, name):
        try:
            handle = open(self._path(name), 'rb')
        except OSError as exc:
            raise InvalidInputError('Cannot read %s in %s: %s' % (name, self.root, exc.strerror or exc))
        return handle.read, handle.close


class TarFiles:
    """Members of an uncompressed tarball, read in place (symbolic and hard links followed)."""

    def __init__(self, path):
        self.path = path
        self.members = {}
        try:
            with tarfile.open(path, 'r:') as archive:
                for member in archive:
                    self.members[_clean(member.name)] = member
        except (tarfile.TarError, OSError) as exc:
            raise InvalidInputError('Cannot read the tarball %s: %s' % (path, exc))

    def _member(self, name):
        name = _clean(name)
        for dummy in range(16):
            member = self.members.get(name)
            if member is None:
                return None
            if member.issym():
                name = _clean(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = _clean(member.linkname)
            elif member.isfile():
                return member
            else:
                return None
        return None

    def exists(self, name):
        return self._member(name) is not None

    def size(self, name):
        return self._member(name).size

    def open(self, name):
        member = self._member(name)
        if member is None:
            raise InvalidInputError('The archive %s has no file %s' % (self.path, name))
        handle = open(self.path, 'rb')
        handle.seek(member.offset_data)
        remaining = [member.size]

        def read(amount):
            amount = min(amount, remaining[0])
            if amount <= 0:
                return b''
            data = handle.read(amount)
            remaining[0] -= len(data)
            return data
        return read, handle.close


def _clean(name):
    name = posixpath.normpath(name.lstrip('/'))
    return '' if name == '.' else name


def read_small(files, name, what):
    if not files.exists(name):
        return None
    if files.size(name) > MAX_JSON:
        raise InvalidInputError('%s (%s) is larger than %d bytes' % (what, name, MAX_JSON))
    read, close = files.open(name)
    try:
        chunks = []
        while True:
            data = read(CHUNK_SIZE)
            if not data:
                break
            chunks.append(data)
        return b''.join(chunks)
    finally:
        close()


def read_json(files, name, what):
    raw = read_small(files, name, what)
    if raw is None:
        return None, None
    try:
        return json.loads(raw.decode('utf-8')), raw
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError('%s (%s) is not valid JSON: %s' % (what, name, exc))


def open_files(path, tmpdir):
    """DirectoryFiles or TarFiles for ``path``; compressed tarballs are extracted to ``tmpdir``."""
    if os.path.isdir(path):
        return DirectoryFiles(path)
    if not os.path.isfile(path):
        raise InvalidInputError('The archive %s does not exist' % path)
    with open(path, 'rb') as handle:
        head = handle.read(6)
    if head.startswith(_COMPRESSED_MAGIC):
        target = os.path.join(tmpdir, 'extracted')
        try:
            with tarfile.open(path, 'r:*') as archive:
                safe = [m for m in archive.getmembers()
                        if (m.isfile() or m.isdir()) and not _clean(m.name).startswith('..') and _clean(m.name)]
                archive.extractall(target, members=safe)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InvalidInputError('Cannot read the compressed tarball %s: %s' % (path, exc))
        return DirectoryFiles(target)
    return TarFiles(path)


class ArchiveBlobSource(BlobSource):
    """Blob bytes from the archive's files (or from compressed temporary files)."""

    retryable = True

    def __init__(self, files, paths, name='the archive'):
        self.files = files
        self.paths = paths      # digest -> (files, name)
        self.name = name

    def open(self, descriptor):
        files, name = self.paths[descriptor['digest']]
        return files.open(name)


# -- selecting an image ------------------------------------------------------------------------
def _name_variants(name):
    """A reference and the spellings tools write for it (docker.io/library/, localhost/)."""
    name = name.strip()
    variants = {name}
    for prefix in ('docker.io/library/', 'docker.io/', 'localhost/', 'library/'):
        if name.startswith(prefix):
            variants.add(name[len(prefix):])
    if ':' not in name.rsplit('/', 1)[-1] and '@' not in name:
        variants |= set(v + ':latest' for v in list(variants))
    return variants


def _matches(wanted, names):
    wanted_variants = _name_variants(wanted)
    for name in names:
        if name and wanted_variants & _name_variants(name):
            return True
    return False


def select_entry(entries, names_of, archive_image, what):
    """The entry that ``archive_image`` (a name or an index) selects; the only one when not given."""
    if not entries:
        raise InvalidInputError('%s contains no image' % what)
    listing = '; '.join('%d: %s' % (i, ', '.join(n for n in names_of(e) if n) or 'no name')
                        for i, e in enumerate(entries))
    if archive_image is None or archive_image == '':
        if len(entries) > 1:
            raise InvalidInputError('%s contains %d images; select one with archive_image (a name or an index): %s'
                                    % (what, len(entries), listing))
        return entries[0]
    text = str(archive_image).strip()
    # A name first (tags may be all digits, like "1"); a number that names nothing is an index.
    matched = [e for e in entries if _matches(text, names_of(e))]
    if text.isdigit() and not matched:
        index = int(text)
        if index >= len(entries):
            raise InvalidInputError('archive_image %d is out of range: %s has %d image%s (%s)'
                                    % (index, what, len(entries), '' if len(entries) == 1 else 's', listing))
        return entries[index]
    if not matched:
        raise InvalidInputError('%s has no image named %s; it has: %s' % (what, text, listing))
    if len(matched) > 1:
        raise InvalidInputError('%s has %d images named %s; give an index instead: %s'
                                % (what, len(matched), text, listing))
    return matched[0]


# -- OCI layouts -------------------------------------------------------------------------
def _blob_name(digest):
    algorithm, encoded = validate_digest(digest)
    return 'blobs/%s/%s' % (algorithm, encoded)


def _oci_manifest(files, descriptor, what):
    digest = descriptor.get('digest')
    validate_digest(digest, what='%s digest' % what)
    raw = read_small(files, _blob_name(digest), what)
    if raw is None:
        raise InvalidInputError('The archive has no blob for %s %s' % (what, digest))
    actual = compute_digest(raw, digest.split(':', 1)[0])
    if actual != digest:
        raise IntegrityError('The %s %s in the archive hashes to %s' % (what, digest, actual),
                             details={'expected_digest': digest, 'actual_digest': actual})
    return Manifest(raw, descriptor.get('mediaType'), digest=digest)


def load_oci(files, index, archive_image, what):
    entries = [e for e in index.get('manifests') or [] if isinstance(e, dict)]

    def names(entry):
        annotations = entry.get('annotations') or {}
        return [annotations.get(REF_NAME), annotations.get(CONTAINERD_NAME)]

    entry = select_entry(entries, names, archive_image, what)
    top = _oci_manifest(files, entry, 'manifest')
    children = []
    images = []
    if top.is_index:
        for child in top.children():
            manifest = _oci_manifest(files, {'digest': child['digest'], 'mediaType': child['media_type']},
                                     'child manifest')
            if not manifest.is_image:
                raise InvalidInputError('The index %s in the archive lists %s of media type %s, which push does '
                                        'not support' % (top.digest, manifest.digest, manifest.media_type))
            children.append(manifest)
            platform = Platform.from_dict(child.get('platform'))
            images.append(image_details(manifest, str(platform) if platform is not None and platform.os else None))
        image_manifests = children
    elif top.is_image:
        image_manifests = [top]
        images.append(image_details(top))
    else:
        raise InvalidInputError('The selected manifest %s in %s has media type %s, which push does not support'
                                % (top.digest, what, top.media_type))
    blobs = unique_blobs(image_manifests)
    paths = {}
    for blob in blobs:
        name = _blob_name(blob['digest'])
        if not files.exists(name):
            raise InvalidInputError('The archive has no blob %s (%s %s)' % (name, blob['kind'], blob['digest']))
        paths[blob['digest']] = (files, name)
    return ImagePlan(top, children, blobs, images), ArchiveBlobSource(files, paths, what[4:])


# -- docker-archive -------------------------------------------------------------------------
def compress_layer(files, name, tmpdir, diff_id=None, number=0):
    """Gzip a layer tar deterministically into ``tmpdir``; ``(digest, size, path)`` of the result.

    A layer that is already gzip-compressed is used as it is.
    """
    read, close = files.open(name)
    try:
        first = read(2)
        if first == b'\x1f\x8b':
            hasher = new_hasher()
            hasher.update(first)
            size = len(first)
            while True:
                data = read(CHUNK_SIZE)
                if not data:
                    break
                hasher.update(data)
                size += len(data)
            return 'sha256:' + hasher.hexdigest(), size, None
        raw_hasher = new_hasher()
        hasher = new_hasher()
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        size = 0
        fd_path = os.path.join(tmpdir, 'layer-%d.gz' % number)
        with open(fd_path, 'wb') as out:
            data = first
            while data:
                raw_hasher.update(data)
                compressed = compressor.compress(data)
                if compressed:
                    hasher.update(compressed)
                    out.write(compressed)
                    size += len(compressed)
                data = read(CHUNK_SIZE)
            compressed = compressor.flush()
            hasher.update(compressed)
            out.write(compressed)
            size += len(compressed)
    finally:
        close()
    actual_diff_id = 'sha256:' + raw_hasher.hexdigest()
    if diff_id and actual_diff_id != diff_id:
        raise IntegrityError('The layer %s of the archive hashes to %s, but the image config lists %s for it'
                             % (name, actual_diff_id, diff_id),
                             details={'expected_digest': diff_id, 'actual_digest': actual_diff_id})
    return 'sha256:' + hasher.hexdigest(), size, fd_path


def load_docker(files, manifest_list, archive_image, tmpdir, what):
    if not isinstance(manifest_list, list):
        raise InvalidInputError('%s: manifest.json is not a list' % what)
    entries = [e for e in manifest_list if isinstance(e, dict)]
    entry = select_entry(entries, lambda e: list(e.get('RepoTags') or []), archive_image, what)
    config_name = entry.get('Config')
    layer_names = entry.get('Layers') or []
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise InvalidInputError('%s: manifest.json has no Config or Layers for the selected image' % what)
    config_raw = read_small(files, config_name, 'the image config')
    if config_raw is None:
        raise InvalidInputError('%s has no file %s (the image config)' % (what, config_name))
    try:
        config = json.loads(config_raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError('The image config %s in %s is not valid JSON: %s' % (config_name, what, exc))
    diff_ids = ((config.get('rootfs') or {}).get('diff_ids') or []) if isinstance(config, dict) else []
    if len(diff_ids) != len(layer_names):
        raise IntegrityError('The image config in %s lists %d layers, manifest.json %d'
                             % (what, len(diff_ids), len(layer_names)))
    config_digest = compute_digest(config_raw)
    config_path = os.path.join(tmpdir, 'config.json')
    with open(config_path, 'wb') as handle:
        handle.write(config_raw)
    local = DirectoryFiles(tmpdir)
    paths = {config_digest: (local, 'config.json')}
    layers = []
    compressed = False
    for index, name in enumerate(layer_names):
        if not isinstance(name, str) or not files.exists(name):
            raise InvalidInputError('%s has no layer file %s' % (what, name))
        digest, size, path = compress_layer(files, name, tmpdir, diff_ids[index], index)
        if path is None:
            paths[digest] = (files, name)
        else:
            paths[digest] = (local, os.path.basename(path))
            compressed = True
        layers.append({'mediaType': DOCKER_LAYER_GZIP, 'size': size, 'digest': digest})
    document = {
        'schemaVersion': 2,
        'mediaType': DOCKER_MANIFEST,
        'config': {'mediaType': DOCKER_CONFIG, 'size': len(config_raw), 'digest': config_digest},
        'layers': layers,
    }
    raw = json.dumps(document, indent=3).encode('utf-8')
    top = Manifest(raw, DOCKER_MANIFEST)
    platform = Platform(config.get('os'), config.get('architecture'), config.get('variant'))
    plan = ImagePlan(top, [], unique_blobs([top]), [image_details(top, str(platform) if platform.os else None)])
    if compressed:
        plan.layer_compression = layer_compression()
    return plan, ArchiveBlobSource(files, paths, what[4:])


def layer_compression():
    """How this host compresses layers: the digests of compressed layers depend on it."""
    return 'gzip level %d, zlib %s' % (GZIP_LEVEL, zlib.ZLIB_RUNTIME_VERSION)


def load_image(path, tmpdir, archive_image=None):
    """``(plan, source, format)`` for the image archive at ``path``."""
    files = open_files(path, tmpdir)
    what = 'The archive %s' % path
    try:
        index, dummy = read_json(files, 'index.json', 'index.json')
        if isinstance(index, dict) and index.get('manifests') is not None:
            plan, source = load_oci(files, index, archive_image, what)
            kind = 'oci-layout' if isinstance(files, DirectoryFiles) and os.path.isdir(path) else 'oci-archive'
            return plan, source, kind
        manifest_list, dummy = read_json(files, 'manifest.json', 'manifest.json')
        if manifest_list is not None:
            plan, source = load_docker(files, manifest_list, archive_image, tmpdir, what)
            return plan, source, 'docker-archive'
    except (OSError, tarfile.TarError) as exc:
        raise RegistryError('Reading %s failed: %s' % (path, exc))
    raise InvalidInputError('%s is neither an OCI image layout (no index.json) nor a docker-archive '
                            '(no manifest.json)' % path)
