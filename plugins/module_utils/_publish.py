# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Planning and publishing an image: what ``copy`` and ``push`` have in common.

An :class:`ImagePlan` is what gets published: the top manifest, the child
manifests of an index, and the blob descriptors. Its sources are a registry
(``_copy``) and image files (``_archive``); both build it from a walk of the
image graph (:func:`plan_from_walk`). :func:`publish` writes it with the bytes of
a :class:`BlobSource`, in the order that makes a publication safe: every blob
first, then each child manifest by digest, then the top manifest under the tag,
last. Anything that fails (a blob that does not verify, a registry error) aborts
before the tag is written, so the tag never points at an incomplete image.

:class:`PublishOutcome` is the result both modules share; ``copy`` and ``push``
each extend it with their own keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError
from ansible_collections.imagelayers.registry.plugins.module_utils._image import Node, manifests_in_push_order
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import Manifest
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import check_workers, parallel_map
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import TagSync, plan_put, put_tags
from ansible_collections.imagelayers.registry.plugins.module_utils._upload import BlobSource, TransferStats, ensure_blob


class ImagePlan:
    """The manifests and blobs of one image (or index), ready to publish."""

    def __init__(self, top: Any, children: Optional[List[Manifest]] = None,
                 blobs: Optional[List[Dict[str, Any]]] = None, images: Optional[List[Dict[str, Any]]] = None) -> None:
        self.top = top                      # Manifest (or the digest and media type of one not fetched)
        self.children = children or []      # [Manifest], pushed by digest before the top
        self.blobs = blobs or []            # [descriptor dicts], unique by digest
        self.images = images or []          # per-platform details for the result
        self.layer_compression: Optional[str] = None  # how layers were compressed on this host, when they were

    @property
    def digest(self) -> str:
        return self.top.digest


def unique_blobs(nodes: List[Node]) -> List[Dict[str, Any]]:
    """The config and layer descriptors of walked nodes, in walk order; foreign layers are not published."""
    return [node.descriptor for node in nodes if node.is_blob and not node.foreign]


def image_details(manifest: Manifest, platform: Optional[str] = None) -> Dict[str, Any]:
    """One entry of a result's ``images``: platform, digest, media type, number of layers, size."""
    blobs = manifest.blob_descriptors()
    return {
        'platform': platform,
        'digest': manifest.digest,
        'media_type': manifest.media_type,
        'layers': len([b for b in blobs if b['kind'] == 'layer']),
        'size': sum(b.get('size') or 0 for b in blobs),
    }


def publishable(nodes: Iterable[Node], too_deep: Callable[[Node], str],
                unsupported: Callable[[Node], str]) -> List[Node]:
    """The nodes of a walk, when every manifest below the top can be published; else the error that ends
    the publication before any write: the walk's own (a child that could not be read, or not its entry's
    size), or InvalidInputError with ``too_deep(node)`` (an index nested too deep) or ``unsupported(node)``
    (neither an index nor an image)."""
    accepted = []
    for node in nodes:
        manifest = node.manifest
        if node.kind == 'manifest' and node.parent is not None:
            if node.error is not None:
                raise node.error
            if node.too_deep:
                raise InvalidInputError(too_deep(node))
            if manifest is not None and not manifest.is_index and not manifest.is_image:
                raise InvalidInputError(unsupported(node))
        accepted.append(node)
    return accepted


def plan_from_walk(nodes: List[Node], platform: Optional[str] = None) -> ImagePlan:
    """The plan of a finished walk (``nodes[0]`` is the top; every manifest read and accepted by the caller).

    ``platform`` is the platform of a single image (an index tells those of its images).
    """
    top = nodes[0]
    children = [node.manifest for node in manifests_in_push_order(top) if node.manifest is not None]
    if top.manifest is not None and top.manifest.is_index:
        images = [image_details(node.manifest, node.platform) for node in nodes[1:]
                  if node.manifest is not None and node.manifest.is_image]
    elif top.manifest is not None:
        images = [image_details(top.manifest, platform)]
    return ImagePlan(top.manifest, children, unique_blobs(nodes), images)


def publish(client: Any, reference: Any, plan: ImagePlan, source: BlobSource, ctx: RunContext,
            overwrite: bool = True, current: Optional[Dict[str, Optional[str]]] = None
            ) -> Tuple[Optional[TagSync], TransferStats]:
    """Write ``plan`` to the repository of ``reference``: blobs, child manifests, then the top manifest.

    ``reference`` has a tag (the tag is written last, with put_tags) or only a
    digest (the manifest is pushed by digest). Returns ``(sync, stats)``;
    ``sync`` is a TagSync (None for a push by digest).
    """
    workers = check_workers(ctx.workers)
    repository = reference.repository
    stats = TransferStats()
    digest = plan.digest
    tag = reference.tag
    if reference.digest and reference.digest != digest:
        raise InvalidInputError('The destination %s names digest %s, but the image to write has digest %s'
                                % (reference.name, reference.digest, digest))
    if tag:
        if current is None:
            found = client.resolve(repository, tag)
            current = {tag: found['digest'] if found else None}
        entries = plan_put(current, [tag], digest, overwrite=overwrite, repository_name=reference.repository_name)
        if not entries[0]['changed']:
            return TagSync(reference.repository_name, digest, entries), stats
    elif client.head_manifest(repository, digest) is not None:
        return None, stats
    client.api.http.ensure_pool_size(workers + 2)
    parallel_map(lambda descriptor: ensure_blob(client, repository, descriptor, source, stats, retries=ctx.retries,
                                                check_mode=ctx.check_mode),
                 plan.blobs, workers=workers)
    _put_children(client, reference, plan, stats, ctx)
    if not tag:
        _put_manifest(client, reference, plan.top, stats, ctx)
        return None, stats
    sync = put_tags(client, repository, [tag], digest, plan.top.media_type, plan.top.raw, overwrite=overwrite,
                    check_mode=ctx.check_mode, current=current, repository_name=reference.repository_name)
    if sync.changed:
        stats.add(manifests_pushed=1)
    return sync, stats


def _put_children(client: Any, reference: Any, plan: ImagePlan, stats: TransferStats, ctx: RunContext) -> None:
    """Images in parallel; then the indexes among the children one by one, in the plan's order (an inner index
    before the ones that list it): a registry refuses an index whose manifests it does not have yet."""
    def child(manifest: Manifest) -> None:
        if client.head_manifest(reference.repository, manifest.digest) is None:
            _put_manifest(client, reference, manifest, stats, ctx)

    parallel_map(child, [m for m in plan.children if not m.is_index], workers=ctx.workers)
    for manifest in plan.children:
        if manifest.is_index:
            child(manifest)


def _put_manifest(client: Any, reference: Any, manifest: Manifest, stats: TransferStats, ctx: RunContext) -> None:
    """PUT one manifest by digest (counted; in check mode only counted)."""
    stats.add(manifests_pushed=1)
    if ctx.check_mode:
        return
    answered = client.put_manifest(reference.repository, manifest.digest, manifest.raw, manifest.media_type)
    if answered and answered != manifest.digest:
        raise IntegrityError('The registry stored the manifest %s in %s as %s'
                             % (manifest.digest, reference.repository_name, answered))


@dataclass
class PublishOutcome:
    """What a copy or a push did: the plan, the tag it wrote (or not), the transfer counts."""

    reference: Any                  # where the image went
    plan: ImagePlan
    sync: Optional[TagSync]         # None for a push by digest
    stats: TransferStats
    diff_mode: bool = False

    target_key = 'dest'             # the result key naming where the image went

    @property
    def changed(self) -> bool:
        return self.sync.changed if self.sync is not None else self.stats.manifests_pushed > 0

    def to_result(self) -> Dict[str, Any]:
        """The module result: what both modules return (see their RETURN docs)."""
        result: Dict[str, Any] = {
            'changed': self.changed,
            'digest': self.plan.digest,
            'media_type': self.plan.top.media_type,
            self.target_key: self.reference.name,
            'images': self.plan.images,
        }
        result.update(self.stats.to_dict())
        if self.diff_mode:
            result['diff'] = self._diff()
        result['tags'] = self.sync.results() if self.sync is not None else []
        return result

    def _diff(self) -> Dict[str, Any]:
        if self.sync is not None:
            return self.sync.diff()
        header = '%s manifests' % self.reference.repository_name
        digest = self.plan.digest
        return {'before': {} if self.changed else {digest: 'present'}, 'after': {digest: 'present'},
                'before_header': header, 'after_header': header}


@dataclass
class PushOutcome(PublishOutcome):
    """What ``push`` did: the publication, the archive's format and how its layers were compressed."""

    archive_format: Optional[str] = None

    target_key = 'image'

    def to_result(self) -> Dict[str, Any]:
        result = super().to_result()
        result['format'] = self.archive_format
        if self.plan.layer_compression:
            result['layer_compression'] = self.plan.layer_compression
        return result
