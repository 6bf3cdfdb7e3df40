# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What ``manifest_info`` reports: a manifest, and for an image its config, layers and history."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, NotFoundError
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

_EMPTY = {
    'exists': False, 'digest': None, 'media_type': None, 'schema_version': None, 'size': None, 'manifest': None,
}


def inspect_image(client: Any, reference: Any, platform: Optional[Platform] = None,
                  ctx: Optional[RunContext] = None) -> Dict[str, Any]:
    """Describe the image at ``reference``; ``platform`` picks one image of an index. Returns the module result."""
    ctx = ctx or RunContext()
    result: Dict[str, Any] = {'changed': False, 'image': reference.name}
    result.update(_EMPTY)
    try:
        manifest = client.get_manifest(reference.repository, reference.reference)
    except NotFoundError as error:
        result['registry_error_codes'] = error.codes
        return result
    result.update({
        'exists': True,
        'digest': manifest.digest,
        'media_type': manifest.media_type,
        'schema_version': manifest.schema_version,
        'size': manifest.size,
        'manifest': manifest.data,
    })
    if manifest.is_index:
        result['manifests'] = [
            {'digest': c['digest'], 'media_type': c['media_type'], 'size': c['size'], 'platform': c['platform']}
            for c in manifest.children()
        ]
        if platform is not None:
            image = _platform_image(client, reference, manifest, platform)
            result.update(_describe_image(client, reference.repository, image, platform))
        return result
    if manifest.is_schema1:
        ctx.warn('%s is a Docker schema1 manifest (deprecated); it is described read-only from its '
                 'fsLayers and v1Compatibility history' % reference.name)
        layers, entries, image_platform = schema1_details(manifest)
        require_platform(platform, image_platform, reference.name)
        result.update({
            'image_digest': manifest.digest, 'platform': image_platform.to_dict(), 'config_digest': None,
            'config': None, 'layers': layers, 'history': entries,
            # The throwaway layers are listed (they are blobs of the image) but hold nothing.
            'total_size': sum(layer['size'] or 0 for layer in layers if not layer['empty_layer']),
        })
        return result
    if manifest.is_image:
        result.update(_describe_image(client, reference.repository, manifest, platform))
        return result
    ctx.warn('%s has media type %s, which is neither an image nor an index; only the manifest is returned'
             % (reference.name, manifest.media_type))
    return result


def _platform_image(client: Any, reference: Any, index: Manifest, platform: Platform) -> Manifest:
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


def _describe_image(client: Any, repository: str, manifest: Manifest,
                    wanted_platform: Optional[Platform]) -> Dict[str, Any]:
    descriptor = manifest.config_descriptor()
    if not descriptor or not descriptor.get('digest'):
        raise IntegrityError('The image manifest %s has no config descriptor' % manifest.digest)
    config = client.get_json_blob(repository, descriptor, what='image config')
    image_platform = check_config(config, descriptor['digest'])
    require_platform(wanted_platform, image_platform, '%s@%s' % (repository, manifest.digest))
    layers = layers_with_diff_ids(manifest, config)
    return {
        'image_digest': manifest.digest,
        'platform': image_platform.to_dict(),
        'config_digest': descriptor['digest'],
        'config': config,
        'layers': layers,
        'total_size': sum(layer['size'] or 0 for layer in layers),
        'history': history(config, layers),
    }
