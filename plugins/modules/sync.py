#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: sync
short_description: Promote a release of many repositories and tags in one task, all tags written last
version_added: 0.2.0
description:
  - Copies the tags each item of O(repositories) selects from its source repository to its destination
    repository, over the Registry HTTP API v2, like C(skopeo sync) or C(regsync), and as one release.
  - "Plan first, for every item: the source's tags (C(GET /v2/<name>/tags/list), every page) unless O(repositories[].tags)
    names them, then per selected tag one C(HEAD) at the source and one at the destination, in parallel. A tag
    the destination already has at the source's digest costs exactly those two requests: no manifest is fetched
    again. With O(overwrite=false), every destination tag that points at another digest is named and the task
    fails here, before any write."
  - "Then, with O(atomic=true) (the default): the blobs and manifests (by digest) of every changed tag of every
    item first, then every tag (one small manifest C(PUT) each), then the deletions of O(prune). A failure before
    the tag phase moves no destination tag; the failure lists the blobs and untagged manifests it left
    (C(left)), which a rerun reuses. A rerun after a partial run does only the remaining work."
  - With O(atomic=false), the same phases run item by item, so the items before a failing one are promoted.
  - "The content phase runs in three steps, each across all the images of the phase at once (O(workers) at a
    time), not image after image: the source manifests of the changed tags are read, then every blob is
    transferred (once per destination repository: the first tag in order that needs a blob carries it, the
    others count it as skipped), then the manifests are written by digest."
  - Blobs are verified on the way, mounted within one registry, and skipped where the destination has them,
    as M(imagelayers.registry.copy) does. One session and one token cache per registry.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection_sides
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description: Makes the plan, reads the source manifests of the changed tags and C(HEAD)s the destination blobs;
      reports item by item and tag by tag what a real run would copy, mount, write and delete, and writes nothing.
  diff_mode:
    support: full
    description: C(before) and C(after) map each selected (and pruned) destination tag, C(registry/repository:tag),
      to its digest; a tag that does not exist is left out.
options:
  repositories:
    description:
      - The items of the release. Each copies the tags its selector picks from O(repositories[].src) to the same
        tags of O(repositories[].dest).
      - Selectors, applied in this order. O(repositories[].tags) (those tags), or every tag of the source filtered
        by O(repositories[].pattern) and O(repositories[].semver); then O(repositories[].latest) keeps the
        highest versions. Without any, every tag of the source.
    type: list
    elements: dict
    required: true
    suboptions:
      src:
        description: The source repository, C([registry/]repository), without tag or digest.
        type: str
        required: true
      dest:
        description: The destination repository, C([registry/]repository), without tag or digest.
        type: str
        required: true
      tags:
        description:
          - These tags of the source. One that the source does not have fails the plan, before any write.
          - Cannot be combined with O(repositories[].pattern) or O(repositories[].semver).
        type: list
        elements: str
      pattern:
        description: A Python regular expression the tags must match (C(re.search)).
        type: str
      semver:
        description:
          - A range of semantic versions the tags must be in, in the npm notation. Comparators separated by
            spaces must all hold (V(>=1.25.0 <1.27.0)); V(^1.4) is V(>=1.4.0 <2.0.0), V(~1.4.2) is
            V(>=1.4.2 <1.5.0), V(1.4.x) (or V(1.4)) is V(>=1.4.0 <1.5.0), V(*) is every version; alternatives
            are joined with V(||). A leading C(v) in a tag is accepted (V(v1.4.2)).
          - Prereleases (V(1.5.0-rc.1)) are left out unless O(prereleases) (or the item's) is true.
        type: str
      latest:
        description: Keep only the N highest semantic versions among the tags the other selectors picked.
        type: int
      platforms:
        description: As O(platforms), for this item.
        type: list
        elements: str
      referrers:
        description: As O(referrers), for this item.
        type: bool
      overwrite:
        description: As O(overwrite), for this item.
        type: bool
      prune:
        description: As O(prune), for this item.
        type: bool
      prereleases:
        description: As O(prereleases), for this item.
        type: bool
  atomic:
    description:
      - V(true) writes the blobs and manifests of every item first and all tags at the end, so a failure before the
        tag phase moves no destination tag.
      - V(false) promotes item by item; a failure stops at that item, the ones before it are promoted.
    type: bool
    default: true
  platforms:
    description:
      - Copy only these platforms of a multi-platform source, as the O(imagelayers.registry.copy#module:platforms)
        option of M(imagelayers.registry.copy) does (a subset has a new digest). Default every platform.
      - With it, the plan reads the index of every selected tag (a C(GET)) to know the subset's digest.
    type: list
    elements: str
  referrers:
    description:
      - Also copy what refers to each selected tag's image (signatures, attestations, SBOMs), as
        M(imagelayers.registry.copy) does with O(imagelayers.registry.copy#module:referrers=true), for changed
        and unchanged tags alike, before the tag phase. Referrers under cosign tags (C(sha256-<hex>.sig)) are
        written with them, before the release's tags.
    type: bool
    default: false
  overwrite:
    description:
      - Whether a destination tag that exists at another digest may be moved. With V(false), every such tag is
        named and the task fails before anything is written (immutable release tags).
    type: bool
    default: true
  prune:
    description:
      - Delete the destination tags the item's selector matches that are not in the source's selection (a tag
        deleted at the source, an older version than O(repositories[].latest) keeps), after the tag phase. Tags
        are deleted as M(imagelayers.registry.tag) with O(imagelayers.registry.tag#module:state=absent) deletes
        them, never the image.
    type: bool
    default: false
  prereleases:
    description: Whether O(repositories[].semver) and O(repositories[].latest) consider prereleases.
    type: bool
    default: false
  workers:
    description: How many blobs (and, in the content phase, manifests) are transferred at once, across all the
      images of the run; the plan's C(HEAD) requests use at least 8.
    type: int
    default: 4
notes:
  - The stored credentials of a registry are those of the first repository of that registry in O(repositories).
seealso:
  - module: imagelayers.registry.copy
  - module: imagelayers.registry.tags_info
  - module: imagelayers.registry.tag
'''

EXAMPLES = r'''
- name: Promote release 1.4 of three repositories, no tag moved unless all content is there
  imagelayers.registry.sync:
    repositories:
      - {src: dev.example.com/api, dest: prod.example.com/api, tags: ["1.4.2"]}
      - {src: dev.example.com/web, dest: prod.example.com/web, pattern: '^1\.4\.', latest: 3}
      - {src: docker.io/library/nginx, dest: mirror.example.com/library/nginx, semver: '>=1.25.0 <1.27.0'}
    platforms: [linux/amd64, linux/arm64]
    referrers: true
    overwrite: false
    workers: 8
  register: release

- name: Keep a mirror of the last five releases, older ones deleted
  imagelayers.registry.sync:
    repositories:
      - {src: registry.example.com/app, dest: mirror.example.com/app, semver: '>=1.0.0', latest: 5, prune: true}
'''

RETURN = r'''
repositories:
  description:
    - The plan and what was done, item by item and tag by tag, in the order of O(repositories).
  returned: always
  type: list
  elements: dict
  contains:
    src:
      description: The source repository.
      type: str
    dest:
      description: The destination repository.
      type: str
    tags:
      description:
        - One entry per selected tag. C(before) is the destination's digest before (null when new), C(after) the
          digest it has (will have, in check mode), C(source_digest) the source's. The counts are those of this
          tag's image (in check mode, what a real run would transfer).
      type: list
      elements: dict
      sample:
        - tag: "1.4.2"
          before: null
          after: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
          source_digest: sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19
          changed: true
          blobs_copied: 3
          blobs_mounted: 0
          blobs_skipped: 0
          bytes_transferred: 31457280
          manifests_pushed: 2
    pruned:
      description: With O(prune), the destination tags deleted (to delete, in check mode), with their digest before.
      type: list
      elements: dict
atomic:
  description: Whether the tags were written after all content (O(atomic)).
  returned: always
  type: bool
tags_selected:
  description: Tags selected, over all items.
  returned: always
  type: int
tags_changed:
  description: Tags written (to write, in check mode).
  returned: always
  type: int
tags_unchanged:
  description: Tags the destinations had already; each cost one C(HEAD) at the source and one at the destination.
  returned: always
  type: int
tags_pruned:
  description: Destination tags deleted by O(prune) (to delete, in check mode).
  returned: always
  type: int
blobs_copied:
  description: Blobs uploaded, over all items (in check mode, to upload).
  returned: always
  type: int
blobs_mounted:
  description: Blobs mounted within one registry.
  returned: always
  type: int
blobs_skipped:
  description: Blobs the destinations had.
  returned: always
  type: int
bytes_transferred:
  description: Blob bytes uploaded (in check mode, the size of the blobs to upload).
  returned: always
  type: int
manifests_pushed:
  description: Manifests written, by digest and by tag.
  returned: always
  type: int
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._context import DEFAULT_WORKERS
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._sync import sync

ITEM_SPEC = {
    'src': {'type': 'str', 'required': True},
    'dest': {'type': 'str', 'required': True},
    'tags': {'type': 'list', 'elements': 'str'},
    'pattern': {'type': 'str'},
    'semver': {'type': 'str'},
    'latest': {'type': 'int'},
    'platforms': {'type': 'list', 'elements': 'str'},
    'referrers': {'type': 'bool'},
    'overwrite': {'type': 'bool'},
    'prune': {'type': 'bool'},
    'prereleases': {'type': 'bool'},
}


def run(rm):
    params = rm.params
    outcome = sync(rm.client, params['repositories'], rm.context(workers=params['workers']), atomic=params['atomic'],
                   platforms=params['platforms'], referrers=params['referrers'], overwrite=params['overwrite'],
                   prune=params['prune'], prereleases=params['prereleases'])
    return outcome.to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'repositories': {'type': 'list', 'elements': 'dict', 'required': True, 'options': ITEM_SPEC,
                         'mutually_exclusive': [['tags', 'pattern'], ['tags', 'semver']]},
        'atomic': {'type': 'bool', 'default': True},
        'platforms': {'type': 'list', 'elements': 'str'},
        'referrers': {'type': 'bool', 'default': False},
        'overwrite': {'type': 'bool', 'default': True},
        'prune': {'type': 'bool', 'default': False},
        'prereleases': {'type': 'bool', 'default': False},
        'workers': {'type': 'int', 'default': DEFAULT_WORKERS},
    }, sides=('src_', 'dest_'))
    rm.run(run)


if __name__ == '__main__':
    main()
