# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What ``manifest_info`` reports: a manifest, and for an image its config, layers and history.

:func:`inspect_image` returns an :class:`InspectOutcome`, whose ``to_result()`` is the module's
result; the ``digest`` lookup reads its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError, NotFoundError
from ansible_collections.imagelayers.registry.plugins.module_utils._image import (
    RepositoryManifests,
    require_platform,
    walk,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    Manifest,
    Platform,
    check_config,
    history,
    layers_with_diff_ids,
    schema1_details,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import RegistryClient


@dataclass
class ImageDescription:
    """One image described: its digest, platform, config, layers and history (config is None for schema1)."""

    image_digest: str
    platform: Dict[str, Optional[str]]
    config_digest: Optional[str]
    config: Optional[Dict[str, Any]]
    layers: List[Dict[str, Any]]
    history: List[Dict[str, Any]]
    total_size: int

    def to_result(self) -> Dict[str, Any]:
        return {
            'image_digest': self.image_digest, 'platform': self.platform, 'config_digest': self.config_digest,
            'config': self.config, 'layers': self.layers, 'history': self.history, 'total_size': self.total_size,
        }


@dataclass
class InspectOutcome:
    """What ``inspect_image`` found; ``to_result()`` is the ``manifest_info`` result.

    ``manifest`` is None when the reference does not exist (not a failure: ``exists`` is false
    and the registry's error codes are returned). ``index_entries`` is set for an index,
    ``image`` when one image was described (an image manifest, or an index's pick for a platform).
    """

    reference: ImageReference
    manifest: Optional[Manifest] = None
    registry_error_codes: List[str] = field(default_factory=list)
    index_entries: Optional[List[Dict[str, Any]]] = None
    image: Optional[ImageDescription] = None

    @property
    def exists(self) -> bool:
        return self.manifest is not None

    @property
    def digest(self) -> Optional[str]:
        """The digest of the manifest the reference names (an index's own digest for an index)."""
        return self.manifest.digest if self.manifest is not None else None

    @property
    def image_digest(self) -> Optional[str]:
        """The digest of the image described, or None when none was (missing, an index without platform, ...)."""
        return self.image.image_digest if self.image is not None else None

    def to_result(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {'changed': False, 'image': self.reference.name, 'exists': self.exists}
        if self.manifest is None:
            result.update({'digest': None, 'media_type': None, 'schema_version': None, 'size': None,
                           'manifest': None, 'registry_error_codes': self.registry_error_codes})
            return result
        result.update({
            'digest': self.manifest.digest,
            'media_type': self.manifest.media_type,
            'schema_version': self.manifest.schema_version,
            'size': self.manifest.size,
            'manifest': self.manifest.data,
        })
        if self.index_entries is not None:
            result['manifests'] = self.index_entries
        if self.image is not None:
            result.update(self.image.to_result())
        return result


def inspect_image(client: RegistryClient, reference: ImageReference, platform: Optional[Platform] = None,
                  ctx: Optional[RunContext] = None) -> InspectOutcome:
    """Describe the image at ``reference``; ``platform`` picks one image of an index."""
    ctx = ctx or RunContext()
    if reference.reference is None:  # the callers parse with a default tag; kept for the type checker
        raise InvalidInputError('The image %s names neither a tag nor a digest' % reference.name)
    try:
        manifest = client.get_manifest(reference.repository, reference.reference)
    except NotFoundError as error:
        return InspectOutcome(reference, registry_error_codes=error.codes)
    outcome = InspectOutcome(reference, manifest)
    if manifest.is_index:
        outcome.index_entries = [
            {'digest': c['digest'], 'media_type': c['media_type'], 'size': c['size'], 'platform': c['platform']}
            for c in manifest.children()
        ]
        if platform is not None:
            image = _platform_image(client, reference, manifest, platform)
            outcome.image = _describe_image(client, reference.repository, image, platform)
    elif manifest.is_schema1:
        ctx.warn('%s is a Docker schema1 manifest (deprecated); it is described read-only from its '
                 'fsLayers and v1Compatibility history' % reference.name)
        outcome.image = _describe_schema1(manifest, platform, reference.name)
    elif manifest.is_image:
        outcome.image = _describe_image(client, reference.repository, manifest, platform)
    else:
        ctx.warn('%s has media type %s, which is neither an image nor an index; only the manifest is returned'
                 % (reference.name, manifest.media_type))
    return outcome


def _describe_schema1(manifest: Manifest, wanted_platform: Optional[Platform], name: str) -> ImageDescription:
    layers, entries, image_platform = schema1_details(manifest)
    require_platform(wanted_platform, image_platform, name)
    return ImageDescription(
        image_digest=manifest.digest, platform=image_platform.to_dict(), config_digest=None, config=None,
        layers=layers, history=entries,
        # The throwaway layers are listed (they are blobs of the image) but hold nothing.
        total_size=sum(layer['size'] or 0 for layer in layers if not layer['empty_layer']),
    )


def _platform_image(client: RegistryClient, reference: ImageReference, index: Manifest, platform: Platform) -> Manifest:
    """The image manifest the index ``index`` has for ``platform``: the first child of a walk that keeps it."""
    nodes = walk(RepositoryManifests(client, reference.repository), index, [platform])
    next(nodes)  # the index itself
    child = next(nodes)
    if child.error is not None:
        raise child.error
    image = child.manifest
    if image is None or not image.is_image:
        raise IntegrityError('The index entry for %s (%s) is a %s, not an image manifest'
                             % (platform, child.digest, image.media_type if image is not None else None))
    return image


def _describe_image(client: RegistryClient, repository: str, manifest: Manifest,
                    wanted_platform: Optional[Platform]) -> ImageDescription:
    descriptor = manifest.config_descriptor()
    if not descriptor or not descriptor.get('digest'):
        raise IntegrityError('The image manifest %s has no config descriptor' % manifest.digest)
    config = client.get_json_blob(repository, descriptor, what='image config')
    image_platform = check_config(config, descriptor['digest'])
    require_platform(wanted_platform, image_platform, '%s@%s' % (repository, manifest.digest))
    layers = layers_with_diff_ids(manifest, config)
    return ImageDescription(
        image_digest=manifest.digest,
        platform=image_platform.to_dict(),
        config_digest=descriptor['digest'],
        config=config,
        layers=layers,
        total_size=sum(layer['size'] or 0 for layer in layers),
        history=history(config, layers),
    )
