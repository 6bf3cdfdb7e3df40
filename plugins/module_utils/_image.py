# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The image graph, walked once: from a manifest to every manifest, config and layer it leads to.

:func:`walk` is the one walker of this collection. ``inspect`` (``manifest_info``),
``blob_verify``, ``copy`` and the archive reader of ``push`` all use it, each
deciding what a problem means for it: blob_verify reports a child manifest that
cannot be read as one bad item and goes on, copy and push fail, inspect stops at
the one platform it describes. What a descriptor *is* (its kind, the platforms
that reach it, whether it is foreign, the manifest that lists it) is told here,
once, so that the four agree.

Manifests come from a :class:`ManifestReader`: a repository of a registry
(:class:`RepositoryManifests`) or the files of an OCI layout or archive.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    MAX_INDEX_DEPTH,
    Manifest,
    Platform,
    accepted_suffix,
    platform_label,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import parallel_map

# Media types of foreign (non-distributable) layers contain one of these: registries do not serve them,
# their ``urls`` do; they are neither pushed nor expected in a registry.
FOREIGN_MARKERS = ('foreign', 'nondistributable')


def is_foreign(descriptor: Dict[str, Any]) -> bool:
    """True for a non-distributable layer: it has ``urls`` and a foreign media type."""
    media_type = descriptor.get('media_type') or descriptor.get('mediaType') or ''
    return bool(descriptor.get('urls')) and any(marker in media_type for marker in FOREIGN_MARKERS)


def require_platform(wanted: Optional[Platform], declared: Platform, name: str) -> None:
    """A single image must be one ``wanted`` accepts (Platform.candidates: arm/v6 serves linux/arm/v7)."""
    if wanted is not None and not wanted.matches(declared):
        raise InvalidInputError('%s is a single-platform image for %s, not %s%s'
                                % (name, declared, wanted, accepted_suffix(wanted)))


class ManifestReader:
    """Where the manifests of a walk come from. ``get_manifest`` reads one child of an index.

    ``entry`` is an index entry as :meth:`Manifest.children` gives it (``digest``,
    ``media_type``, ``size``, ``platform``). A reader raises NotFoundError or
    IntegrityError for a manifest it cannot give; the walk records either in the
    node, and lets every other error through.
    """

    def prefetch(self, entries: List[Dict[str, Any]]) -> None:
        """The children of one index are read next: a reader may read them together."""

    def get_manifest(self, entry: Dict[str, Any]) -> Manifest:
        raise NotImplementedError


class RepositoryManifests(ManifestReader):
    """The manifests of one repository of a registry, by digest; ``fanout`` > 1 reads siblings in parallel."""

    def __init__(self, client: Any, repository: str, fanout: int = 1) -> None:
        self.client = client
        self.repository = repository
        self.fanout = fanout
        self._read: Dict[str, Manifest] = {}

    def prefetch(self, entries: List[Dict[str, Any]]) -> None:
        if self.fanout <= 1 or len(entries) <= 1:
            return
        digests = [entry['digest'] for entry in entries]
        fetched = parallel_map(lambda digest: self.client.get_manifest(self.repository, digest), digests,
                               workers=self.fanout)
        self._read.update(zip(digests, fetched))

    def get_manifest(self, entry: Dict[str, Any]) -> Manifest:
        found = self._read.pop(entry['digest'], None)
        return found if found is not None else self.client.get_manifest(self.repository, entry['digest'])


class Node:
    """One descriptor of the graph (a manifest, a config or a layer), once however many paths reach it."""

    def __init__(self, kind: str, descriptor: Dict[str, Any], parent: Optional[str] = None, depth: int = 0,
                 platform: Optional[str] = None) -> None:
        self.kind = kind                    # 'manifest', 'config' or 'layer'
        self.descriptor = descriptor        # the index entry or blob descriptor that names it
        self.digest: str = descriptor['digest']
        self.size: Optional[int] = descriptor.get('size')
        self.media_type: Optional[str] = descriptor.get('media_type')
        self.parent = parent                # digest of the manifest that lists it (None: the top)
        self.depth = depth                  # indexes above it
        self.foreign = kind == 'layer' and is_foreign(descriptor)
        self.platforms: List[str] = []
        self.members: List[Node] = []       # what a manifest lists, as nodes
        self.manifest: Optional[Manifest] = None
        self.error: Optional[RegistryError] = None  # why a manifest was not read; nothing below it is walked
        self.too_deep = False               # an index nested MAX_INDEX_DEPTH deep: not followed
        self.add_platform(platform)

    @property
    def platform(self) -> Optional[str]:
        """The first platform that reached it."""
        return self.platforms[0] if self.platforms else None

    @property
    def is_blob(self) -> bool:
        return self.kind != 'manifest'

    def add_platform(self, label: Optional[str], below: bool = False) -> None:
        """Record that ``label`` reaches this node (and, with ``below``, everything it lists)."""
        if label and label not in self.platforms:
            self.platforms.append(label)
        if below:
            for member in self.members:
                member.add_platform(label, below=True)


class _Walk:
    """The state of one walk: every node by digest, so that each is yielded once."""

    def __init__(self, reader: ManifestReader, max_depth: int) -> None:
        self.reader = reader
        self.max_depth = max_depth
        self.nodes: Dict[str, Node] = {}

    def top(self, manifest: Manifest) -> Node:
        node = Node('manifest', {'digest': manifest.digest, 'size': manifest.size,
                                 'media_type': manifest.media_type})
        node.manifest = manifest
        self.nodes[node.digest] = node
        return node

    def below(self, node: Node, entries: Optional[List[Dict[str, Any]]] = None) -> Iterator[Node]:
        """The nodes under the manifest ``node`` (read already), depth first, each yielded once."""
        manifest = node.manifest
        if manifest is None:
            return
        if manifest.is_index:
            yield from self._index(node, manifest.children() if entries is None else entries)
        elif manifest.is_schema1:
            yield from self._schema1(node, manifest)
        elif manifest.is_image or manifest.data.get('layers') or manifest.data.get('config'):
            for descriptor in manifest.blob_descriptors():
                yield from self._member(node, descriptor['kind'], descriptor, node.platforms)

    def _member(self, node: Node, kind: str, descriptor: Dict[str, Any], platforms: List[str]) -> Iterator[Node]:
        """The node of ``descriptor`` listed by ``node``: new (yielded), or known (it gains the platforms)."""
        known = self.nodes.get(descriptor['digest'])
        if known is not None:
            node.members.append(known)
            for label in platforms:
                known.add_platform(label, below=True)
            return
        member = Node(kind, descriptor, node.digest, node.depth + (1 if kind == 'manifest' else 0))
        for label in platforms:
            member.add_platform(label)
        self.nodes[member.digest] = member
        node.members.append(member)
        yield member

    def _schema1(self, node: Node, manifest: Manifest) -> Iterator[Node]:
        """Every fsLayer, base layer first (throwaway ones too, as manifest_info lists them), each blob once."""
        arch = manifest.data.get('architecture')
        if not node.platforms and arch:
            node.add_platform('linux/%s' % arch)
        for fs_layer in reversed(manifest.data.get('fsLayers') or []):
            yield from self._member(node, 'layer', {'digest': fs_layer['blobSum'], 'size': None, 'media_type': None},
                                    node.platforms)

    def _index(self, node: Node, entries: List[Dict[str, Any]]) -> Iterator[Node]:
        self.reader.prefetch([entry for entry in entries if entry['digest'] not in self.nodes])
        for entry in entries:
            label = platform_label(entry)
            for child in self._member(node, 'manifest', entry, [label] if label else []):
                self._read(child)
                yield child
                if child.error is None and not child.too_deep:
                    yield from self.below(child)

    def _read(self, node: Node) -> None:
        """Read the manifest of ``node``: it matches its descriptor, or ``node.error`` says why not."""
        try:
            manifest = self.reader.get_manifest(node.descriptor)
        except (NotFoundError, IntegrityError) as error:
            node.error = error
            return
        if node.size is not None and manifest.size != node.size:
            node.error = IntegrityError(
                'The manifest %s is %d bytes, the index %s says %d' % (node.digest, manifest.size, node.parent,
                                                                       node.size),
                details={'actual_digest': manifest.digest, 'actual_size': manifest.size,
                         'reason': 'size differs from the index entry'})
            return
        node.manifest = manifest
        node.media_type = node.media_type or manifest.media_type
        node.too_deep = manifest.is_index and node.depth >= self.max_depth


def walk(reader: ManifestReader, top: Manifest, platforms: Optional[List[Platform]] = None,
         max_depth: int = MAX_INDEX_DEPTH) -> Iterator[Node]:
    """Every node reachable from the manifest ``top``, depth first, each once: the top first, then for an
    index each child manifest followed by what it leads to, for an image its config and layers.

    ``platforms`` keeps, of a top index, the one entry each platform selects (see
    ``select_platform``); InvalidInputError when one selects none. Nested indexes are
    followed while fewer than ``max_depth`` indexes are above them; a deeper one is
    yielded with ``too_deep`` set and not followed. A child manifest that cannot be
    read, or whose size is not its entry's, is yielded with ``error`` set and not
    followed: the caller decides whether that ends its walk. A node reached again
    gains the platform of the new path (so do the nodes below it) and is not
    yielded again.
    """
    state = _Walk(reader, max_depth)
    node = state.top(top)
    yield node
    yield from state.below(node, _selected(top, platforms) if platforms and top.is_index else None)


def _selected(index: Manifest, platforms: List[Platform]) -> List[Dict[str, Any]]:
    """The entries of ``index`` the ``platforms`` select, each once, in the order asked."""
    entries: List[Dict[str, Any]] = []
    for platform in platforms:
        entry = index.select_platform(platform)
        if not any(entry is kept for kept in entries):
            entries.append(entry)
    return entries


def manifests_in_push_order(top: Node) -> List[Node]:
    """The manifests below ``top``, each after every manifest it lists: a registry refuses an index whose
    manifests it does not have yet."""
    order: List[Node] = []
    seen = set()

    def visit(node: Node) -> None:
        for member in node.members:
            if member.kind == 'manifest' and member.digest not in seen:
                seen.add(member.digest)
                visit(member)
                order.append(member)
    visit(top)
    return order
