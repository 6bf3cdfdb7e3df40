#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: blob_verify
short_description: Download and verify image blobs against their digests, or check that they exist
version_added: 0.1.0
description:
  - Streams blobs from a container registry over the Registry HTTP API v2 and checks that their bytes hash to
    their digest and have the size their descriptor gives, the way C(curl .../blobs/sha256:... | sha256sum)
    and C(wc -c) would, for every blob of an image in one task.
  - With a tag or digest in O(image) and no O(digests), verifies the whole image, the manifests included
    (their bytes must hash to their digests); for an OCI index or Docker manifest list, every platform's
    manifest, config and layers (or only one platform with O(platform)). A blob shared by several platforms
    is verified once.
  - Blobs are read in fixed-size chunks and hashed while they stream, in constant memory; never more bytes
    than the descriptor's size are read, and a C(Content-Length) that disagrees with it fails before
    anything is read. A connection that drops in the middle of a blob is resumed with a C(Range) request
    (or restarted), at most O(retries) times.
  - With O(dest), keeps verified copies in C(<dest>/blobs/<algorithm>/<hex>) (the blob layout of an OCI
    image layout); files are written to a temporary file and renamed into place only after they verify.
  - The module fails when anything does not verify, with a message listing every bad blob with its
    expected and actual digest and size; RV(blobs) is returned in that case too.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description: Blobs are still downloaded and verified, but nothing is written under O(dest); C(changed)
      says whether a real run would write files.
  diff_mode:
    support: full
    description: With O(dest), the files under O(dest) before and after (C(blobs/<algorithm>/<hex>), with
      C((does not verify)) after files whose content is wrong).
options:
  image:
    description:
      - The image, C([registry/]repository[:tag][@digest]).
      - With a tag or digest and no O(digests), every manifest and blob of the image is verified. Without a tag
        or digest, O(digests) is required.
      - With both a tag or digest and O(digests), only the listed blobs are verified, and each must belong to
        the image (their size and media type come from the image's manifests).
    type: str
    required: true
  digests:
    description:
      - Verify only these blobs (C(algorithm:hex) digests) of the repository.
      - Without a tag or digest in O(image), their sizes are not known in advance; the digest alone is checked
        and RV(blobs[].size) is what the registry sent.
    type: list
    elements: str
  platform:
    description:
      - Limit an index or manifest list to one platform, C(os/architecture[/variant]), for example
        V(linux/arm64/v8). By default every platform is verified.
      - The entry is the one M(imagelayers.registry.manifest_info) describes for this platform, chosen the way
        C(skopeo) and C(podman) choose it. V(linux/arm/v8) falls back to C(arm/v7), C(arm/v6), C(arm/v5), then
        C(arm). V(linux/arm) prefers an entry without a variant, then the newest variant. See the
        O(imagelayers.registry.manifest_info#module:platform) option for the whole order.
      - For a single-platform image, O(platform) must accept the image's platform, else the module fails.
    type: str
  check:
    description:
      - V(full) downloads every blob and verifies its digest and size.
      - V(exists) only asks the registry (C(HEAD)) whether it has each blob and whether its size is the
        expected one; the content is not checked. Manifests are always fetched and verified.
    type: str
    choices: [full, exists]
    default: full
  dest:
    description:
      - A directory to keep verified copies in, as C(<dest>/blobs/<algorithm>/<hex>); manifests are kept
        there too. It is created when needed.
      - A file that is already there and verifies is not downloaded again (the registry is only asked whether
        it still has the blob); one that does not verify is replaced. Nothing partial is ever left behind.
      - Requires O(check=full).
    type: path
  workers:
    description:
      - How many blobs are transferred in parallel (1 to 32).
    type: int
    default: 4
notes:
  - Redirects to storage backends (S3, GCS, CDNs) are followed without the C(Authorization) header.
  - Layers marked as foreign or non-distributable with C(urls) that the registry does not have are reported
    with status V(skipped) and do not fail the task.
  - Docker schema1 manifests give no layer sizes; their layers are verified by digest only. Every C(fsLayers) blob
    is verified, those of throwaway steps too (once, however often the manifest repeats them).
  - A manifest with fields of the wrong JSON type is an integrity error naming the field and the manifest.
    Examples are C(layers) given as a number, a size that is not an integer from 0 to 1 TiB, and JSON nested more than 32
    levels. For the top manifest the task fails at once. For a child manifest the item is a V(mismatch), and
    its RV(blobs[].message) names the field.
seealso:
  - module: imagelayers.registry.manifest_info
'''

EXAMPLES = r'''
- name: Verify every blob of an image, all platforms of an index
  imagelayers.registry.blob_verify:
    image: registry.example.com/app:1.4.2

- name: Check that selected blobs exist with the expected size, without downloading them
  imagelayers.registry.blob_verify:
    image: registry.example.com/app
    digests:
      - sha256:6b98dfc16071fb1c0dc4ab71bd3a5b8bf4e2bd8a4f4f1a0b0c0e2d8a8f1e9b1c
    check: exists

- name: Keep verified copies of the arm64 image (idempotent)
  imagelayers.registry.blob_verify:
    image: registry.example.com/app:1.4.2
    platform: linux/arm64
    dest: /srv/mirror/app
    username: ci
    password: "{{ registry_password }}"
  register: mirror

- name: Show what was verified
  ansible.builtin.debug:
    msg: "{{ mirror.verified_count }} items, {{ mirror.bytes_verified }} bytes in {{ mirror.elapsed }} s"
'''

RETURN = r'''
image:
  description: The normalised reference.
  returned: always
  type: str
  sample: registry.example.com/app:1.4.2
digest:
  description: Digest of the manifest the reference points to (null when only O(digests) of a repository were
    verified).
  returned: always
  type: str
  sample: sha256:1fae8da4ca7fdfaa1d1e223cceef063642ceb1779b5f3992c58c755ce9263d3c
check:
  description: The check that was done, V(full) or V(exists).
  returned: always
  type: str
  sample: full
blobs:
  description:
    - Every verified item, manifests first in the order they were reached, then configs and layers; returned
      also when the module fails.
  returned: always
  type: list
  elements: dict
  contains:
    digest:
      description: The digest the item must have.
      type: str
    size:
      description: Its size in bytes from its descriptor (or, when unknown, what the registry sent).
      type: int
    media_type:
      description: Its media type from the descriptor (null when unknown).
      type: str
    kind:
      description: V(manifest), V(config), V(layer), or V(blob) for a digest given without an image.
      type: str
    platform:
      description: The first platform the item belongs to, C(os/architecture[/variant]); null for an index and
        for blobs given by digest.
      type: str
    platforms:
      description: Every platform that uses the item (a layer may be shared).
      type: list
      elements: str
    status:
      description:
        - V(ok); V(missing) (the registry does not have it, C(BLOB_UNKNOWN)); V(mismatch) (wrong digest or
          size, or a malformed manifest); V(error) (transfer failed after the retries); V(skipped) (foreign layer the registry does not
          distribute).
      type: str
    verified:
      description: Whether the item passed the check; with O(check=exists), that the registry has it with the
        expected size.
      type: bool
    message:
      description: What is wrong.
      returned: when RV(blobs[].status) is not V(ok)
      type: str
    actual_digest:
      description: What the bytes received hash to (null when not known, for example when reading stopped).
      returned: when RV(blobs[].status) is not V(ok)
      type: str
    actual_size:
      description: How many bytes were received or announced (null when not known).
      returned: when RV(blobs[].status) is not V(ok)
      type: int
    path:
      description: Where the verified copy is kept (null when it is not).
      returned: when O(dest) is set
      type: str
    changed:
      description: Whether the file was written (in check mode, would be).
      returned: when O(dest) is set
      type: bool
  sample:
    - digest: sha256:f64bba1e6a3124280a57d1cde925abd980ffd3745cb932d42b55d98bc6b579b9
      size: 268435456
      media_type: application/vnd.docker.image.rootfs.diff.tar.gzip
      kind: layer
      platform: linux/amd64
      platforms: [linux/amd64]
      status: ok
      verified: true
verified_count:
  description: How many items passed the check.
  returned: always
  type: int
  sample: 33
failed_count:
  description: How many items did not (missing, mismatch or error).
  returned: always
  type: int
  sample: 0
bytes_verified:
  description: Bytes hashed and found correct, kept copies under O(dest) included (with O(check=exists), only
    the manifests').
  returned: always
  type: int
  sample: 268443712
bytes_downloaded:
  description: Blob bytes received from the registry (less than RV(bytes_verified) when copies under O(dest)
    were already correct).
  returned: always
  type: int
  sample: 268435456
elapsed:
  description: Seconds the verification took.
  returned: always
  type: float
  sample: 0.231
dest:
  description: The absolute path of O(dest).
  returned: when O(dest) is set
  type: str
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._blob_verify import CHECKS, verify_blobs
from ansible_collections.imagelayers.registry.plugins.module_utils._context import DEFAULT_WORKERS
from ansible_collections.imagelayers.registry.plugins.module_utils._manifest import Platform
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference


def run(rm):
    params = rm.params
    reference = ImageReference.parse(params['image'])
    platform = Platform.parse(params['platform']) if params['platform'] else None
    return verify_blobs(rm.client(reference), reference, rm.context(workers=params['workers']),
                        digests=params['digests'], platform=platform, check=params['check'], dest=params['dest'])


def main() -> None:
    rm = RegistryModule(argument_spec={
        'image': {'type': 'str', 'required': True},
        'digests': {'type': 'list', 'elements': 'str'},
        'platform': {'type': 'str'},
        'check': {'type': 'str', 'default': 'full', 'choices': list(CHECKS)},
        'dest': {'type': 'path'},
        'workers': {'type': 'int', 'default': DEFAULT_WORKERS},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
