#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: manifest_info
short_description: Inspect an image's manifest, config, layers and history in a registry
version_added: 0.1.0
description:
  - Fetches the manifest of an image from a container registry over the Registry HTTP API v2, without a
    container daemon, the way C(skopeo inspect), C(crane manifest) or C(docker history) show it.
  - For an image, also fetches its config blob and returns the layers with their C(diff_id)s and the
    build history aligned to the layers.
  - For a multi-platform image (OCI index or Docker manifest list), returns the platforms it holds; with
    O(platform) it describes that platform's image.
  - Every manifest and config is verified against its digest, computed from the bytes received.
  - A missing repository, tag or digest is not a failure; it gives RV(exists=false).
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
  - imagelayers.registry._attributes.info_module
options:
  image:
    description:
      - The image reference, C([registry/]repository[:tag][@digest]).
      - Without a tag or digest, V(latest) is used. A name without a registry host refers to Docker Hub.
    type: str
    required: true
  platform:
    description:
      - The platform to describe when O(image) is an index or manifest list, as C(os/architecture[/variant]),
        for example V(linux/amd64) or V(linux/arm64/v8).
      - The image is chosen as C(skopeo) and C(podman) (containers/image) choose it. A variant accepts itself,
        then each older variant, then an entry without a variant; V(linux/arm/v8) takes C(arm/v8), C(arm/v7),
        C(arm/v6), C(arm/v5), C(arm), the first one the index has. V(linux/amd64/v3) takes C(amd64/v3),
        C(amd64/v2), C(amd64).
      - Without a variant, an entry without a variant comes first, then the newest variant. V(linux/arm)
        takes C(arm), C(arm/v8), C(arm/v7), C(arm/v6), C(arm/v5). V(linux/arm64) takes C(arm64), C(arm64/v8).
        V(linux/amd64) takes C(amd64) only (C(amd64/v1) being the same).
      - When two entries declare the same platform, the first in the index wins. The other modules
        (M(imagelayers.registry.copy), M(imagelayers.registry.blob_verify)) and the
        P(imagelayers.registry.digest#lookup) lookup choose the same way.
      - For a single-platform image, O(platform) must accept the image's platform, else the module fails.
    type: str
notes:
  - Docker schema1 manifests, still served by some old registries, are described read-only with a warning;
    their layer sizes come from the C(v1Compatibility) history.
  - A manifest or config whose fields have the wrong JSON type fails the task. This covers a size that is not
    an integer from 0 to 1 TiB, a digest that is not a sha256 or sha512 digest, and JSON nested more than 32
    levels deep. The error is an integrity error that names the field and the manifest's digest.
'''

EXAMPLES = r'''
- name: Inspect an image
  imagelayers.registry.manifest_info:
    image: localhost:5000/hello-world:latest
  register: img

- name: Show the layers and history
  ansible.builtin.debug:
    msg: "{{ item.created_by }} ({{ item.size }} bytes)"
  loop: "{{ img.history }}"

- name: The arm64 image of a multi-platform image
  imagelayers.registry.manifest_info:
    image: registry.example.com/app:1.4.2
    platform: linux/arm64
    username: ci
    password: "{{ registry_password }}"
  register: arm

- name: Fail the pipeline when the tag is missing
  imagelayers.registry.manifest_info:
    image: registry.example.com/app:1.4.2
  register: release
  failed_when: not release.exists
'''

RETURN = r'''
image:
  description: The normalised reference that was inspected.
  returned: always
  type: str
  sample: localhost:5000/hello-world:latest
exists:
  description: Whether the repository and tag or digest exist.
  returned: always
  type: bool
  sample: true
digest:
  description: Digest of the manifest (of the index, for a multi-platform image), computed from its bytes.
  returned: always
  type: str
  sample: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
media_type:
  description: Media type of the manifest.
  returned: always
  type: str
  sample: application/vnd.oci.image.manifest.v1+json
schema_version:
  description: The manifest's C(schemaVersion).
  returned: always
  type: int
  sample: 2
size:
  description: Size of the manifest in bytes.
  returned: always
  type: int
  sample: 1089
manifest:
  description: The parsed manifest.
  returned: always
  type: dict
manifests:
  description: The entries of an index or manifest list.
  returned: when the manifest is an index or manifest list
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the platform's manifest.
      type: str
    media_type:
      description: Its media type.
      type: str
    size:
      description: Its size in bytes.
      type: int
    platform:
      description: C(os), C(architecture) and optional C(variant) and C(os.version).
      type: dict
  sample:
    - digest: sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b
      media_type: application/vnd.oci.image.manifest.v1+json
      size: 1089
      platform: {os: linux, architecture: arm64, variant: v8}
image_digest:
  description: Digest of the image manifest whose layers are described.
  returned: when the reference is an image, or an index with O(platform)
  type: str
platform:
  description: Platform of the described image, from its config.
  returned: when the reference is an image, or an index with O(platform)
  type: dict
  sample: {os: linux, architecture: amd64}
config_digest:
  description: Digest of the image config blob (null for schema1).
  returned: when the reference is an image, or an index with O(platform)
  type: str
config:
  description: The image config (fetched and verified against its digest).
  returned: when the reference is an image, or an index with O(platform)
  type: dict
layers:
  description:
    - The layers, base layer first.
    - For a Docker schema1 manifest, every C(fsLayers) entry in order, as C(skopeo inspect) and
      M(imagelayers.registry.blob_verify) list them. This includes the layers of throwaway steps (C(ENV),
      C(CMD), ...), which are often the same empty blob repeated; those have RV(layers[].empty_layer=true).
  returned: when the reference is an image, or an index with O(platform)
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the (usually compressed) layer blob.
      type: str
    size:
      description:
        - Size of the layer blob in bytes.
        - For schema1, the C(Size) of its C(v1Compatibility) history entry (uncompressed), or null.
      type: int
    media_type:
      description: Media type of the layer (null for schema1).
      type: str
    diff_id:
      description: Digest of the uncompressed layer, from the config's C(rootfs.diff_ids) (null for schema1).
      type: str
    empty_layer:
      description: Schema1 only. Whether the layer belongs to a throwaway step and holds nothing.
      type: bool
      returned: for a Docker schema1 manifest
total_size:
  description:
    - Sum of the layer blob sizes in bytes (what a pull downloads, config and manifest aside).
    - For schema1, the sum over the layers without RV(layers[].empty_layer).
  returned: when the reference is an image, or an index with O(platform)
  type: int
  sample: 2479
history:
  description:
    - The config's history, oldest first (C(docker history) shows it newest first), each entry paired with
      the layer it created.
    - Entries with C(empty_layer) (C(ENV), C(CMD), C(LABEL), ...) have no layer and size 0.
  returned: when the reference is an image, or an index with O(platform)
  type: list
  elements: dict
  contains:
    created:
      description: When the step ran.
      type: str
    created_by:
      description: The build instruction.
      type: str
    comment:
      description: The build tool's comment.
      type: str
    empty_layer:
      description: Whether the step created no layer.
      type: bool
    layer_digest:
      description: Digest of the step's layer, or null.
      type: str
    size:
      description: Size of the step's layer blob (compressed), 0 for empty layers.
      type: int
'''

from typing import Any

from ansible_collections.imagelayers.registry.plugins.module_utils._inspect import inspect_image
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import Platform
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference


def run(rm: RegistryModule) -> dict[str, Any]:
    reference = ImageReference.parse(rm.params['image'], default_tag='latest')
    platform = Platform.parse(rm.params['platform']) if rm.params['platform'] else None
    return inspect_image(rm.client(reference), reference, platform=platform, ctx=rm.context()).to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'image': {'type': 'str', 'required': True},
        'platform': {'type': 'str'},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
