#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: prune
short_description: Delete the tags (and optionally the manifests) of a repository that retention rules do not keep
version_added: 0.2.0
description:
  - Plans a deletion you can read, then carries out exactly that plan. Every tag of the repository is listed
    (paginated) and resolved (one C(HEAD) each, in parallel), then kept or deleted, with the rule that decided
    in RV(plan). Check mode returns the same plan, RV(deleted_tags) and RV(deleted_manifests) as the real run.
  - "A tag is decided by the first rule that applies: O(keep.tags), O(keep.patterns), O(keep.semver_latest),
    then O(candidates) (a tag it does not match is kept: C(not a candidate)), then O(keep.newer_than); a
    candidate no rule keeps is deleted (C(candidate))."
  - The image config's C(created) (for an index, its newest child's) is read only for the tags whose fate
    depends on age; for those the manifest is fetched instead of the C(HEAD), plus one config per digest.
  - Tags are deleted as M(imagelayers.registry.tag) with O(imagelayers.registry.tag#module:state=absent)
    deletes them (the OCI tag C(DELETE), else a throw-away manifest), so other tags on the same image survive.
  - With O(delete=manifests), the manifest of a deleted tag is deleted too, but only when no kept tag points
    at it, no kept index lists it and no kept referrer has it as its subject; otherwise only the tag goes, and
    its RV(plan) entry says why in C(manifest_rule).
  - Cosign's C(sha256-<hex>.sig), C(.att) and C(.sbom) tags and the OCI fallback referrers tag C(sha256-<hex>)
    are not decided by the rules; they follow the manifest they refer to. They are kept with it, and deleted
    with it only with O(delete=manifests) and O(referrers=true).
  - Where the registry has deletion disabled, the task fails before the first deletion, saying so, also in
    check mode (a C(DELETE) of a digest that cannot exist tells; it changes nothing).
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
attributes:
  check_mode:
    support: full
    description:
      - Plans as a real run does and returns the same RV(plan), RV(deleted_tags) and RV(deleted_manifests);
        the only request that is not a read is the C(DELETE) probe of a digest that cannot exist.
  diff_mode:
    support: full
    description: C(before) maps every tag to its digest, C(after) the tags that stay.
options:
  repository:
    description:
      - The repository, C([registry/]repository), without tag or digest.
    type: str
    required: true
  keep:
    description:
      - The tags to keep. A tag any of these rules matches is never deleted.
    type: dict
    default: {}
    suboptions:
      semver_latest:
        description:
          - Keep the N highest semantic versions (C(MAJOR.MINOR.PATCH) with an optional C(v) and
            C(-prerelease), ordered by semver precedence, prereleases included).
        type: int
      patterns:
        description:
          - Python regular expressions; a tag any of them finds (C(re.search), so anchor with C(^) and C($)) is kept.
        type: list
        elements: str
      newer_than:
        description:
          - Keep images built more recently than this, by the image config's C(created) (for an index, its newest
            child's). A number and a unit, C(s), C(m) (minutes), C(h), C(d) or C(w), or several (V(30d), V(12h),
            V(2w), V(1d12h)).
          - An image without a readable C(created) is kept.
        type: str
      tags:
        description:
          - Tags kept by name.
        type: list
        elements: str
  candidates:
    description:
      - A Python regular expression (C(re.search)); only the tags it finds may be deleted, every other tag is
        kept. Default is every tag the O(keep) rules do not keep.
    type: str
  delete:
    description:
      - V(tags) deletes the tags only; the images stay in the registry (for garbage collection to find).
      - V(manifests) deletes the tags and, where nothing kept refers to it, the manifest they point at.
    type: str
    choices: [tags, manifests]
    default: tags
  referrers:
    description:
      - With O(delete=manifests), delete a manifest's referrers (cosign signatures, attestations and SBOMs,
        OCI 1.1 referrers) with it. V(true) with O(delete=tags) is refused, since tags alone never take a referrer.
      - When V(false), a manifest that has referrers is kept (only its tags go), so no signature is left
        without its image.
    type: bool
    default: false
  force:
    description:
      - Allow a plan that deletes every tag of the repository. Without it, a plan in which O(keep) keeps
        nothing while O(candidates) selects every tag fails before anything is deleted.
    type: bool
    default: false
notes:
  - Deleting needs deletion enabled on the registry (on CNCF distribution, C(storage.delete.enabled)).
  - The children of a deleted index are not deleted; the registry's garbage collection removes what no
    manifest refers to any more.
  - "Requests: one tag listing (paginated), one C(HEAD) per tag (a manifest C(GET) for a tag whose fate depends
    on age, plus one config per digest, for an index its children's manifests and configs). With
    O(delete=manifests), one manifest C(GET) per kept index and a referrers lookup per manifest to delete."
seealso:
  - module: imagelayers.registry.delete
  - module: imagelayers.registry.tag
  - module: imagelayers.registry.tags_info
'''

EXAMPLES = r'''
- name: Review in check mode what would go
  imagelayers.registry.prune:
    repository: registry.example.com/team/app
    keep:
      semver_latest: 10
      patterns: ['^stable$', '^v?\d+\.\d+$']
      newer_than: 30d
      tags: ["{{ prod_tag }}"]
    candidates: '^(build|pr)-'
  check_mode: true
  diff: true
  register: planned

- name: Then delete exactly that, manifests and their signatures included where nothing kept needs them
  imagelayers.registry.prune:
    repository: registry.example.com/team/app
    keep:
      semver_latest: 10
      patterns: ['^stable$', '^v?\d+\.\d+$']
      newer_than: 30d
      tags: ["{{ prod_tag }}"]
    candidates: '^(build|pr)-'
    delete: manifests
    referrers: true
'''

RETURN = r'''
repository:
  description: The repository pruned.
  returned: always
  type: str
  sample: registry.example.com/team/app
plan:
  description: Every tag, sorted by name, with what becomes of it and why.
  returned: always
  type: list
  elements: dict
  contains:
    tag:
      description: The tag.
      type: str
    digest:
      description: The digest it points at.
      type: str
    action:
      description: V(keep) or V(delete).
      type: str
    rule:
      description:
        - "The rule that decided, for example V(tags), V(patterns: ^stable$), V(semver_latest), V(newer_than),
          V(not a candidate), V(candidate), V(referrer of a kept image)."
        - For a deleted tag with O(delete=manifests), C(manifest_rule) says what became of its manifest.
      type: str
    created:
      description: The image's C(created), for tags whose fate depended on age.
      type: str
      returned: when read
    manifest:
      description: With O(delete=manifests), for a deleted tag, whether its manifest is deleted (V(delete)) or kept.
      type: str
      returned: with O(delete=manifests), for deleted tags
    manifest_rule:
      description: Why the manifest is kept (a kept index lists it, a kept referrer refers to it) or deleted.
      type: str
      returned: with O(delete=manifests), for deleted tags
  sample:
    - {tag: "1.4.2", digest: "sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19", action: keep,
       rule: semver_latest}
    - {tag: build-812, digest: "sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b",
       action: delete, rule: candidate, created: "2026-01-02T03:04:05Z"}
deleted_tags:
  description: The tags deleted (in check mode, that would be); the same in check mode and the real run.
  returned: always
  type: list
  elements: str
  sample: [build-812, pr-77]
deleted_manifests:
  description: The manifest digests deleted (in check mode, that would be), referrers before their subjects.
  returned: always
  type: list
  elements: str
  sample: ["sha256:0a1bd8ed6f8b4d1e6a1ea7d4f8a18a0d6e1c5f7b3c3c2b6b1f4a9f0c9d7e6a5b"]
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import DEFAULT_FANOUT
from ansible_collections.imagelayers.registry.plugins.module_utils._retention import PruneOptions, prune, prune_target


def run(rm: RegistryModule) -> dict:
    params = rm.params
    reference = prune_target(params['repository'])
    options = PruneOptions.from_params(params['keep'], candidates=params['candidates'], delete=params['delete'],
                                       referrers=params['referrers'], force=params['force'])
    outcome = prune(rm.client(reference), reference, options, ctx=rm.context(workers=DEFAULT_FANOUT))
    return outcome.to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'repository': {'type': 'str', 'required': True},
        'keep': {'type': 'dict', 'default': {}, 'options': {
            'semver_latest': {'type': 'int'},
            'patterns': {'type': 'list', 'elements': 'str'},
            'newer_than': {'type': 'str'},
            'tags': {'type': 'list', 'elements': 'str'},
        }},
        'candidates': {'type': 'str'},
        'delete': {'type': 'str', 'default': 'tags', 'choices': ['tags', 'manifests']},
        'referrers': {'type': 'bool', 'default': False},
        'force': {'type': 'bool', 'default': False},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
