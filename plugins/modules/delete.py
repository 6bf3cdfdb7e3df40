#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: delete
short_description: Delete a manifest from a registry, refusing while other tags or an index still refer to it
version_added: 0.2.0
description:
  - Deletes the manifest O(image) names, by digest, over the Registry HTTP API v2. A tag is resolved to its
    digest first, and the digest is reported in RV(digest).
  - Deleting a manifest deletes every tag that points at it, and breaks an index that lists it. So the
    repository's tags are listed and resolved first (one C(HEAD) each), and the manifests of tagged indexes
    read; unless O(force=true), the task fails before deleting anything while another tag points at the
    digest or a tagged index lists it, naming them.
  - Deleting what is not there is not a failure; the task reports no change.
  - To delete a tag and keep the image, use M(imagelayers.registry.tag) with
    O(imagelayers.registry.tag#module:state=absent); to delete by retention rules, M(imagelayers.registry.prune).
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description:
      - Checks the references as a real run does and reports what it would delete; the only request that is
        not a read is the C(DELETE) probe of a digest that cannot exist, which tells whether the registry has
        deletion disabled (then check mode fails as the real run would).
  diff_mode:
    support: full
    description: C(before) maps the digest to the tags that point at it; C(after) is empty once it is deleted.
options:
  image:
    description:
      - The manifest to delete, C([registry/]repository@digest), or C([registry/]repository:tag) to delete the
        manifest the tag points at.
    type: str
    required: true
  force:
    description:
      - Delete the manifest even when other tags point at it (they are deleted with it) or a tagged index in
        the repository lists it (the index then names a manifest that is gone).
      - When given by tag, the tag itself does not count as another tag.
    type: bool
    default: false
notes:
  - Deleting needs deletion enabled on the registry (on CNCF distribution, C(storage.delete.enabled)); where it
    is disabled, the task fails and says so.
  - Blobs are freed by the registry's garbage collection, not by this module.
  - Indexes that are not tagged, and other repositories, are not searched.
seealso:
  - module: imagelayers.registry.prune
  - module: imagelayers.registry.tag
'''

EXAMPLES = r'''
- name: Delete a manifest no tag needs any more
  imagelayers.registry.delete:
    image: registry.example.com/team/app@sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b

- name: Delete the image behind a tag, with every other tag on it
  imagelayers.registry.delete:
    image: registry.example.com/team/app:pr-77
    force: true
'''

RETURN = r'''
image:
  description: The normalised reference of O(image).
  returned: always
  type: str
  sample: registry.example.com/team/app:pr-77
digest:
  description: The digest O(image) resolves to; null when it does not exist.
  returned: always
  type: str
  sample: sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b
media_type:
  description: The media type of the manifest; null when it does not exist.
  returned: always
  type: str
  sample: application/vnd.oci.image.manifest.v1+json
deleted:
  description: The digest deleted (in check mode, that would be); null when nothing was.
  returned: always
  type: str
  sample: sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b
tags:
  description: The tags that pointed at the digest (deleted with it).
  returned: always
  type: list
  elements: str
  sample: [pr-77]
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import DEFAULT_FANOUT
from ansible_collections.imagelayers.registry.plugins.module_utils._retention import delete_manifest, delete_target


def run(rm: RegistryModule) -> dict:
    reference = delete_target(rm.params['image'])
    outcome = delete_manifest(rm.client(reference), reference, force=rm.params['force'],
                              ctx=rm.context(workers=DEFAULT_FANOUT))
    return outcome.to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'image': {'type': 'str', 'required': True},
        'force': {'type': 'bool', 'default': False},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
