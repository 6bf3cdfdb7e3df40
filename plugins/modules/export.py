#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: export
short_description: Export images from registries to an OCI layout, an OCI archive or a docker-archive, verified
version_added: 0.2.0
description:
  - Writes the images O(images) names into O(dest), over the Registry HTTP API v2, without a container daemon,
    for example to carry a release to an air-gapped site. The result can be pushed back with
    M(imagelayers.registry.push), read by C(skopeo copy oci:DIR:REF) or loaded by C(podman load -i).
  - Every blob is hashed while it is written and must match its digest and size; it is written to a temporary
    file and renamed into place only then. Every digest is validated before anything is written, so a registry
    cannot name a file outside O(dest).
  - "O(format=oci-layout): resumable and idempotent. A blob file already in O(dest) is hashed and kept when it
    verifies; only missing or damaged ones (reported in RV(blobs_replaced)) are fetched. Manifests go next and
    C(index.json) last, merged with the one in O(dest): each image is listed under the name O(ref_names) gives it
    as C(org.opencontainers.image.ref.name), an entry of the same name is replaced, every other entry is kept.
    A second run fetches no blob (it reads the manifests only) and reports no change."
  - "O(format=oci-archive) and O(format=docker-archive): a tarball written in a temporary file next to O(dest) and
    renamed over it. Its bytes depend only on the images: sorted members, mtime 0, uid and gid 0, no owner names,
    fixed modes. When O(dest) already holds exactly that archive (read as a stream, every member hashed), nothing
    is fetched and the task reports no change; otherwise every blob is fetched again."
  - A docker-archive holds one image, a single-platform one (give one platform with O(platforms) for a
    multi-platform image). Its layers are kept as the registry serves them (gzip or zstd), as C(<hex>.tar.gz),
    C(<hex>.tar.zst) or C(<hex>.tar); C(podman load) and C(docker load) decompress them. Its C(RepoTags) is the
    reference (none when given by digest).
  - Foreign (non-distributable) layers are not exported to OCI formats, as M(imagelayers.registry.copy) does not
    copy them; a docker-archive of an image that has some is refused.
notes:
  - Images are exported byte for byte, so their digests are kept; a Docker schema2 image stays one. C(skopeo) 1.9
    looks only at OCI media types in a layout's C(index.json) and does not find such an image there;
    M(imagelayers.registry.push) does.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description: Reads the manifests and hashes what O(dest) holds; reports what a real run would fetch and write
      (RV(blobs_fetched), RV(bytes_transferred)) and writes nothing. No blob is fetched.
  diff_mode:
    support: full
    description: C(before) and C(after) give the refs (name to digest) and the number of blob files of O(dest).
options:
  images:
    description:
      - The images, each C([registry/]repository:tag) or C([registry/]repository@digest). Without a tag or
        digest, V(latest) is used. They may come from different registries; the connection options apply to each.
      - Two images that would get the same name in the export (see O(ref_names)) with different digests are
        refused.
    type: list
    elements: str
    required: true
  dest:
    description:
      - The OCI layout directory (created when absent) or the archive file to write.
      - An existing directory that holds other files and no OCI layout is refused, as is one whose C(blobs)
        directory is a link leading out of it.
    type: path
    required: true
  format:
    description:
      - V(oci-layout) a directory, V(oci-archive) a tarball of one, V(docker-archive) the tarball of C(docker save)
        (one image only).
    type: str
    choices: [oci-layout, oci-archive, docker-archive]
    default: oci-layout
  platforms:
    description:
      - Export only these platforms of a multi-platform image, chosen as M(imagelayers.registry.copy) chooses
        them (see its O(imagelayers.registry.copy#module:platforms)). Several platforms make a new index, one
        platform that platform's image manifest; either has a digest of its own, the one the layout lists.
      - Default is every platform.
    type: list
    elements: str
  ref_names:
    description:
      - What each image is called in the index (C(org.opencontainers.image.ref.name), the name
        C(skopeo copy oci:DIR:NAME) and O(imagelayers.registry.push#module:archive_image) select it by).
      - V(tag) its tag, for example V(1.4.2), or its digest when given by digest.
      - V(repository) its repository path and tag, for example V(team/app:1.4.2) (V(team/app@sha256:...) when given
        by digest), so one layout can hold the same tag of several repositories, as a release usually does.
      - Every entry also carries C(io.containerd.image.name), the full reference, whichever is chosen.
    type: str
    choices: [tag, repository]
    default: tag
  workers:
    description:
      - How many blobs are fetched at once (O(format=oci-layout); archives are written one blob after the other).
    type: int
    default: 4
'''

EXAMPLES = r'''
- name: Export a release for an air-gapped site
  imagelayers.registry.export:
    images:
      - registry.example.com/app:1.4.2
      - registry.example.com/web@sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
    dest: /srv/airgap/release-1.4
    platforms: [linux/amd64]

- name: One release of several repositories, all tagged 1.4.2, in one layout (read back as oci:DIR:team/app:1.4.2)
  imagelayers.registry.export:
    images:
      - registry.example.com/team/app:1.4.2
      - registry.example.com/team/web:1.4.2
    dest: /srv/airgap/release-1.4
    ref_names: repository

- name: One image as a docker-archive, for podman load -i
  imagelayers.registry.export:
    images: [registry.example.com/app:1.4.2]
    dest: /srv/airgap/app-1.4.2.tar
    format: docker-archive
    platforms: [linux/amd64]
'''

RETURN = r'''
dest:
  description: The absolute path of O(dest).
  returned: always
  type: str
  sample: /srv/airgap/release-1.4
format:
  description: The format written.
  returned: always
  type: str
  sample: oci-layout
images:
  description: One entry per image exported, in the order given (an image named twice once).
  returned: always
  type: list
  elements: dict
  contains:
    reference:
      description: The normalised reference.
      type: str
    ref_name:
      description: "Its name in the export (C(org.opencontainers.image.ref.name)), as O(ref_names) gives it."
      type: str
    digest:
      description: The digest of the manifest exported (a new one when O(platforms) selects a subset).
      type: str
    media_type:
      description: Its media type.
      type: str
    platforms:
      description: The platforms it holds.
      type: list
      elements: str
    blobs:
      description: How many files (manifests, configs, layers) it has in the export.
      type: int
  sample:
    - reference: registry.example.com/app:1.4.2
      ref_name: 1.4.2
      digest: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      media_type: application/vnd.oci.image.manifest.v1+json
      platforms: [linux/amd64]
      blobs: 5
blobs_fetched:
  description: Configs and layers fetched from the registries (in check mode, that a real run would fetch).
  returned: always
  type: int
  sample: 3
blobs_present:
  description: Configs and layers already in O(dest), verified, and not fetched.
  returned: always
  type: int
  sample: 2
blobs_replaced:
  description: Digests of the files of O(dest) that were damaged (wrong bytes, or a link) and were replaced.
  returned: always
  type: list
  elements: str
  sample: []
manifests_written:
  description: Manifest files written to the layout (missing or damaged ones); 0 for archives.
  returned: always
  type: int
  sample: 1
bytes_transferred:
  description: Blob bytes received from the registries (in check mode, the sizes a real run would fetch).
  returned: always
  type: int
  sample: 31457280
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._context import DEFAULT_WORKERS
from ansible_collections.imagelayers.registry.plugins.module_utils._export import FORMATS, REF_NAME_STYLES, export_images
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference


def run(rm):
    params = rm.params
    references = [ImageReference.parse(image, default_tag='latest') for image in params['images']]
    targets = [(rm.client(reference), reference) for reference in references]
    outcome = export_images(targets, params['dest'], params['format'], rm.context(workers=params['workers']),
                            platforms=params['platforms'], naming=params['ref_names'])
    return outcome.to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'images': {'type': 'list', 'elements': 'str', 'required': True},
        'dest': {'type': 'path', 'required': True},
        'format': {'type': 'str', 'choices': list(FORMATS), 'default': 'oci-layout'},
        'platforms': {'type': 'list', 'elements': 'str'},
        'ref_names': {'type': 'str', 'choices': list(REF_NAME_STYLES), 'default': 'tag'},
        'workers': {'type': 'int', 'default': DEFAULT_WORKERS},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
