# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What ``manifest_info`` reports: a manifest, and for an image its config, layers and history."""

from __future__ import annotations

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError, NotFoundError
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import (
    accepted_suffix,
    check_config,
    history,
    layers_with_diff_ids,
    schema1_details,
)

_EMPTY = {
    'exists': False, 'digest': None, 'media_type': None, 'schema_version': None, 'size': None, 'manifest': None,
}


def inspect_image(client, reference, platform=None, warn=None):
    """Describe the image at ``reference``; ``platform`` (a Platform) picks one image of an index."""
    result = {'changed': False, 'image': reference.name}
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
        if platform is None:
            return result
        child = manifest.select_platform(platform)
        image = client.get_manifest(reference.repository, child['digest'])
        if not image.is_image:
            raise IntegrityError('The index entry for %s (%s) is a %s, not an image manifest'
                                 % (platform, child['digest'], image.media_type))
        result.update(_describe_image(client, reference.repository, image, platform))
        return result
    if manifest.is_schema1:
        if warn:
            warn('%s is a Docker schema1 manifest (deprecated); it is described read-only from its '
                 'fsLayers and v1Compatibility history' % reference.name)
        layers, entries, image_platform = schema1_details(manifest)
        _check_platform(platform, image_platform, reference.name)
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
    if warn:
        warn('%s has media type %s, which is neither an image nor an index; only the manifest is returned'
             % (reference.name, manifest.media_type))
    return result


def _check_platform(wanted, actual, name):
    """A single image must be one ``wanted`` accepts (see Platform.candidates: arm/v6 serves linux/arm/v7)."""
    if wanted is not None and not wanted.matches(actual):
        raise InvalidInputError('%s is a single-platform image for %s, not %s%s'
                                % (name, actual, wanted, accepted_suffix(wanted)))


def _describe_image(client, repository, manifest, wanted_platform):
    descriptor = manifest.config_descriptor()
    if not descriptor or not descriptor.get('digest'):
        raise IntegrityError('The image manifest %s has no config descriptor' % manifest.digest)
    config = client.get_json_blob(repository, descriptor, what='image config')
    image_platform = check_config(config, descriptor['digest'])
    _check_platform(wanted_platform, image_platform, '%s@%s' % (repository, manifest.digest))
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
