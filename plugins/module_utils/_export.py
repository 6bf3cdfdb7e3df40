# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Images out of a registry into files (``export``): an OCI image layout, an OCI archive, a docker-archive.

Each image is planned as ``copy`` plans it (``_copy.source_plan`` over ``_image.walk``,
a platform subset made by ``subset_index``), and every digest of the plan is validated
before anything is written, so a hostile registry cannot name a file outside ``dest``.

- An OCI layout (:class:`Layout`) is resumable: each blob file is hashed where it is, and
  only the missing or damaged ones are fetched (``fetch_blob`` into a ``BlobFile``:
  verified while written, renamed into place). Manifests follow, and ``index.json``
  last, merged with the one found (other refs kept), so the index never names an image
  whose files are incomplete.
- An archive (:class:`ArchiveWriter`) is a tarball of fixed headers (sorted names,
  mtime 0, uid/gid 0, no owner names, fixed modes, GNU format): the same plan always gives
  the same bytes. An existing ``dest`` is first read as a stream against the plan, header
  by header and member by member (hashed); when it is exactly what would be written,
  nothing is fetched. Otherwise the blobs are streamed from the registry into a temporary
  file next to ``dest``, verified on the way, and the file is renamed over ``dest``.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from typing import IO, Any, Dict, List, Literal, Optional, Tuple

from ansible_collections.imagelayers.registry.plugins.module_utils._archive import CONTAINERD_NAME, REF_NAME
from ansible_collections.imagelayers.registry.plugins.module_utils._blobs import (
    CHUNK_SIZE,
    BlobCheck,
    BlobFile,
    FetchResult,
    blob_path,
    default_file_mode,
    fetch_blob,
    verify_file,
    write_bytes,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._copy import parse_platforms, source_plan, subset_index
from ansible_collections.imagelayers.registry.plugins.module_utils._digest import validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    OCI_INDEX,
    Manifest,
    Platform,
    check_config,
    parse_json,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import check_workers, run_all
from ansible_collections.imagelayers.registry.plugins.module_utils._publish import ImagePlan

FORMATS = ('oci-layout', 'oci-archive', 'docker-archive')
# What an image is called in index.json (org.opencontainers.image.ref.name): its tag (or digest), as skopeo's
# oci:DIR:TAG expects, or its repository path with it, so one layout can hold the same tag of several repositories.
REF_NAME_STYLES = ('tag', 'repository')
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
MAX_INDEX_JSON = 64 * 1024 * 1024
TAR_FORMAT: Literal[1] = tarfile.GNU_FORMAT    # deterministic; sizes over 8 GiB in base-256, long names in extra headers
FILE_MODE = 0o644
DIR_MODE = 0o755
# docker-archive layer files are kept as the registry serves them (podman and docker load decompress them).
LAYER_SUFFIXES = (('zstd', '.tar.zst'), ('gzip', '.tar.gz'))


# -- the plan of one image -----------------------------------------------------------
@dataclass
class ExportImage:
    """One image to export: its reference, the name it gets in the index, and the plan of its files."""

    reference: Any
    client: Any
    plan: ImagePlan
    ref_name: str

    @property
    def manifests(self) -> List[Manifest]:
        """The top manifest and every child manifest (each once)."""
        unique = {self.plan.top.digest: self.plan.top}
        for manifest in self.plan.children:
            unique.setdefault(manifest.digest, manifest)
        return list(unique.values())

    def descriptor(self) -> Dict[str, Any]:
        """The index.json entry naming the image."""
        top = self.plan.top
        return {'mediaType': top.media_type, 'digest': top.digest, 'size': top.size,
                'annotations': {CONTAINERD_NAME: self.reference.name, REF_NAME: self.ref_name}}

    def to_result(self) -> Dict[str, Any]:
        platforms = [image['platform'] for image in self.plan.images if image.get('platform')]
        return {'reference': self.reference.name, 'ref_name': self.ref_name, 'digest': self.plan.digest,
                'media_type': self.plan.top.media_type, 'platforms': platforms,
                'blobs': len(self.manifests) + len(self.plan.blobs)}


def _top(client: Any, reference: Any, wanted: Optional[List[Platform]]) -> Tuple[Manifest, bool]:
    """The manifest to export (the image's, or its platform subset) and whether it is a subset."""
    try:
        top = client.get_manifest(reference.repository, reference.reference)
    except NotFoundError as error:
        raise NotFoundError('The image %s does not exist' % reference.name, url=error.url)
    if wanted and top.is_index:
        new_index, single = subset_index(top, wanted)
        if single is not None:
            return client.get_manifest(reference.repository, single['digest']), True
        if new_index is not None:
            return new_index, True
    return top, False


def _check_single_platform(client: Any, reference: Any, top: Manifest, wanted: List[Platform],
                           layout: Optional[str]) -> None:
    """A single-platform image must be one of the platforms asked for, as copy requires: its config says
    which it is, read from the layout when a verified copy is there (a rerun fetches no blob), else fetched."""
    descriptor = top.config_descriptor()
    if descriptor is None:
        raise IntegrityError('The image manifest %s has no config descriptor' % top.digest)
    validate_digest(descriptor['digest'], what='config digest in %s' % reference.name)
    raw = _layout_config(layout)(descriptor) if layout is not None and os.path.isdir(layout) else None
    if raw is not None:
        config = parse_json(raw, 'The image config %s in %s' % (descriptor['digest'], layout))
    else:
        config = client.get_json_blob(reference.repository, descriptor, what='image config')
    declared = check_config(config, descriptor['digest'])
    if not any(platform.matches(declared) for platform in wanted):
        raise InvalidInputError('%s is a single-platform image for %s, not for %s'
                                % (reference.name, declared, ', '.join(str(p) for p in wanted)))


def ref_name_of(reference: Any, digest: str, style: str = 'tag') -> str:
    """The image's name in the export: ``1.4.2`` or ``team/app:1.4.2`` (by digest: the digest, ``team/app@<digest>``)."""
    if style == 'repository':
        return '%s%s%s' % (reference.repository, ':' if reference.tag else '@', reference.tag or digest)
    return reference.tag or digest


def plan_image(client: Any, reference: Any, wanted: Optional[List[Platform]],
               layout: Optional[str] = None, naming: str = 'tag') -> ExportImage:
    """The plan of one image, every digest in it validated (none can name a path outside the layout).

    ``layout`` is the OCI layout being written to, where a platform check may find the config;
    ``naming`` one of :data:`REF_NAME_STYLES`.
    """
    top, subset = _top(client, reference, wanted)
    if wanted and not subset and top.is_image:
        _check_single_platform(client, reference, top, wanted, layout)
    plan = source_plan(client, reference.repository, top, None)
    image = ExportImage(reference, client, plan, ref_name_of(reference, top.digest, naming))
    for manifest in image.manifests:
        validate_digest(manifest.digest, what='manifest digest')
    for blob in plan.blobs:
        validate_digest(blob['digest'], what='%s digest in %s' % (blob.get('kind', 'blob'), reference.name))
    return image


def unique_images(images: List[ExportImage]) -> List[ExportImage]:
    """The images, each ref name once: two images under one name is a mistake the user must settle."""
    by_name: Dict[str, ExportImage] = {}
    for image in images:
        known = by_name.get(image.ref_name)
        if known is not None and known.plan.digest != image.plan.digest:
            raise InvalidInputError('%s and %s would both be named %s in the export, with different digests (%s, %s); '
                                    'export them to separate destinations, name one by digest, or (two '
                                    'repositories) set ref_names to repository'
                                    % (known.reference.name, image.reference.name, image.ref_name,
                                       known.plan.digest, image.plan.digest))
        by_name.setdefault(image.ref_name, image)
    return list(by_name.values())


def single_platform(image: ExportImage, read: Any) -> None:
    """Fill in the platform of a single image from its config, read by ``read(config descriptor)`` from what
    was exported (the walk of a single image reads no config); left empty when it cannot be read there."""
    details = image.plan.images
    config = image.plan.top.config_descriptor() if image.plan.top.is_image else None
    if len(details) != 1 or details[0].get('platform') or config is None:
        return
    try:
        raw = read(config)
        platform = check_config(json.loads(raw.decode('utf-8')), config['digest']) if raw is not None else None
    except (OSError, ValueError, KeyError, tarfile.TarError, RegistryError):
        return
    if platform is not None and platform.os:
        details[0]['platform'] = str(platform)


def _layout_config(root: str) -> Any:
    def read(config: Dict[str, Any]) -> Optional[bytes]:
        if local_state(root, config['digest'], config.get('size')) != 'ok':
            return None
        with open(blob_path(root, config['digest']), 'rb') as handle:
            return handle.read()
    return read


def _archive_config(path: str, members: List[Member]) -> Any:
    def read(config: Dict[str, Any]) -> Optional[bytes]:
        name = next((m.name for m in members if m.digest == config['digest']), None)
        if name is None or not os.path.isfile(path):
            return None
        with tarfile.open(path, 'r:') as archive:
            handle = archive.extractfile(name)
            return handle.read(MAX_INDEX_JSON) if handle is not None else None
    return read


def _blob_jobs(images: List[ExportImage]) -> List[Tuple[ExportImage, Dict[str, Any]]]:
    """Every config and layer to fetch, each digest once, with the image (its client) it comes from."""
    seen = set()
    jobs = []
    for image in images:
        for blob in image.plan.blobs:
            if blob['digest'] not in seen:
                seen.add(blob['digest'])
                jobs.append((image, blob))
    return jobs


# -- counts and the result --------------------------------------------------------------
class ExportStats:
    """Thread-safe counts of one export."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fetched = 0
        self.present = 0
        self.bytes_transferred = 0
        self.replaced: List[str] = []
        self.manifests_written = 0

    def add(self, fetched: int = 0, present: int = 0, transferred: int = 0, replaced: Optional[str] = None) -> None:
        with self._lock:
            self.fetched += fetched
            self.present += present
            self.bytes_transferred += transferred
            if replaced is not None:
                self.replaced.append(replaced)


@dataclass
class ExportOutcome:
    """What ``export`` did (or would do, in check mode); ``to_result()`` is the module result."""

    dest: str
    format: str
    images: List[ExportImage]
    stats: ExportStats
    changed: bool
    before: Dict[str, Any] = field(default_factory=dict)
    after: Dict[str, Any] = field(default_factory=dict)
    diff_mode: bool = False

    def to_result(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {
            'changed': self.changed, 'dest': self.dest, 'format': self.format,
            'images': [image.to_result() for image in self.images],
            'blobs_fetched': self.stats.fetched, 'blobs_present': self.stats.present,
            'blobs_replaced': sorted(self.stats.replaced), 'manifests_written': self.stats.manifests_written,
            'bytes_transferred': self.stats.bytes_transferred,
        }
        if self.diff_mode:
            result['diff'] = {'before': self.before, 'after': self.after,
                              'before_header': self.dest, 'after_header': self.dest}
        return result


# -- an OCI layout directory --------------------------------------------------------------
def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def layout_root(dest: str) -> str:
    """``dest`` made absolute; refused when it is not a directory, or when its ``blobs`` (or
    ``blobs/sha256``) is a link leading out of it: every blob would be written there."""
    root = os.path.abspath(dest)
    if os.path.lexists(root) and not os.path.isdir(root):
        raise InvalidInputError('dest %s exists and is not a directory (an OCI layout is a directory)' % dest)
    real_root = os.path.realpath(root)
    for sub in ('blobs', os.path.join('blobs', 'sha256')):
        path = os.path.join(root, sub)
        if os.path.lexists(path):
            real = os.path.realpath(path)
            if not _inside(real, real_root):
                raise InvalidInputError('%s in dest is a link to %s, outside of dest; refusing to write there'
                                        % (sub, real), details={'file': path, 'target': real})
            if not os.path.isdir(real):
                raise InvalidInputError('%s in dest %s is not a directory' % (sub, dest))
    return root


def _foreign_directory(root: str) -> bool:
    """True for a directory with files of its own and no oci-layout file: not a layout to add to."""
    if not os.path.isdir(root) or os.path.exists(os.path.join(root, 'oci-layout')):
        return False
    return any(not name.startswith('.') for name in os.listdir(root))


def _read_index(root: str) -> Optional[Dict[str, Any]]:
    """The layout's index.json, None when there is none; a broken one is refused, not overwritten."""
    path = os.path.join(root, 'index.json')
    if not os.path.lexists(path):
        if _foreign_directory(root):
            raise InvalidInputError('dest %s is a directory with other files and no OCI layout (no index.json, '
                                    'no oci-layout); refusing to write into it' % root)
        return None
    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > MAX_INDEX_JSON:
        raise InvalidInputError('index.json in dest %s is not a regular file of at most %d bytes'
                                % (root, MAX_INDEX_JSON))
    try:
        with open(path, 'rb') as handle:
            index = json.loads(handle.read().decode('utf-8'))
    except (ValueError, OSError) as exc:
        raise InvalidInputError('index.json in dest %s cannot be read: %s; refusing to overwrite it' % (root, exc))
    if not isinstance(index, dict) or not isinstance(index.get('manifests', []), list):
        raise InvalidInputError('index.json in dest %s is not an OCI image index; refusing to overwrite it' % root)
    return index


def ref_names(index: Optional[Dict[str, Any]]) -> Dict[str, str]:
    """``{ref name: digest}`` of an index.json (entries without a name left out)."""
    names = {}
    for entry in (index or {}).get('manifests') or []:
        name = ((entry.get('annotations') or {}) if isinstance(entry, dict) else {}).get(REF_NAME)
        if isinstance(name, str):
            names[name] = entry.get('digest')
    return names


def merged_index(index: Optional[Dict[str, Any]], images: List[ExportImage]) -> Dict[str, Any]:
    """index.json with each image under its ref name: an entry of that name replaced in place, new ones
    appended; every other entry (other refs, unnamed) kept as it was."""
    document = dict(index) if index else {'schemaVersion': 2, 'mediaType': OCI_INDEX}
    ours = {image.ref_name: image.descriptor() for image in images}
    entries = []
    for entry in (index or {}).get('manifests') or []:
        name = ((entry.get('annotations') or {}) if isinstance(entry, dict) else {}).get(REF_NAME)
        entries.append(ours.pop(name) if isinstance(name, str) and name in ours else entry)
    entries.extend(ours[image.ref_name] for image in images if image.ref_name in ours)
    document['manifests'] = entries
    return document


def blob_count(root: str) -> int:
    """Files under blobs/sha256 of the layout (temporary files left out)."""
    directory = os.path.join(root, 'blobs', 'sha256')
    try:
        return len([name for name in os.listdir(directory) if not name.startswith('.')])
    except OSError:
        return 0


def local_state(root: str, digest: str, size: Optional[int]) -> str:
    """``ok``, ``absent`` or ``mismatch`` for the blob file of ``digest``; a link is never read (damaged)."""
    path = blob_path(root, digest)
    if os.path.islink(path):
        return 'mismatch'
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        raise InvalidInputError('%s in dest is not a regular file' % path)
    return verify_file(path, digest, size)[0]


class Layout:
    """Write images into the OCI layout at ``root``: missing or damaged blobs, manifests, then index.json."""

    def __init__(self, root: str, images: List[ExportImage], ctx: RunContext) -> None:
        self.root = root
        self.images = images
        self.ctx = ctx
        self.stats = ExportStats()
        self.changed = False

    def _blob(self, job: Tuple[ExportImage, Dict[str, Any]]) -> None:
        image, blob = job
        digest, size = blob['digest'], blob.get('size')
        state = local_state(self.root, digest, size)
        if state == 'ok':
            self.stats.add(present=1)
            return
        replaced = digest if state == 'mismatch' else None
        if self.ctx.check_mode:
            self.stats.add(fetched=1, transferred=size or 0, replaced=replaced)
            return
        result = FetchResult()
        try:
            with BlobFile(self.root, digest) as blob_file:
                fetch_blob(image.client, image.reference.repository, digest, size, sink=blob_file,
                           retries=self.ctx.retries, result=result,
                           what='%s %s of %s' % (blob.get('kind', 'blob'), digest, image.reference.name))
                blob_file.commit()
        finally:
            self.stats.add(transferred=result.bytes_transferred)
        self.stats.add(fetched=1, replaced=replaced)

    def fetch_blobs(self) -> None:
        """Every config and layer in place, the largest first; the first fetch alone (token, scheme)."""
        jobs = sorted(_blob_jobs(self.images), key=lambda job: -(job[1].get('size') or 0))
        for image in self.images:
            image.client.api.http.ensure_pool_size(self.ctx.workers)
        for call in run_all(self._blob, jobs, self.ctx.workers):
            if call.error is not None:
                raise call.error

    def write_manifests(self) -> None:
        unique = {m.digest: m for image in self.images for m in image.manifests}
        for manifest in unique.values():
            state = local_state(self.root, manifest.digest, manifest.size)
            if state == 'ok':
                continue
            if state == 'mismatch':
                self.stats.add(replaced=manifest.digest)
            self.stats.manifests_written += 1
            if not self.ctx.check_mode:
                write_bytes(self.root, manifest.digest, manifest.raw)

    def write_file(self, name: str, data: bytes) -> bool:
        """Put ``data`` at ``root/name`` (temporary file, fsync, rename) unless it is there; whether it was not."""
        path = os.path.join(self.root, name)
        if not os.path.islink(path) and os.path.isfile(path):
            with open(path, 'rb') as handle:
                if handle.read(len(data) + 1) == data:
                    return False
        if not self.ctx.check_mode:
            atomic_write(path, data)
        return True

    def run(self, index: Optional[Dict[str, Any]]) -> None:
        if not self.ctx.check_mode:
            for sub in ('blobs', os.path.join('blobs', 'sha256')):
                _make_directory(os.path.join(self.root, sub))
        self.fetch_blobs()
        self.write_manifests()
        layout_changed = self.write_file('oci-layout', OCI_LAYOUT)
        document = merged_index(index, self.images)
        index_changed = document != index and self.write_file('index.json', index_bytes(document))
        self.changed = bool(self.stats.fetched or self.stats.manifests_written or self.stats.replaced
                            or layout_changed or index_changed)


def index_bytes(document: Dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(',', ':')).encode('utf-8')


def _make_directory(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise RegistryError('Cannot create the directory %s: %s' % (path, exc.strerror or exc))


def atomic_write(path: str, data: bytes) -> None:
    """``data`` at ``path`` through a temporary file in the same directory: fsync, then rename."""
    directory = os.path.dirname(path)
    _make_directory(directory)
    fd, temp_path = tempfile.mkstemp(prefix='.tmp-', suffix='.partial', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, default_file_mode())
        os.replace(temp_path, path)
    except OSError as exc:
        _unlink(temp_path)
        raise RegistryError('Cannot write %s: %s' % (path, exc.strerror or exc))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def export_layout(dest: str, images: List[ExportImage], ctx: RunContext) -> ExportOutcome:
    root = layout_root(dest)
    index = _read_index(root)
    blobs_before = blob_count(root)
    before = {'refs': ref_names(index), 'blobs': blobs_before}
    layout = Layout(root, images, ctx)
    layout.run(index)
    for image in images:
        single_platform(image, _layout_config(root))
    after_blobs = blobs_before + layout.stats.fetched + layout.stats.manifests_written - len(layout.stats.replaced)
    after = {'refs': ref_names(merged_index(index, images)), 'blobs': after_blobs}
    return ExportOutcome(root, 'oci-layout', images, layout.stats, layout.changed, before, after, ctx.diff_mode)


# -- archives: deterministic tarballs ------------------------------------------------------
@dataclass
class Member:
    """One member of an archive: a directory, known bytes (``data``), or a blob fetched by ``digest``."""

    name: str
    size: int = 0
    data: Optional[bytes] = None
    digest: Optional[str] = None
    image: Optional[ExportImage] = None
    directory: bool = False

    def header(self) -> bytes:
        """The member's tar header: fixed mode, mtime 0, uid/gid 0, no owner names."""
        info = tarfile.TarInfo(self.name)
        info.size = 0 if self.directory else self.size
        info.mtime = 0
        info.mode = DIR_MODE if self.directory else FILE_MODE
        info.uid = info.gid = 0
        info.uname = info.gname = ''
        info.type = tarfile.DIRTYPE if self.directory else tarfile.REGTYPE
        return info.tobuf(TAR_FORMAT, 'utf-8', 'strict')


def padding(size: int) -> bytes:
    return b'\0' * (-size % tarfile.BLOCKSIZE)


def trailer(offset: int) -> bytes:
    """Two zero blocks, then zeros up to a whole record, as tarfile ends an archive."""
    end = offset + 2 * tarfile.BLOCKSIZE
    return b'\0' * (2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE))


def archive_size(members: List[Member]) -> int:
    offset = sum(len(m.header()) + m.size + len(padding(m.size)) for m in members)
    return offset + len(trailer(offset))


def _blob_member(name: str, image: ExportImage, descriptor: Dict[str, Any]) -> Member:
    size = descriptor.get('size')
    if not isinstance(size, int):
        raise InvalidInputError('The blob %s of %s has no size; an archive needs it'
                                % (descriptor['digest'], image.reference.name))
    return Member(name, size, digest=descriptor['digest'], image=image)


def oci_archive_members(images: List[ExportImage]) -> List[Member]:
    """The members of an OCI archive of ``images``, sorted by name."""
    members = [Member('blobs', directory=True), Member('blobs/sha256', directory=True),
               Member('oci-layout', len(OCI_LAYOUT), OCI_LAYOUT)]
    named = {}
    for image in images:
        for manifest in image.manifests:
            named[manifest.digest] = Member(_blob_name(manifest.digest), manifest.size, manifest.raw)
    for image, blob in _blob_jobs(images):
        named.setdefault(blob['digest'], _blob_member(_blob_name(blob['digest']), image, blob))
    index = index_bytes(merged_index(None, images))
    members.extend(named.values())
    members.append(Member('index.json', len(index), index))
    return sorted(members, key=lambda m: m.name)


def _blob_name(digest: str) -> str:
    algorithm, encoded = validate_digest(digest)
    return 'blobs/%s/%s' % (algorithm, encoded)


def layer_file_name(descriptor: Dict[str, Any]) -> str:
    """``<hex>.tar``, ``.tar.gz`` or ``.tar.zst`` by the layer's media type: the bytes are the registry's."""
    media_type = descriptor.get('media_type') or descriptor.get('mediaType') or ''
    suffix = next((s for marker, s in LAYER_SUFFIXES if marker in media_type), '.tar')
    return validate_digest(descriptor['digest'])[1] + suffix


def docker_archive_members(image: ExportImage) -> List[Member]:
    """config ``<hex>.json``, layers as served, ``manifest.json`` ([{Config, RepoTags, Layers}]), sorted."""
    top = image.plan.top
    if not top.is_image:
        raise InvalidInputError('%s is a multi-platform index (%s); a docker-archive holds one image: select one '
                                'platform with platforms' % (image.reference.name, ', '.join(
                                    i['platform'] for i in image.plan.images if i.get('platform'))))
    config = top.config_descriptor()
    if config is None:
        raise InvalidInputError('The image manifest %s of %s has no config' % (top.digest, image.reference.name))
    layers = [b for b in top.blob_descriptors() if b['kind'] == 'layer']
    if any(b['digest'] not in {d['digest'] for d in image.plan.blobs} for b in layers):
        raise InvalidInputError('%s has non-distributable (foreign) layers, which a docker-archive cannot leave out'
                                % image.reference.name)
    config_name = validate_digest(config['digest'])[1] + '.json'
    layer_names = [layer_file_name(b) for b in layers]
    manifest = json.dumps([{'Config': config_name, 'RepoTags': _repo_tags(image), 'Layers': layer_names}],
                          separators=(',', ':')).encode('utf-8')
    members = {config_name: _blob_member(config_name, image, config)}
    for name, blob in zip(layer_names, layers):
        members.setdefault(name, _blob_member(name, image, blob))
    listed = list(members.values()) + [Member('manifest.json', len(manifest), manifest)]
    return sorted(listed, key=lambda m: m.name)


def matches(path: str, members: List[Member]) -> bool:
    """True when the file at ``path`` is exactly the archive of ``members``: every header and padding
    compared byte for byte, every member's bytes hashed against the plan; read as a stream, once."""
    try:
        if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) != archive_size(members):
            return False
        with open(path, 'rb') as handle:
            offset = 0
            for member in members:
                header = member.header()
                if handle.read(len(header)) != header or not _member_matches(handle, member):
                    return False
                offset += len(header) + member.size + len(padding(member.size))
            end = trailer(offset)
            return handle.read(len(end) + 1) == end
    except OSError:
        return False


def _member_matches(handle: IO[bytes], member: Member) -> bool:
    if member.data is not None:
        ok = handle.read(member.size) == member.data
    elif member.digest is not None:
        check = BlobCheck(member.digest, member.size)
        remaining = member.size
        while remaining:
            chunk = handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                return False
            check.update(chunk)
            remaining -= len(chunk)
        ok = check.ok
    else:
        ok = True
    pad = padding(member.size)
    return ok and handle.read(len(pad)) == pad


class _TarSink:
    """fetch_blob's sink: verified chunks appended to the archive being written."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def write(self, chunk: Any) -> None:
        self.handle.write(chunk)


class ArchiveWriter:
    """Write ``members`` into a temporary file next to ``dest``, then rename it over ``dest``."""

    def __init__(self, dest: str, members: List[Member], ctx: RunContext, stats: ExportStats) -> None:
        self.dest = dest
        self.members = members
        self.ctx = ctx
        self.stats = stats

    def _member(self, handle: IO[bytes], member: Member) -> None:
        handle.write(member.header())
        if member.data is not None:
            handle.write(member.data)
        elif member.digest is not None and member.image is not None:
            image = member.image
            result = FetchResult()
            try:
                fetch_blob(image.client, image.reference.repository, member.digest, member.size,
                           sink=_TarSink(handle), retries=self.ctx.retries, result=result,
                           what='blob %s of %s' % (member.digest, image.reference.name))
            finally:
                self.stats.add(transferred=result.bytes_transferred)
            self.stats.add(fetched=1)
        handle.write(padding(member.size))

    def write(self) -> None:
        directory = os.path.dirname(self.dest)
        _make_directory(directory)
        fd, temp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(self.dest), suffix='.partial',
                                         dir=directory)
        try:
            with os.fdopen(fd, 'wb') as handle:
                offset = 0
                for member in self.members:
                    self._member(handle, member)
                    offset += len(member.header()) + member.size + len(padding(member.size))
                handle.write(trailer(offset))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_path, default_file_mode())
            os.replace(temp_path, self.dest)
        except OSError as exc:
            _unlink(temp_path)
            raise RegistryError('Cannot write the archive %s: %s' % (self.dest, exc.strerror or exc))
        except BaseException:
            _unlink(temp_path)
            raise


def _archive_summary(members: List[Member], images: List[ExportImage], fmt: str) -> Dict[str, Any]:
    if fmt == 'oci-archive':
        refs = {image.ref_name: image.plan.digest for image in images}
    else:
        refs = {tag: images[0].plan.digest for tag in _repo_tags(images[0])}
    return {'refs': refs, 'blobs': len([m for m in members if m.digest is not None
                                        or (not m.directory and m.name.startswith('blobs/'))])}


def _repo_tags(image: ExportImage) -> List[str]:
    reference = image.reference
    return ['%s:%s' % (reference.repository_name, reference.tag)] if reference.tag else []


def check_dest(dest: str, fmt: str) -> str:
    """``dest`` made absolute, when the format can be written there (see :func:`layout_root`)."""
    if fmt == 'oci-layout':
        return layout_root(dest)
    path = os.path.abspath(dest)
    if os.path.isdir(path):
        raise InvalidInputError('dest %s is a directory; format=%s writes a file' % (dest, fmt))
    return path


def export_archive(dest: str, images: List[ExportImage], fmt: str, ctx: RunContext) -> ExportOutcome:
    path = check_dest(dest, fmt)
    members = oci_archive_members(images) if fmt == 'oci-archive' else docker_archive_members(images[0])
    stats = ExportStats()
    after = _archive_summary(members, images, fmt)
    blobs = [m for m in members if m.digest is not None]
    if matches(path, members):
        stats.add(present=len(blobs))
        for image in images:
            single_platform(image, _archive_config(path, members))
        return ExportOutcome(path, fmt, images, stats, False, after, after, ctx.diff_mode)
    before = {'refs': {}, 'blobs': 0, 'exists': os.path.lexists(path)}
    if ctx.check_mode:
        for member in blobs:
            stats.add(fetched=1, transferred=member.size)
    else:
        ArchiveWriter(path, members, ctx, stats).write()
        for image in images:
            single_platform(image, _archive_config(path, members))
    return ExportOutcome(path, fmt, images, stats, True, before, after, ctx.diff_mode)


# -- the operation ----------------------------------------------------------------------
def export_images(targets: List[Tuple[Any, Any]], dest: str, fmt: str = 'oci-layout',
                  ctx: Optional[RunContext] = None, platforms: Optional[List[str]] = None,
                  naming: str = 'tag') -> ExportOutcome:
    """Export the images of ``targets`` (``(client, reference)`` pairs) to ``dest`` in format ``fmt``, each
    named in the index by ``naming`` (the module's ``ref_names``, one of :data:`REF_NAME_STYLES`)."""
    ctx = ctx or RunContext()
    check_workers(ctx.workers)
    if fmt not in FORMATS:
        raise InvalidInputError('format must be one of %s, got %r' % (', '.join(FORMATS), fmt))
    if naming not in REF_NAME_STYLES:
        raise InvalidInputError('ref_names must be one of %s, got %r' % (', '.join(REF_NAME_STYLES), naming))
    if not targets:
        raise InvalidInputError('images is empty: name at least one image to export')
    if fmt == 'docker-archive' and len(targets) > 1:
        raise InvalidInputError('A docker-archive holds one image; %d were given (use oci-layout or oci-archive for '
                                'several)' % len(targets))
    wanted = parse_platforms(platforms)
    path = check_dest(dest, fmt)  # before any request
    layout = path if fmt == 'oci-layout' else None
    images = unique_images([plan_image(client, reference, wanted, layout, naming) for client, reference in targets])
    if fmt == 'oci-layout':
        return export_layout(dest, images, ctx)
    return export_archive(dest, images, fmt, ctx)
