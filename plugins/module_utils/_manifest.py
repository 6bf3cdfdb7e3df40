# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Manifests: media types, parsing, platforms, layers and history."""

from __future__ import annotations

import base64
import json
import re

from ansible_collections.imagelayers.registry.plugins.module_utils._digest import compute_digest, validate_digest
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import IntegrityError, InvalidInputError

OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'
DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json'

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
SCHEMA1_TYPES = (DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1)
# Every manifest type, in order of preference; always sent in full, so that no
# registry falls back to a schema1 conversion or hides OCI content from us.
ACCEPT = ', '.join(INDEX_TYPES + IMAGE_TYPES + SCHEMA1_TYPES)

DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'

_PLATFORM = re.compile(r'^[a-z0-9_.-]+/[a-z0-9_.-]+(?:/[a-z0-9_.-]+)?$')


class Platform:
    """``os/architecture[/variant]``, matched the way container runtimes do."""

    def __init__(self, os, architecture, variant=None, os_version=None):
        self.os = os
        self.architecture = architecture
        self.variant = variant or None
        self.os_version = os_version

    @classmethod
    def parse(cls, value):
        if not isinstance(value, str) or not _PLATFORM.match(value.strip().lower()):
            raise InvalidInputError('Invalid platform %r: expected "os/architecture" or "os/architecture/variant", '
                                    'for example "linux/amd64" or "linux/arm64/v8"' % (value,))
        parts = value.strip().lower().split('/')
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else None)

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            return None
        return cls(data.get('os'), data.get('architecture'), data.get('variant'), data.get('os.version'))

    def matches(self, other):
        """True when ``other`` (what an image declares) satisfies this request."""
        if other is None or self.os != other.os or self.architecture != other.architecture:
            return False
        if self.variant is None:
            return True
        # arm64's only variant is v8: "linux/arm64" and "linux/arm64/v8" are the same platform.
        other_variant = other.variant or ('v8' if other.architecture == 'arm64' else None)
        return self.variant == other_variant

    def __str__(self):
        return '/'.join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_dict(self):
        data = {'os': self.os, 'architecture': self.architecture}
        if self.variant:
            data['variant'] = self.variant
        if self.os_version:
            data['os.version'] = self.os_version
        return data


class Manifest:
    """The exact bytes of a manifest, their digest, and the parsed document."""

    def __init__(self, raw, media_type, digest=None):
        self.raw = raw
        try:
            self.data = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError('The manifest is not valid JSON: %s' % exc)
        if not isinstance(self.data, dict):
            raise IntegrityError('The manifest is not a JSON object')
        self.media_type = self._media_type(media_type)
        self.digest = digest or self.compute_digest()

    def _media_type(self, header_type):
        declared = self.data.get('mediaType')
        if declared:
            return declared
        header_type = (header_type or '').split(';', 1)[0].strip()
        if header_type in INDEX_TYPES + IMAGE_TYPES + SCHEMA1_TYPES:
            return header_type
        # OCI documents may omit mediaType: tell an index from an image by its shape.
        if self.data.get('schemaVersion') == 1:
            return DOCKER_SCHEMA1_SIGNED if 'signatures' in self.data else DOCKER_SCHEMA1
        if 'manifests' in self.data:
            return OCI_INDEX
        if 'layers' in self.data or 'config' in self.data:
            return OCI_MANIFEST
        return header_type or 'application/octet-stream'

    def compute_digest(self, algorithm='sha256'):
        """The content digest; for signed schema1, of the payload without signatures, as registries do."""
        return compute_digest(self.canonical_bytes(), algorithm)

    def canonical_bytes(self):
        if self.media_type == DOCKER_SCHEMA1_SIGNED and self.data.get('signatures'):
            try:
                protected = self.data['signatures'][0]['protected']
                header = json.loads(_b64url(protected))
                return self.raw[:int(header['formatLength'])] + _b64url(header['formatTail'])
            except (KeyError, IndexError, ValueError, TypeError):
                return self.raw
        return self.raw

    @property
    def size(self):
        return len(self.raw)

    @property
    def schema_version(self):
        return self.data.get('schemaVersion')

    @property
    def is_index(self):
        return self.media_type in INDEX_TYPES

    @property
    def is_image(self):
        return self.media_type in IMAGE_TYPES

    @property
    def is_schema1(self):
        return self.media_type in SCHEMA1_TYPES

    def children(self):
        """Index entries: ``[{'digest', 'media_type', 'size', 'platform'}]``."""
        result = []
        for entry in self.data.get('manifests') or []:
            if not isinstance(entry, dict):
                continue
            result.append({
                'digest': entry.get('digest'),
                'media_type': entry.get('mediaType'),
                'size': entry.get('size'),
                'platform': entry.get('platform'),
                'annotations': entry.get('annotations') or {},
            })
        return result

    def select_platform(self, platform):
        """The index entry for ``platform``, or raise listing what the index has."""
        for child in self.children():
            if platform.matches(Platform.from_dict(child['platform'])):
                return child
        available = [str(Platform.from_dict(c['platform'])) for c in self.children() if c.get('platform')]
        raise InvalidInputError('The image index has no manifest for platform %s; it has: %s'
                                % (platform, ', '.join(available) or 'no platform entries'))

    def config_descriptor(self):
        config = self.data.get('config')
        if not isinstance(config, dict):
            return None
        return {'digest': config.get('digest'), 'media_type': config.get('mediaType'), 'size': config.get('size')}

    def layers(self):
        """Layer descriptors of an image manifest (schema2/OCI), base layer first."""
        result = []
        for layer in self.data.get('layers') or []:
            if isinstance(layer, dict):
                result.append({'digest': layer.get('digest'), 'size': layer.get('size'),
                               'media_type': layer.get('mediaType'), 'urls': layer.get('urls')})
        return result

    def blob_descriptors(self):
        """Config and layer descriptors, each validated; ``kind`` says which."""
        result = []
        config = self.config_descriptor()
        if config:
            result.append(dict(config, kind='config'))
        for layer in self.layers():
            result.append(dict(layer, kind='layer'))
        for entry in result:
            validate_digest(entry['digest'], what='%s digest in manifest %s' % (entry['kind'], self.digest))
        return result


def _b64url(value):
    return base64.urlsafe_b64decode(value + '=' * (-len(value) % 4))


def layers_with_diff_ids(manifest, config):
    """Layer descriptors with the matching ``rootfs.diff_ids`` entry of the config."""
    diff_ids = ((config or {}).get('rootfs') or {}).get('diff_ids') or []
    result = []
    for index, layer in enumerate(manifest.layers()):
        entry = {'digest': layer['digest'], 'size': layer['size'], 'media_type': layer['media_type'],
                 'diff_id': diff_ids[index] if index < len(diff_ids) else None}
        if layer.get('urls'):
            entry['urls'] = layer['urls']
        result.append(entry)
    return result


def history(config, layers):
    """Config history aligned with layers, oldest first, the way ``docker history`` pairs them.

    Entries with ``empty_layer`` (ENV, CMD, LABEL, ...) have no layer; every
    other entry takes the next layer in order.
    """
    result = []
    remaining = list(layers)
    for item in (config or {}).get('history') or []:
        if not isinstance(item, dict):
            continue
        empty = bool(item.get('empty_layer'))
        layer = None if empty or not remaining else remaining.pop(0)
        result.append({
            'created': item.get('created'),
            'created_by': item.get('created_by'),
            'comment': item.get('comment'),
            'author': item.get('author'),
            'empty_layer': empty,
            'layer_digest': layer['digest'] if layer else None,
            'size': layer['size'] if layer else 0,
        })
    return result


def schema1_details(manifest):
    """Layers and history of a schema1 manifest (read-only support), base layer first."""
    fs_layers = list(reversed(manifest.data.get('fsLayers') or []))
    compat = list(reversed(manifest.data.get('history') or []))
    layers = []
    entries = []
    config = {}
    for index, fs_layer in enumerate(fs_layers):
        try:
            v1 = json.loads(compat[index]['v1Compatibility']) if index < len(compat) else {}
        except (KeyError, TypeError, ValueError):
            v1 = {}
        container_config = v1.get('container_config') or {}
        created_by = ' '.join(container_config.get('Cmd') or []) or None
        empty = bool(v1.get('throwaway'))
        digest = fs_layer.get('blobSum')
        if not empty:
            layers.append({'digest': digest, 'size': v1.get('Size'), 'media_type': None, 'diff_id': None})
        entries.append({
            'created': v1.get('created'), 'created_by': created_by, 'comment': v1.get('comment'),
            'author': v1.get('author'), 'empty_layer': empty,
            'layer_digest': None if empty else digest, 'size': 0 if empty else (v1.get('Size') or 0),
        })
        config = v1
    platform = Platform(config.get('os') or 'linux', manifest.data.get('architecture'))
    return layers, entries, platform
