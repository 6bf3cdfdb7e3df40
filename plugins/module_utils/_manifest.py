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
from typing import Any, Dict, List, Optional, Tuple, Union

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

# How deep an index may nest other indexes before a walk stops following it (every walker uses it).
MAX_INDEX_DEPTH = 4

# The largest size a descriptor may announce: 1 TiB. The biggest layers in real use (model weights,
# toolchains) are tens of GiB; a larger number is not an image but a way to make a client reserve,
# loop or report absurd amounts. The bytes are verified as they arrive anyway, so the cap only has
# to be far above any genuine blob.
MAX_BLOB_SIZE = 2 ** 40
# How deeply the JSON of a manifest or image config may nest. Genuine documents nest 5 or 6 levels;
# a deeper one would only exercise recursion in the parser and in everything that walks the result.
MAX_JSON_DEPTH = 32

_PLATFORM = re.compile(r'[a-z0-9_.-]+/[a-z0-9_.-]+(?:/[a-z0-9_.-]+)?')

# The variants of an architecture, most capable first, as containers/image (skopeo, podman)
# knows them (internal/pkg/platform): a machine of one variant also runs every later one.
VARIANT_COMPATIBILITY = {
    'amd64': ('v4', 'v3', 'v2'),
    'arm': ('v8', 'v7', 'v6', 'v5'),
    'arm64': ('v8',),
}


def _normal_variant(architecture: Optional[str], variant: Optional[str]) -> Optional[str]:
    """The variant compared when matching: amd64 "v1" is the amd64 baseline, the same as no variant."""
    variant = variant or None
    if architecture == 'amd64' and variant == 'v1':
        return None
    return variant


class Platform:
    """``os/architecture[/variant]``, matched the way container runtimes do (see :meth:`candidates`)."""

    def __init__(self, os: Optional[str], architecture: Optional[str], variant: Optional[str] = None,
                 os_version: Optional[str] = None) -> None:
        self.os = os
        self.architecture = architecture
        self.variant = variant or None
        self.os_version = os_version

    @classmethod
    def parse(cls, value: Any) -> Platform:
        if not isinstance(value, str) or not _PLATFORM.fullmatch(value.strip().lower()):
            raise InvalidInputError('Invalid platform %r: expected "os/architecture" or "os/architecture/variant", '
                                    'for example "linux/amd64" or "linux/arm64/v8"' % (value,))
        parts = value.strip().lower().split('/')
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else None)

    @classmethod
    def from_dict(cls, data: Any) -> Optional[Platform]:
        """The ``platform`` object of an index entry; None when there is none."""
        if not isinstance(data, dict):
            return None
        return cls(data.get('os'), data.get('architecture'), data.get('variant'), data.get('os.version'))

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Platform:
        """The platform an image config declares (checked by :func:`check_config` first).

        The one way a platform is read from a config: inspect, blob_verify, copy and push
        all call this, so a field read here is read the same way by each of them.
        """
        return cls(config.get('os'), config.get('architecture'), config.get('variant'), config.get('os.version'))

    @property
    def known(self) -> bool:
        """True when both os and architecture are set: a platform worth reporting."""
        return bool(self.os and self.architecture)

    def candidates(self) -> List[Platform]:
        """The platforms this request accepts, best first: containers/image's ``WantedPlatforms`` order.

        With a variant: that variant, each older one of the compatibility table, then no variant
        (``linux/arm/v8``: v8, v7, v6, v5, none; ``linux/amd64/v3``: v3, v2, none). Without one: no
        variant, then the table's variants newest first (``linux/arm``: none, v8, v7, v6, v5;
        ``linux/arm64``: none, v8), except amd64, whose levels a plain request never takes.
        """
        order: Tuple[str, ...] = VARIANT_COMPATIBILITY.get(self.architecture or '', ())
        variant = _normal_variant(self.architecture, self.variant)
        variants: List[Optional[str]]
        if variant is not None:
            variants = list(order[order.index(variant):]) if variant in order else [variant]
            variants.append(None)
        else:
            variants = [None] + ([] if self.architecture == 'amd64' else list(order))
        return [Platform(self.os, self.architecture, v) for v in variants]

    def same(self, other: Optional[Platform]) -> bool:
        """True when ``other`` is this very platform (amd64 "v1" being plain amd64)."""
        return (other is not None and self.os == other.os and self.architecture == other.architecture
                and _normal_variant(self.architecture, self.variant)
                == _normal_variant(other.architecture, other.variant))

    def matches(self, other: Optional[Platform]) -> bool:
        """True when ``other`` (what an image declares) is one of the :meth:`candidates` of this request."""
        return other is not None and any(candidate.same(other) for candidate in self.candidates())

    def __str__(self) -> str:
        return '/'.join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_dict(self) -> Dict[str, Optional[str]]:
        data = {'os': self.os, 'architecture': self.architecture}
        if self.variant:
            data['variant'] = self.variant
        if self.os_version:
            data['os.version'] = self.os_version
        return data


def select_platform(entries: List[Dict[str, Any]], wanted: Platform) -> Optional[Dict[str, Any]]:
    """The index entry for ``wanted``: the first (in index order) of the earliest candidate; None if none.

    ``entries`` are index entries (raw, or as :meth:`Manifest.children` gives them): each has a
    ``platform``. This is the one place where ``manifest_info``, the digest lookup, ``copy``,
    ``blob_verify`` and ``push`` choose an image, so that they all choose the same one.
    """
    platforms = [(entry, Platform.from_dict(entry.get('platform'))) for entry in entries]
    for candidate in wanted.candidates():
        for entry, platform in platforms:
            if candidate.same(platform):
                return entry
    return None


def platform_label(entry: Dict[str, Any]) -> Optional[str]:
    """``os/architecture[/variant]`` of an index entry, or None when it declares no usable platform."""
    platform = Platform.from_dict(entry.get('platform'))
    return str(platform) if platform is not None and platform.os and platform.architecture else None


def describe_platforms(entries: List[Dict[str, Any]]) -> str:
    """What an index offers, for an error message: its platforms, and how many entries have none."""
    labels = [label for label in (platform_label(e) for e in entries) if label]
    unlabeled = len(entries) - len(labels)
    if unlabeled:
        labels.append('%d %s without a platform' % (unlabeled, 'entry' if unlabeled == 1 else 'entries'))
    return ', '.join(labels) or 'no entries'


def accepted_suffix(wanted: Platform) -> str:
    """`` (accepted, best first: ...)`` when ``wanted`` accepts more than itself, for error messages."""
    candidates = wanted.candidates()
    if len(candidates) < 2:
        return ''
    return ' (accepted, best first: %s)' % ', '.join(str(c) for c in candidates)


def no_platform_message(wanted: Platform, entries: List[Dict[str, Any]], what: str = 'The image index') -> str:
    return ('%s has no manifest for platform %s%s; it has: %s'
            % (what, wanted, accepted_suffix(wanted), describe_platforms(entries)))


# -- well-formedness: every field a consumer reads, checked once, when the document is parsed ----------
_JSON_TYPES = ((bool, 'a boolean'), (int, 'a number'), (float, 'a number'), (str, 'a string'),
               (list, 'an array'), (dict, 'an object'))


def _json_type(value: Any) -> str:
    if value is None:
        return 'null'
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return 'a value of an unknown type'


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests containers deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def parse_json(raw: Union[bytes, str], what: str, details: Optional[Dict[str, Any]] = None) -> Any:
    """Parse JSON bytes that a registry or archive sent: IntegrityError when invalid or nested absurdly deep."""
    try:
        data = json.loads(raw.decode('utf-8') if isinstance(raw, bytes) else raw)
    except RecursionError:
        data = None
        deep = True
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError('%s is not valid JSON: %s' % (what, exc), details=details)
    else:
        deep = _too_deep(data)
    if deep:
        raise IntegrityError('%s is nested more than %d levels deep; refusing it' % (what, MAX_JSON_DEPTH),
                             details=details)
    return data


class Malformed:
    """Raises the IntegrityError for a field of a document: the field, what is wrong, and the document."""

    def __init__(self, what: str, digest: str, key: str = 'manifest_digest') -> None:
        self.what = what
        self.digest = digest
        self.key = key

    def __call__(self, field: str, problem: str) -> IntegrityError:
        reason = '%s %s' % (field, problem)
        return IntegrityError('The %s %s is malformed: %s' % (self.what, self.digest, reason),
                              details={self.key: self.digest, 'field': field, 'reason': reason})

    def typed(self, value: Any, field: str, kind: type, name: str, required: bool = False) -> Any:
        """``value`` when it is of ``kind`` (or absent and not ``required``), else raise."""
        if value is None and not required:
            return value
        if value is None:
            raise self(field, 'is missing')
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self(field, 'is %s, not %s' % (_json_type(value), name))
        return value

    def string(self, data: Dict[str, Any], key: str, prefix: str, required: bool = False) -> Any:
        return self.typed(data.get(key), _join(prefix, key), str, 'a string', required)

    def strings(self, data: Dict[str, Any], key: str, prefix: str) -> Optional[List[str]]:
        values = self.typed(data.get(key), _join(prefix, key), list, 'an array of strings')
        for number, value in enumerate(values or []):
            self.typed(value, '%s[%d]' % (_join(prefix, key), number), str, 'a string', True)
        return values

    def digest_field(self, data: Dict[str, Any], key: str, prefix: str) -> str:
        """A digest this collection can verify (sha256 or sha512), never a tag or a path."""
        value = self.string(data, key, prefix, required=True)
        try:
            validate_digest(value, what='value')
        except InvalidInputError as error:
            raise self(_join(prefix, key), 'is not a usable digest: %s' % error.msg)
        return value

    def size(self, value: Any, field: str, required: bool = True) -> Optional[int]:
        """A byte count: an integer (not a boolean, not a fraction), 0 to MAX_BLOB_SIZE."""
        self.typed(value, field, int, 'an integer', required)
        if value is not None and value < 0:
            raise self(field, 'is %d, below 0' % value)
        if value is not None and value > MAX_BLOB_SIZE:
            raise self(field, 'is %d bytes, above the limit of %d (1 TiB)' % (value, MAX_BLOB_SIZE))
        return value


def _join(prefix: str, key: str) -> str:
    return '%s.%s' % (prefix, key) if prefix else key


def _check_descriptor(malformed: Malformed, value: Any, field: str) -> None:
    """A content descriptor: digest (a valid one), size (bounded), optional mediaType, urls, annotations."""
    malformed.typed(value, field, dict, 'an object', True)
    malformed.digest_field(value, 'digest', field)
    malformed.size(value.get('size'), '%s.size' % field)
    malformed.string(value, 'mediaType', field)
    malformed.strings(value, 'urls', field)
    annotations = malformed.typed(value.get('annotations'), '%s.annotations' % field, dict, 'an object')
    for key, text in (annotations or {}).items():
        malformed.typed(text, '%s.annotations.%s' % (field, key), str, 'a string', True)


def _check_platform(malformed: Malformed, value: Any, field: str) -> None:
    malformed.typed(value, field, dict, 'an object')
    if value is not None:
        for key in ('os', 'architecture', 'variant', 'os.version'):
            malformed.string(value, key, field)
        for key in ('os.features', 'features'):
            malformed.strings(value, key, field)


def _list(malformed: Malformed, data: Dict[str, Any], key: str) -> List[Any]:
    return malformed.typed(data.get(key), key, list, 'an array') or []


def check_manifest(data: Dict[str, Any], media_type: Optional[str], digest: str) -> None:
    """Raise IntegrityError, naming the field, unless every field this collection reads has its JSON type.

    A Go client (containers/image, distribution) refuses such documents when it decodes them; here
    they would otherwise surface as a Python TypeError deep in a walk.
    """
    malformed = Malformed('manifest', digest)
    malformed.string(data, 'mediaType', '')
    for number, entry in enumerate(_list(malformed, data, 'manifests')):
        field = 'manifests[%d]' % number
        _check_descriptor(malformed, entry, field)
        _check_platform(malformed, entry.get('platform'), '%s.platform' % field)
    if data.get('config') is not None:
        _check_descriptor(malformed, data['config'], 'config')
    for number, layer in enumerate(_list(malformed, data, 'layers')):
        _check_descriptor(malformed, layer, 'layers[%d]' % number)
    if media_type in SCHEMA1_TYPES:
        _check_schema1(malformed, data)


def _check_schema1(malformed: Malformed, data: Dict[str, Any]) -> None:
    malformed.string(data, 'architecture', '')
    fs_layers = _list(malformed, data, 'fsLayers')
    for number, fs_layer in enumerate(fs_layers):
        field = 'fsLayers[%d]' % number
        malformed.typed(fs_layer, field, dict, 'an object', True)
        malformed.digest_field(fs_layer, 'blobSum', field)
    compat = _list(malformed, data, 'history')
    for number, item in enumerate(compat):
        field = 'history[%d]' % number
        malformed.typed(item, field, dict, 'an object', True)
        malformed.string(item, 'v1Compatibility', field, required=True)
    if compat and len(compat) != len(fs_layers):
        raise malformed('history', 'has %d entries for %d fsLayers' % (len(compat), len(fs_layers)))


def check_config(config: Any, digest: str) -> Platform:
    """The fields of an image config this collection reads, with their JSON types; IntegrityError if not.

    Returns the config's Platform (:meth:`Platform.from_config`).
    """
    malformed = Malformed('image config', digest, key='config_digest')
    if not isinstance(config, dict):
        raise IntegrityError('The image config %s is malformed: it is %s, not a JSON object'
                             % (digest, _json_type(config)), details={'config_digest': digest, 'field': None})
    for key in ('os', 'architecture', 'variant', 'os.version'):
        malformed.string(config, key, '')
    rootfs = malformed.typed(config.get('rootfs'), 'rootfs', dict, 'an object')
    if rootfs is not None:
        malformed.strings(rootfs, 'diff_ids', 'rootfs')
    for number, item in enumerate(malformed.typed(config.get('history'), 'history', list, 'an array') or []):
        malformed.typed(item, 'history[%d]' % number, dict, 'an object', True)
    return Platform.from_config(config)


class Manifest:
    """The exact bytes of a manifest, their digest, and the parsed document."""

    def __init__(self, raw: bytes, media_type: Optional[str], digest: Optional[str] = None) -> None:
        self.raw = raw
        self.data = parse_json(raw, 'The manifest')
        if not isinstance(self.data, dict):
            raise IntegrityError('The manifest is not a JSON object')
        self.media_type = self._media_type(media_type)
        self.digest = digest or self.compute_digest()
        check_manifest(self.data, self.media_type, self.digest)

    def _media_type(self, header_type: Optional[str]) -> str:
        declared = self.data.get('mediaType')
        if declared and isinstance(declared, str):
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

    def compute_digest(self, algorithm: str = 'sha256') -> str:
        """The content digest; for signed schema1, of the payload without signatures, as registries do."""
        return compute_digest(self.canonical_bytes(), algorithm)

    def canonical_bytes(self) -> bytes:
        if self.media_type == DOCKER_SCHEMA1_SIGNED and self.data.get('signatures'):
            try:
                protected = self.data['signatures'][0]['protected']
                header = json.loads(_b64url(protected))
                return self.raw[:int(header['formatLength'])] + _b64url(header['formatTail'])
            except (KeyError, IndexError, ValueError, TypeError, RecursionError):
                return self.raw
        return self.raw

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def schema_version(self) -> Any:
        return self.data.get('schemaVersion')

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES

    @property
    def is_schema1(self) -> bool:
        return self.media_type in SCHEMA1_TYPES

    def children(self) -> List[Dict[str, Any]]:
        """Index entries: ``[{'digest', 'media_type', 'size', 'platform'}]``."""
        result = []
        for entry in self.data.get('manifests') or []:
            result.append({
                'digest': entry.get('digest'),
                'media_type': entry.get('mediaType'),
                'size': entry.get('size'),
                'platform': entry.get('platform'),
                'annotations': entry.get('annotations') or {},
            })
        return result

    def select_platform(self, platform: Platform) -> Dict[str, Any]:
        """The index entry for ``platform`` (see :func:`select_platform`), or raise listing what the index has."""
        children = self.children()
        child = select_platform(children, platform)
        if child is None:
            raise InvalidInputError(no_platform_message(platform, children))
        return child

    def config_descriptor(self) -> Optional[Dict[str, Any]]:
        config = self.data.get('config')
        if not isinstance(config, dict):
            return None
        return {'digest': config.get('digest'), 'media_type': config.get('mediaType'), 'size': config.get('size')}

    def layers(self) -> List[Dict[str, Any]]:
        """Layer descriptors of an image manifest (schema2/OCI), base layer first."""
        result = []
        for layer in self.data.get('layers') or []:
            result.append({'digest': layer.get('digest'), 'size': layer.get('size'),
                           'media_type': layer.get('mediaType'), 'urls': layer.get('urls')})
        return result

    def blob_descriptors(self) -> List[Dict[str, Any]]:
        """Config and layer descriptors (validated when the manifest was parsed); ``kind`` says which."""
        result = []
        config = self.config_descriptor()
        if config:
            result.append(dict(config, kind='config'))
        for layer in self.layers():
            result.append(dict(layer, kind='layer'))
        return result


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + '=' * (-len(value) % 4))


def layers_with_diff_ids(manifest: Manifest, config: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
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


def history(config: Optional[Dict[str, Any]], layers: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
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


def schema1_details(manifest: Manifest) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], Platform]:
    """Layers and history of a schema1 manifest (read-only support), base layer first.

    Every fsLayer is listed, in order, as skopeo and ``blob_verify`` see them; those of throwaway
    steps (ENV, CMD...: an empty tar, often the same blob repeated) have ``empty_layer: true``.
    """
    fs_layers = manifest.data.get('fsLayers') or []
    compat = manifest.data.get('history') or []
    layers = []
    entries = []
    config = {}
    for index in reversed(range(len(fs_layers))):
        v1 = _v1_compatibility(manifest, compat, index)
        container_config = v1.get('container_config') or {}
        created_by = ' '.join(container_config.get('Cmd') or []) or None
        empty = bool(v1.get('throwaway'))
        digest = fs_layers[index]['blobSum']
        size = v1.get('Size')
        layers.append({'digest': digest, 'size': size, 'media_type': None, 'diff_id': None, 'empty_layer': empty})
        entries.append({
            'created': v1.get('created'), 'created_by': created_by, 'comment': v1.get('comment'),
            'author': v1.get('author'), 'empty_layer': empty,
            'layer_digest': None if empty else digest, 'size': 0 if empty else (size or 0),
        })
        config = v1
    platform = Platform(config.get('os') if isinstance(config.get('os'), str) else 'linux',
                        manifest.data.get('architecture'))
    return layers, entries, platform


def _v1_compatibility(manifest: Manifest, compat: List[Any], index: int) -> Dict[str, Any]:
    """The parsed ``v1Compatibility`` of history entry ``index`` ({} when there is none), its fields checked."""
    if index >= len(compat):
        return {}
    field = 'history[%d].v1Compatibility' % index
    malformed = Malformed('manifest', manifest.digest)
    try:
        v1 = parse_json(compat[index]['v1Compatibility'], 'the JSON of %s' % field)
    except IntegrityError as error:
        raise malformed(field, 'is not usable: %s' % error.msg)
    malformed.typed(v1, field, dict, 'an object', True)
    malformed.size(v1.get('Size'), '%s.Size' % field, required=False)
    container_config = malformed.typed(v1.get('container_config'), '%s.container_config' % field, dict,
                                       'an object')
    if container_config is not None:
        malformed.strings(container_config, 'Cmd', '%s.container_config' % field)
    return v1
