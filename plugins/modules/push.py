#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: push
short_description: Push an image archive (OCI layout, OCI archive, docker-archive) to a registry, without a daemon
version_added: 0.1.0
description:
  - Pushes the image in O(src) to O(image) over the Registry HTTP API v2, without a container daemon.
  - O(src) is an OCI image layout directory, an OCI archive tarball (C(podman save --format oci-archive),
    C(buildah push oci-archive:), C(skopeo copy ... oci-archive:)) or a docker-archive tarball (C(docker save),
    C(podman save)), uncompressed or compressed with gzip, bzip2 or xz.
  - Nothing is extracted. Only the files the archive's C(index.json) or C(manifest.json) leads to are read, as
    regular files; a compressed tarball is read as a stream and only those members are copied, each bounded by
    its size, into a temporary directory (the only place push writes to), so other members (absolute or C(../)
    paths, devices, huge unused files) are skipped. A link is followed only while it stays inside the layout
    directory or the tarball; a file reached through a link that leaves it, or a blob whose size is not the one
    its descriptor states, fails the task before anything is sent to the registry.
  - OCI images and indexes are pushed as they are, so their digest is kept. An index may list other indexes,
    down to 4 levels of indexes (the limit M(imagelayers.registry.blob_verify) uses too); every manifest they
    lead to is pushed by digest before the top one.
  - The layers of a docker-archive are uncompressed tars; each is compressed deterministically (gzip level 6,
    no file name, no timestamp), checked against the image config's C(rootfs.diff_ids), and a Docker schema2
    manifest is built. The same archive gives the same digest every time on the same host, so pushing it again
    changes nothing.
  - The compressed bytes, hence the layer and manifest digests, depend on the zlib library of the managed node
    (RV(layer_compression) says which). Hosts with another zlib build, for example zlib-ng, which some
    distributions ship in its place, give other digests for the same docker-archive, and pushing from one of
    them to an existing tag moves the tag (or fails with O(overwrite=false)). For digests that do not depend on
    the pushing host, push an OCI archive or layout (its layers are compressed when it is built), or push once
    and promote the digest with M(imagelayers.registry.copy).
  - "Order: every blob (skipping what the registry has, verifying the bytes while they are sent), then each child
    manifest by digest, then the manifest under the tag, last."
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description: Reads the archive (compressing docker-archive layers to learn the digest, in the temporary
      directory), C(HEAD)s the tag and the blobs, and reports what a real run would upload and write; writes nothing
      to the registry, and nothing outside the temporary directory.
  diff_mode:
    support: full
    description: C(before) and C(after) map the tag to its digest; a tag that does not exist is left out.
options:
  src:
    description:
      - Path of an OCI image layout directory, an OCI archive or a docker-archive tarball on the managed node.
    type: path
    required: true
  image:
    description:
      - The destination, C([registry/]repository:tag); without a tag, V(latest).
      - C([registry/]repository@digest) pushes by digest only; the digest must be the one of the archive's image.
    type: str
    required: true
  archive_image:
    description:
      - Which image of an archive holding several to push, by name (a C(RepoTags) entry of a docker-archive, the
        C(org.opencontainers.image.ref.name) annotation of an OCI layout, for example V(app:1.4.2) or V(1.4.2)) or
        by index (V(0) is the first). A name is tried first, so a numeric tag such as V(1) selects the image of
        that name; a number that names no image is an index.
      - Not needed for an archive with one image; required otherwise.
    type: str
  overwrite:
    description:
      - Whether the tag may be moved when it exists and points at another digest.
    type: bool
    default: true
  expected_digest:
    description:
      - The digest the image to push must have; the task fails before anything is written otherwise.
    type: str
  workers:
    description:
      - How many blobs are uploaded at once.
    type: int
    default: 4
seealso:
  - module: imagelayers.registry.copy
  - module: imagelayers.registry.tag
'''

EXAMPLES = r'''
- name: Push an image built with podman
  imagelayers.registry.push:
    src: /build/app.oci.tar
    image: registry.example.com/app:1.4.2

- name: Push one image of a docker save archive holding several
  imagelayers.registry.push:
    src: /build/images.tar
    archive_image: app:1.4.2
    image: registry.example.com/app:1.4.2
    overwrite: false

- name: Push an OCI layout directory
  imagelayers.registry.push:
    src: /build/oci-layout
    archive_image: "1.4.2"
    image: registry.example.com/app:1.4.2
'''

RETURN = r'''
image:
  description: The normalised reference the image was pushed to.
  returned: always
  type: str
  sample: registry.example.com/app:1.4.2
layer_compression:
  description:
    - How the layers of a docker-archive were compressed on the managed node; the digests depend on it.
  returned: when docker-archive layers were compressed
  type: str
  sample: gzip level 6, zlib 1.2.13
format:
  description: What O(src) is.
  returned: always
  type: str
  sample: docker-archive
  choices: [oci-layout, oci-archive, docker-archive]
digest:
  description: The digest of the pushed manifest.
  returned: always
  type: str
  sample: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
media_type:
  description: Media type of the pushed manifest.
  returned: always
  type: str
  sample: application/vnd.docker.distribution.manifest.v2+json
blobs_copied:
  description: Blobs uploaded (in check mode, to be uploaded).
  returned: always
  type: int
  sample: 3
blobs_mounted:
  description: Always 0 for a push.
  returned: always
  type: int
  sample: 0
blobs_skipped:
  description: Blobs the registry already had.
  returned: always
  type: int
  sample: 0
bytes_transferred:
  description: Blob bytes uploaded.
  returned: always
  type: int
  sample: 31457280
manifests_pushed:
  description: Manifests written.
  returned: always
  type: int
  sample: 1
images:
  description: One entry per image manifest of the pushed image (one per platform of an index).
  returned: always
  type: list
  elements: dict
  sample:
    - platform: linux/amd64
      digest: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      media_type: application/vnd.docker.distribution.manifest.v2+json
      layers: 3
      size: 31457280
tags:
  description: The tag, with the digest it pointed at before and after (empty for a push by digest).
  returned: always
  type: list
  elements: dict
  sample:
    - tag: "1.4.2"
      before: null
      after: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      changed: true
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._archive import push_archive
from ansible_collections.imagelayers.registry.plugins.module_utils._context import DEFAULT_WORKERS
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference


def run(rm):
    params = rm.params
    reference = ImageReference.parse(params['image'], default_tag='latest')
    outcome = push_archive(rm.client(reference), reference, params['src'], rm.context(workers=params['workers']),
                           archive_image=params['archive_image'], expected_digest=params['expected_digest'],
                           overwrite=params['overwrite'], tmpdir=rm.module.tmpdir)
    return outcome.to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'src': {'type': 'path', 'required': True},
        'image': {'type': 'str', 'required': True},
        'archive_image': {'type': 'str'},
        'overwrite': {'type': 'bool', 'default': True},
        'expected_digest': {'type': 'str'},
        'workers': {'type': 'int', 'default': DEFAULT_WORKERS},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
