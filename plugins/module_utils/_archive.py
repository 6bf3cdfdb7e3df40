# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Images from files: an OCI image layout directory, an OCI archive, a docker-archive tarball.

:func:`load_image` returns an :class:`ImagePlan` (the manifests and blobs to
publish) and a blob source reading from the archive, for ``_publish.publish``;
:func:`push_archive` is the ``push`` operation (load, then publish).

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

Nothing is ever extracted, whatever the format. Only the files the loader
names are read (``index.json`` or ``manifest.json``, then the manifests, then
the blobs), as regular files, by their cleaned names; a link is followed only
while it stays inside the layout or the tarball. Blobs of a plain tarball are
read in place (seek to the member's data); the named members of a compressed
tarball are copied, each bounded by its size, into files of the temporary
directory named by the reader, never after the member. A blob whose size is
not its descriptor's is refused before any of its bytes is read.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import threading
import zlib
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

try:
    from lzma import LZMAError as _LZMAError
except ImportError:  # Python built without lzma: tarfile cannot read xz then either
    class _LZMAError(Exception):  # type: ignore[no-redef]
        """Never raised."""

from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import CHUNK_SIZE
from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
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
from ansible_collections.imagelayers.registry.plugins.module_utils._image import ManifestReader, walk
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    MAX_INDEX_DEPTH,
    OCI_INDEX,
    Manifest,
    check_config,
    check_manifest,
    parse_json,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._publish import (
    ImagePlan,
    PushOutcome,
    plan_from_walk,
    publish,
    publishable,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import check_expected_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import BlobSource

# A reader of bytes (``read(n)``: at most n bytes, b'' at the end) and what closes it.
Reader = Callable[[int], bytes]
Closer = Callable[[], None]

GZIP_LEVEL = 6
DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
REF_NAME = 'org.opencontainers.image.ref.name'
CONTAINERD_NAME = 'io.containerd.image.name'
MAX_JSON = 64 * 1024 * 1024
MAX_LINKS = 16          # links followed, one after the other, inside an archive
_ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
_COMPRESSED_MAGIC = (b'\x1f\x8b', b'BZh', b'\xfd7zXZ', _ZSTD_MAGIC)


# -- reading files from a directory or a tarball -------------------------------------
# Every reader offers the same three calls, by relative POSIX name:
#   size(name)              the size of the regular file, None when there is none; raises when the name is a
#                           link leaving the archive or something else than a regular file;
#   open(name, size, what)  ``(read, close)``; with ``size``, a file of another size is refused before any byte
#                           is returned (so nothing of it can be sent);
#   want(names, limit)      the files the loader reads next (a compressed tarball copies them in one pass);
#   announce(names)         the files read later, if at all (blobs: copied together when the first is opened).
# Nothing is ever extracted: a compressed tarball's members are copied, only when named, as regular files, into
# files the reader names itself in the temporary directory, each bounded by its size.
def _clean(name: str) -> str:
    name = posixpath.normpath(name.lstrip('/'))
    return '' if name == '.' else name


def _outside(clean: str) -> bool:
    return clean in ('', '..') or clean.startswith('../')


def _size_mismatch(what: str, name: str, actual: int, expected: int) -> IntegrityError:
    return IntegrityError('%s (%s) is %d bytes, but its descriptor says %d bytes' % (what, name, actual, expected),
                          details={'expected_size': expected, 'actual_size': actual})


class DirectoryFiles:
    """Regular files of a directory; links are followed only while they stay inside it."""

    def __init__(self, root: str, label: Optional[str] = None) -> None:
        self.root = os.path.realpath(root)
        self.label = label or 'the directory %s' % root

    def _path(self, name: str) -> Tuple[str, str]:
        clean = _clean(name)
        if _outside(clean):
            raise InvalidInputError('%s refers to %s, outside of it' % (self.label, name))
        real = os.path.realpath(os.path.join(self.root, *clean.split('/')))
        if real == self.root:
            raise InvalidInputError('%s in %s is not a regular file' % (clean, self.label))
        if os.path.commonpath([real, self.root]) != self.root:
            raise InvalidInputError('%s in %s is a link to %s, outside of it' % (clean, self.label, real),
                                    details={'file': clean, 'target': real})
        return clean, real

    def size(self, name: str) -> Optional[int]:
        clean, real = self._path(name)
        try:
            info = os.stat(real)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidInputError('Cannot read %s in %s: %s' % (clean, self.label, exc.strerror or exc))
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInputError('%s in %s is not a regular file' % (clean, self.label))
        return info.st_size

    def open(self, name: str, size: Optional[int] = None, what: Optional[str] = None) -> Tuple[Reader, Closer]:
        clean, real = self._path(name)
        flags = os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_CLOEXEC', 0)
        try:
            handle = os.fdopen(os.open(real, flags), 'rb')
        except OSError as exc:
            raise InvalidInputError('Cannot read %s in %s: %s' % (clean, self.label, exc.strerror or exc))
        try:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InvalidInputError('%s in %s is not a regular file' % (clean, self.label))
            if size is not None and info.st_size != size:
                raise _size_mismatch(what or clean, clean, info.st_size, size)
        except Exception:
            handle.close()
            raise
        return handle.read, handle.close

    def want(self, names: List[str], limit: Optional[int] = None) -> None:
        """Nothing to prepare: files are read in place."""

    def announce(self, names: List[str]) -> None:
        """Nothing to prepare: files are read in place."""


class _TarIndex:
    """The members of a tarball by cleaned name; links resolved within the tarball only."""

    label = 'the tarball'

    def __init__(self) -> None:
        self.members: Dict[str, Tuple[int, tarfile.TarInfo]] = {}  # cleaned name -> (ordinal, TarInfo); the last of a name wins, as in tar

    def add(self, ordinal: int, info: tarfile.TarInfo) -> None:
        clean = _clean(info.name)
        if not _outside(clean):
            self.members[clean] = (ordinal, info)

    def resolve(self, name: str) -> Optional[Tuple[str, int, tarfile.TarInfo]]:
        """``(cleaned name, ordinal, TarInfo)`` of the regular member ``name`` is or links to, None if absent."""
        asked = clean = _clean(name)
        for dummy in range(MAX_LINKS):
            found = self.members.get(clean)
            if found is None:
                return None
            ordinal, info = found
            if info.issym():
                target = None if info.linkname.startswith('/') else _clean(
                    posixpath.join(posixpath.dirname(clean), info.linkname))
            elif info.islnk():
                target = _clean(info.linkname)   # a hard link names another member of the tarball
            elif info.isfile() and not info.issparse():
                return clean, ordinal, info
            else:
                raise InvalidInputError('%s in %s is not a regular file' % (asked, self.label))
            if target is None or _outside(target):
                raise InvalidInputError('%s in %s is a link to %s, outside of it' % (asked, self.label, info.linkname),
                                        details={'file': asked, 'target': info.linkname})
            clean = target
        raise InvalidInputError('%s in %s is a chain of more than %d links' % (asked, self.label, MAX_LINKS))

    def size(self, name: str) -> Optional[int]:
        found = self.resolve(name)
        return None if found is None else found[2].size

    def _found(self, name: str, size: Optional[int], what: Optional[str]) -> Tuple[str, int, tarfile.TarInfo]:
        found = self.resolve(name)
        if found is None:
            raise InvalidInputError('%s has no file %s' % (self.label, name))
        if size is not None and found[2].size != size:
            raise _size_mismatch(what or name, name, found[2].size, size)
        return found


def _bounded_reader(handle: Any, size: int) -> Reader:
    """``read`` returning at most ``size`` bytes of ``handle`` in all."""
    remaining = [size]

    def read(amount: int) -> bytes:
        amount = min(amount, remaining[0])
        if amount <= 0:
            return b''
        data = handle.read(amount)
        remaining[0] -= len(data)
        return data
    return read


class TarFiles(_TarIndex):
    """Members of an uncompressed tarball, read in place (seek to the member's data)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.label = 'the archive %s' % path
        try:
            with tarfile.open(path, 'r:') as archive:
                for ordinal, info in enumerate(archive):
                    self.add(ordinal, info)
        except (tarfile.TarError, OSError) as exc:
            raise InvalidInputError('Cannot read the tarball %s: %s' % (path, exc))

    def open(self, name: str, size: Optional[int] = None, what: Optional[str] = None) -> Tuple[Reader, Closer]:
        info = self._found(name, size, what)[2]
        handle = open(self.path, 'rb')  # noqa: SIM115 - the caller closes it, through the Closer returned
        handle.seek(info.offset_data)
        return _bounded_reader(handle, info.size), handle.close

    def want(self, names: List[str], limit: Optional[int] = None) -> None:
        """Nothing to prepare: members are read in place."""

    def announce(self, names: List[str]) -> None:
        """Nothing to prepare: members are read in place."""


class StreamedTarFiles(_TarIndex):
    """Members of a compressed tarball, copied (never extracted) into ``tmpdir`` only when named.

    The tarball is read as a stream, once for its headers and then once per
    batch of members the loader asks for with :meth:`want`. A named member (or
    the regular member a link inside the tarball leads to) is copied, exactly
    its header's size, into ``tmpdir/member-<n>``, a name this reader chooses.
    Before a batch, the disk it needs is compared with what ``tmpdir`` has free.
    """

    def __init__(self, path: str, tmpdir: str) -> None:
        super().__init__()
        self.path = path
        self.tmpdir = tmpdir
        self.label = 'the archive %s' % path
        self.copies: Dict[int, str] = {}    # ordinal -> path of the copy in tmpdir
        self.pending: Set[int] = set()      # ordinals wanted and not copied yet
        self.lock = threading.Lock()
        self._stream(self._index)

    def _stream(self, visit: Callable[[int, tarfile.TarInfo, tarfile.TarFile], Any]) -> None:
        try:
            with tarfile.open(self.path, 'r|*') as archive:
                for ordinal, info in enumerate(archive):
                    if visit(ordinal, info, archive) is False:
                        break
        except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, _LZMAError) as exc:
            raise InvalidInputError('Cannot read the compressed tarball %s: %s' % (self.path, exc))

    def _index(self, ordinal: int, info: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        self.add(ordinal, info)

    def want(self, names: List[str], limit: Optional[int] = None) -> None:
        """Copy the regular members ``names`` lead to (those of at most ``limit`` bytes), in one pass."""
        with self.lock:
            for name in names:
                found = self.resolve(name)
                if found is not None and found[1] not in self.copies and (limit is None or found[2].size <= limit):
                    self.pending.add(found[1])
            self._copy_pending()

    def _copy_pending(self) -> None:
        if not self.pending:
            return
        wanted = set(self.pending)
        needed = sum(info.size for ordinal, info in self.members.values() if ordinal in wanted)
        free = shutil.disk_usage(self.tmpdir).free
        if needed > free:
            raise InvalidInputError('Reading %s needs %d bytes in the temporary directory %s; %d are free'
                                    % (self.path, needed, self.tmpdir, free))

        def visit(ordinal: int, info: tarfile.TarInfo, archive: tarfile.TarFile) -> bool:
            if ordinal in wanted:
                self.copies[ordinal] = self._copy(ordinal, info, archive)
                wanted.discard(ordinal)
            return bool(wanted)
        self._stream(visit)
        self.pending.clear()

    def _copy(self, ordinal: int, info: tarfile.TarInfo, archive: tarfile.TarFile) -> str:
        """Copy one member into a file named after its position; read errors mean a broken tarball."""
        target = os.path.join(self.tmpdir, 'member-%d' % ordinal)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
        read = _bounded_reader(archive.extractfile(info), info.size)
        written = 0
        try:
            out = os.fdopen(os.open(target, flags, 0o600), 'wb')
        except OSError as exc:
            raise self._write_error(info, exc)
        with out:
            while True:
                data = read(CHUNK_SIZE)
                if not data:
                    break
                try:
                    out.write(data)
                except OSError as exc:
                    raise self._write_error(info, exc)
                written += len(data)
        if written != info.size:
            raise InvalidInputError('%s ends inside %s' % (self.label, info.name))
        return target

    def _write_error(self, info: tarfile.TarInfo, exc: OSError) -> InvalidInputError:
        return InvalidInputError('Cannot copy %s of %s into the temporary directory %s: %s'
                                 % (info.name, self.path, self.tmpdir, exc.strerror or exc))

    def open(self, name: str, size: Optional[int] = None, what: Optional[str] = None) -> Tuple[Reader, Closer]:
        dummy, ordinal, info = self._found(name, size, what)
        with self.lock:
            if ordinal not in self.copies:
                self.pending.add(ordinal)   # with the other blobs the loader announced, in one pass
                self._copy_pending()
        handle = open(self.copies[ordinal], 'rb')  # noqa: SIM115 - the caller closes it, through the Closer returned
        return _bounded_reader(handle, info.size), handle.close

    def announce(self, names: List[str]) -> None:
        """The members read later, if at all (blobs): copied together when the first one is opened."""
        with self.lock:
            for name in names:
                found = self.resolve(name)
                if found is not None and found[1] not in self.copies:
                    self.pending.add(found[1])


def read_small(files: Any, name: str, what: str, size: Optional[int] = None) -> Optional[bytes]:
    """The bytes of a JSON document of the archive (at most MAX_JSON), None when there is no such file."""
    actual = files.size(name)
    if actual is None:
        return None
    if size is not None and actual != size:
        raise _size_mismatch(what, name, actual, size)
    if actual > MAX_JSON:
        raise InvalidInputError('%s (%s) is larger than %d bytes' % (what, name, MAX_JSON))
    read, close = files.open(name, actual, what)
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


def read_json(files: Any, name: str, what: str) -> Tuple[Any, Optional[bytes]]:
    raw = read_small(files, name, what)
    if raw is None:
        return None, None
    return parse_json(raw, '%s (%s)' % (what, name)), raw


def open_files(path: str, tmpdir: str) -> Any:
    """The reader for ``path``: a directory, an uncompressed tarball (in place) or a compressed one (streamed)."""
    if os.path.isdir(path):
        return DirectoryFiles(path, 'the layout %s' % path)
    if not os.path.isfile(path):
        raise InvalidInputError('The archive %s does not exist' % path)
    with open(path, 'rb') as handle:
        head = handle.read(6)
    if head.startswith(_ZSTD_MAGIC) and not hasattr(tarfile.TarFile, 'zstopen'):
        raise InvalidInputError('The archive %s is compressed with zstd, which the Python of this host cannot read; '
                                'decompress it first (zstd -d)' % path)
    if head.startswith(_COMPRESSED_MAGIC):
        files = StreamedTarFiles(path, tmpdir)
        files.want(['index.json', 'manifest.json'], MAX_JSON)
        return files
    return TarFiles(path)


class ArchiveBlobSource(BlobSource):
    """Blob bytes from the archive's files (or from compressed temporary files)."""

    def __init__(self, files: Any, paths: Dict[str, Tuple[Any, str]], name: str = 'the archive') -> None:
        self.files = files
        self.paths = paths      # digest -> (files, name)
        self.name = name

    def open(self, descriptor: Dict[str, Any]) -> Tuple[Reader, Closer]:
        """The blob's reader; a file of another size than the descriptor's is refused before any byte."""
        files, name = self.paths[descriptor['digest']]
        return files.open(name, descriptor.get('size'), 'The blob %s' % descriptor['digest'])


# -- selecting an image ------------------------------------------------------------------------
def _name_variants(name: str) -> Set[str]:
    """A reference and the spellings tools write for it (docker.io/library/, localhost/)."""
    name = name.strip()
    variants = {name}
    for prefix in ('docker.io/library/', 'docker.io/', 'localhost/', 'library/'):
        if name.startswith(prefix):
            variants.add(name[len(prefix):])
    if ':' not in name.rsplit('/', 1)[-1] and '@' not in name:
        variants |= set(v + ':latest' for v in list(variants))
    return variants


def _matches(wanted: str, names: List[Optional[str]]) -> bool:
    wanted_variants = _name_variants(wanted)
    return any(name and wanted_variants & _name_variants(name) for name in names)


def select_entry(entries: List[Dict[str, Any]], names_of: Callable[[Dict[str, Any]], List[Any]], archive_image: Any,
                 what: str) -> Dict[str, Any]:
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
def _blob_name(digest: str) -> str:
    algorithm, encoded = validate_digest(digest)
    return 'blobs/%s/%s' % (algorithm, encoded)


def _oci_manifest(files: Any, descriptor: Dict[str, Any], what: str) -> Manifest:
    digest: Any = descriptor.get('digest')
    validate_digest(digest, what='%s digest' % what)
    size = descriptor.get('size')
    raw = read_small(files, _blob_name(digest), 'The %s %s' % (what, digest), size if isinstance(size, int) else None)
    if raw is None:
        raise InvalidInputError('The archive has no blob for %s %s' % (what, digest))
    actual = compute_digest(raw, digest.split(':', 1)[0])
    if actual != digest:
        raise IntegrityError('The %s %s in the archive hashes to %s' % (what, digest, actual),
                             details={'expected_digest': digest, 'actual_digest': actual})
    return Manifest(raw, descriptor.get('mediaType') or descriptor.get('media_type'), digest=digest)


class ArchiveManifests(ManifestReader):
    """The manifests of an OCI layout or archive, by the descriptors that name them (for ``_image.walk``)."""

    def __init__(self, files: Any) -> None:
        self.files = files

    def prefetch(self, entries: List[Dict[str, Any]]) -> None:
        """The children of one index: their digests checked, their files read together (one pass)."""
        self.files.want([_blob_name(e['digest']) for e in entries], MAX_JSON)

    def get_manifest(self, entry: Dict[str, Any]) -> Manifest:
        return _oci_manifest(self.files, entry, 'child manifest')


def _blob_paths(files: Any, blobs: List[Dict[str, Any]]) -> Dict[str, Tuple[Any, str]]:
    """Where each blob is in the archive; a missing one, or one of another size, is refused now."""
    paths = {}
    for blob in blobs:
        name = _blob_name(blob['digest'])
        size = files.size(name)
        if size is None:
            raise InvalidInputError('The archive has no blob %s (%s %s)' % (name, blob['kind'], blob['digest']))
        if blob.get('size') is not None and size != blob['size']:
            raise _size_mismatch('The %s blob %s' % (blob['kind'], blob['digest']), name, size, blob['size'])
        paths[blob['digest']] = (files, name)
    files.announce([name for dummy, name in paths.values()])
    return paths


def load_oci(files: Any, index: Any, archive_image: Any, what: str) -> Tuple[ImagePlan, ArchiveBlobSource]:
    check_manifest(index, OCI_INDEX, 'index.json of %s' % what[4:])
    entries = index.get('manifests') or []

    def names(entry: Dict[str, Any]) -> List[Optional[str]]:
        annotations = entry.get('annotations') or {}
        return [annotations.get(REF_NAME), annotations.get(CONTAINERD_NAME)]

    entry = select_entry(entries, names, archive_image, what)
    if isinstance(entry.get('digest'), str):
        files.want([_blob_name(entry['digest'])], MAX_JSON)
    top = _oci_manifest(files, entry, 'manifest')
    if not top.is_index and not top.is_image:
        raise InvalidInputError('The selected manifest %s in %s has media type %s, which push does not support'
                                % (top.digest, what, top.media_type))
    plan = plan_from_walk(publishable(
        walk(ArchiveManifests(files), top),
        lambda node: 'The index %s in the archive lists the index %s, nested deeper than %d levels; push does not '
        'follow it' % (node.parent, node.digest, MAX_INDEX_DEPTH),
        lambda node: 'The index %s in the archive lists %s of media type %s, which push does not support'
        % (node.parent, node.digest, node.manifest.media_type if node.manifest else None)))
    return plan, ArchiveBlobSource(files, _blob_paths(files, plan.blobs), what[4:])


# -- docker-archive -------------------------------------------------------------------------
def compress_layer(files: Any, name: str, tmpdir: str, diff_id: Optional[str] = None,
                   number: int = 0) -> Tuple[str, int, Optional[str]]:
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


def load_docker(files: Any, manifest_list: Any, archive_image: Any, tmpdir: str,
                what: str) -> Tuple[ImagePlan, ArchiveBlobSource]:
    if not isinstance(manifest_list, list):
        raise InvalidInputError('%s: manifest.json is not a list' % what)
    entries = [e for e in manifest_list if isinstance(e, dict)]
    entry = select_entry(entries, lambda e: list(e.get('RepoTags') or []), archive_image, what)
    config_name = entry.get('Config')
    layer_names = entry.get('Layers') or []
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise InvalidInputError('%s: manifest.json has no Config or Layers for the selected image' % what)
    config_size = files.size(config_name)
    if config_size is not None and config_size <= MAX_JSON:
        files.want([config_name] + [n for n in layer_names if isinstance(n, str)])  # one pass
    config_raw = read_small(files, config_name, 'the image config')
    if config_raw is None:
        raise InvalidInputError('%s has no file %s (the image config)' % (what, config_name))
    config_digest = compute_digest(config_raw)
    config = parse_json(config_raw, 'The image config %s in %s' % (config_name, what))
    platform = check_config(config, config_digest)
    diff_ids = (config.get('rootfs') or {}).get('diff_ids') or []
    if len(diff_ids) != len(layer_names):
        raise IntegrityError('The image config in %s lists %d layers, manifest.json %d'
                             % (what, len(diff_ids), len(layer_names)))
    config_path = os.path.join(tmpdir, 'config.json')
    with open(config_path, 'wb') as handle:
        handle.write(config_raw)
    local = DirectoryFiles(tmpdir, 'the temporary directory')
    paths = {config_digest: (local, 'config.json')}
    layers = []
    compressed = False
    for index, name in enumerate(layer_names):
        if not isinstance(name, str) or files.size(name) is None:
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
    plan = plan_from_walk(list(walk(ArchiveManifests(files), top)), str(platform) if platform.os else None)
    if compressed:
        plan.layer_compression = layer_compression()
    return plan, ArchiveBlobSource(files, paths, what[4:])


def layer_compression() -> str:
    """How this host compresses layers: the digests of compressed layers depend on it."""
    return 'gzip level %d, zlib %s' % (GZIP_LEVEL, zlib.ZLIB_RUNTIME_VERSION)


def load_image(path: str, tmpdir: str, archive_image: Any = None) -> Tuple[ImagePlan, ArchiveBlobSource, str]:
    """``(plan, source, format)`` for the image archive at ``path``."""
    files = open_files(path, tmpdir)
    what = 'The archive %s' % path
    try:
        index, dummy = read_json(files, 'index.json', 'index.json')
        if isinstance(index, dict) and index.get('manifests') is not None:
            plan, source = load_oci(files, index, archive_image, what)
            kind = 'oci-layout' if os.path.isdir(path) else 'oci-archive'
            return plan, source, kind
        manifest_list, dummy = read_json(files, 'manifest.json', 'manifest.json')
        if manifest_list is not None:
            plan, source = load_docker(files, manifest_list, archive_image, tmpdir, what)
            return plan, source, 'docker-archive'
    except (OSError, tarfile.TarError) as exc:
        raise RegistryError('Reading %s failed: %s' % (path, exc))
    raise InvalidInputError('%s is neither an OCI image layout (no index.json) nor a docker-archive '
                            '(no manifest.json)' % path)


# -- push: an archive published to a registry ------------------------------------------------
def push_archive(client: Any, reference: Any, path: str, ctx: RunContext, archive_image: Any = None,
                 expected_digest: Optional[str] = None, overwrite: bool = True,
                 tmpdir: Optional[str] = None) -> PushOutcome:
    """Publish the image of the archive at ``path`` under ``reference``; the temporary files go afterwards."""
    workdir = tempfile.mkdtemp(prefix='push-', dir=tmpdir)
    try:
        plan, source, kind = load_image(path, workdir, archive_image)
        check_expected_digest(plan.digest, expected_digest, path)
        sync, stats = publish(client, reference, plan, source, ctx, overwrite=overwrite)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return PushOutcome(reference, plan, sync, stats, ctx.diff_mode, archive_format=kind)
