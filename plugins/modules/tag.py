#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: tag
short_description: Add, move or delete tags of an image in a registry, without pulling it
version_added: 0.1.0
description:
  - Points tags at the image O(image) resolves to, in the same repository, over the Registry HTTP API v2,
    without a container daemon and without downloading layers, like C(crane tag) or C(regctl image copy)
    within a repository.
  - Idempotent and truthful. Every tag is checked with a C(HEAD) first; a tag that already points at the
    image's digest is not written at all (registries with immutable tags, such as ECR and Harbor, reject
    even an identical C(PUT)). Otherwise the manifest is fetched once and written byte for byte under each
    tag that differs, and the digest the registry answers is checked.
  - Manifest lists and OCI indexes keep their digest, since their platform images already live in the
    repository.
  - With O(state=absent), deletes tags and only the tags, never the image they point at or its other tags.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description:
      - Asks the registry where every tag points and reports what a real run would change; sends no write request
        that could change anything.
      - With O(state=absent), when a tag would be deleted, one C(DELETE) of a digest that cannot exist tells whether
        the registry has deletion disabled (it answers 405 then, 404 otherwise); where it is disabled, check mode
        fails as the real run would, saying so.
  diff_mode:
    support: full
    description: C(before) and C(after) map each tag to its digest; a tag that does not exist is left out.
options:
  image:
    description:
      - With O(state=present), the source image, C([registry/]repository:tag) or C([registry/]repository@digest).
        Without a tag or digest, V(latest) is used.
      - With O(state=absent), the repository, and the tag to delete when O(tags) is not given.
    type: str
    required: true
  tags:
    description:
      - Tag names (not references) in the repository of O(image).
      - A tag name is 1 to 128 letters, digits, C(_), C(.) and C(-), not starting with C(.) or C(-). A name with
        white space or a trailing line break (as a YAML block scalar or a file read without trimming gives) is
        refused before any request.
      - With O(state=present), the tags to point at the image; required.
      - With O(state=absent), the tags to delete; when not given, the tag of O(image) is deleted.
    type: list
    elements: str
  state:
    description:
      - V(present) points O(tags) at the image.
      - V(absent) deletes the tags. Where the registry supports the OCI tag C(DELETE), that is used; otherwise
        (CNCF distribution 2.x) a small, unique placeholder manifest is pushed to the tag and deleted by its own
        digest, which removes the tag and nothing else.
    type: str
    choices: [present, absent]
    default: present
  overwrite:
    description:
      - Whether a tag that exists and points at another digest may be moved.
      - With V(false), such a tag fails the task before anything is written (immutable release tags); a tag
        that already points at the image is fine and reported unchanged.
      - Only used with O(state=present).
    type: bool
    default: true
  expected_digest:
    description:
      - With O(state=present), the digest O(image) must resolve to, for example the digest that was tested;
        if it moved since, the task fails before anything is written.
      - With O(state=absent), every existing tag in O(tags) must point at this digest, else the task fails
        before anything is deleted.
    type: str
notes:
  - Docker schema1 sources are refused, since their signature embeds the tag they were pushed with.
  - Deleting a tag needs deletion enabled on the registry (on CNCF distribution, C(storage.delete.enabled));
    where it is disabled, the task fails and says so.
  - A placeholder manifest left by an interrupted deletion is annotated C(io.imagelayers.registry.placeholder).
seealso:
  - module: imagelayers.registry.tags_info
  - module: imagelayers.registry.manifest_info
'''

EXAMPLES = r'''
- name: Promote a tested build to release tags, refusing to move existing releases
  imagelayers.registry.tag:
    image: registry.example.com/app:build-812
    tags: ["1.4.2", "1.4", "latest"]
    expected_digest: "{{ tested_digest }}"
    overwrite: false
    username: ci
    password: "{{ registry_password }}"

- name: Tag an image by digest
  imagelayers.registry.tag:
    image: registry.example.com/app@sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b
    tags: [stable]

- name: Delete a tag; the image and its other tags stay
  imagelayers.registry.tag:
    image: registry.example.com/app:rc
    state: absent

- name: Delete several tags, only if they still point at the build we retire
  imagelayers.registry.tag:
    image: registry.example.com/app
    tags: [rc1, rc2]
    expected_digest: "{{ retired_digest }}"
    state: absent
'''

RETURN = r'''
image:
  description: The normalised reference of O(image).
  returned: always
  type: str
  sample: registry.example.com/app:build-812
digest:
  description: The digest O(image) resolves to (null with O(state=absent)).
  returned: always
  type: str
  sample: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
media_type:
  description: Media type of the source manifest (null with O(state=absent)).
  returned: always
  type: str
  sample: application/vnd.oci.image.index.v1+json
tags:
  description: One entry per tag, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    tag:
      description: The tag.
      type: str
    before:
      description: The digest the tag pointed at before the task, or null when it did not exist.
      type: str
    after:
      description: The digest the tag points at after the task (in check mode, would point at), or null.
      type: str
    changed:
      description: Whether the tag was (in check mode, would be) written or deleted.
      type: bool
  sample:
    - tag: "1.4.2"
      before: null
      after: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      changed: true
    - tag: latest
      before: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      after: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
      changed: false
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import DEFAULT_FANOUT
from ansible_collections.imagelayers.registry.plugins.module_utils._tagging import (
    absent_target,
    present_target,
    tag_absent,
    tag_present,
)


def run(rm: RegistryModule) -> dict:
    params = rm.params
    ctx = rm.context(workers=DEFAULT_FANOUT)
    if params['state'] == 'present':
        reference = present_target(params['image'], params['tags'])
        outcome = tag_present(rm.client(reference), reference, params['tags'], overwrite=params['overwrite'],
                              expected_digest=params['expected_digest'], ctx=ctx)
    else:
        reference, tags = absent_target(params['image'], params['tags'])
        outcome = tag_absent(rm.client(reference), reference, tags, expected_digest=params['expected_digest'],
                             ctx=ctx)
    return outcome.to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'image': {'type': 'str', 'required': True},
        'tags': {'type': 'list', 'elements': 'str'},
        'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
        'overwrite': {'type': 'bool', 'default': True},
        'expected_digest': {'type': 'str'},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
