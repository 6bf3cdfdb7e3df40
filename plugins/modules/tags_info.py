#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: tags_info
short_description: List the tags of a repository in a registry, filtered and sorted
version_added: 0.1.0
description:
  - Lists every tag of a repository over the Registry HTTP API v2, following C(Link) pagination
    (relative or absolute links), like C(skopeo list-tags) or C(crane ls).
  - Entries that are not tags, such as C(null) or digests some registries list, are left out; so are
    duplicates and names a tag cannot have (a trailing line break, white space).
  - A listing is bounded, so that a registry whose C(Link) header names a new page every time cannot keep the
    task busy for minutes - at most 1000 pages (more with a small O(page_size), see there), 1,000,000 tags and
    64 MiB of listing bodies in total. Past a bound the task fails with a message that names the bound and
    the repository. A link that names a page already read also fails the task.
  - Optionally filters the tags with a regular expression, sorts them by semantic version and resolves
    the digest of each (in parallel).
  - A missing repository is not a failure; it gives RV(exists=false).
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
  - imagelayers.registry._attributes.info_module
options:
  image:
    description:
      - The repository, C([registry/]repository), without tag or digest.
    type: str
    required: true
  pattern:
    description:
      - A Python regular expression; only tags it matches (C(re.search), so anchor it with C(^) and C($) as
        needed) are returned.
    type: str
  sort:
    description:
      - V(lexical) sorts by the tag string.
      - V(semver) sorts by semantic version precedence, lowest first, so the last entry is the highest version.
        A version is C(MAJOR.MINOR.PATCH) with an optional C(v) prefix and C(-prerelease); prereleases sort
        before their release (V(1.0.0-rc.1) < V(1.0.0)), numeric identifiers numerically (V(1.0.0-rc.2) <
        V(1.0.0-rc.10)). Tags that are not such versions (V(latest), V(1.4), V(main)) are left out of RV(tags)
        and returned, sorted lexically, in RV(other_tags).
    type: str
    choices: [lexical, semver]
    default: lexical
  with_digests:
    description:
      - Also resolve the digest of every returned tag (one C(HEAD) each, up to 8 at a time) into RV(digests).
    type: bool
    default: false
  page_size:
    description:
      - The number of tags to ask for per page (the C(n) parameter), from 1 to 100000. When not set, the
        registry's default page size is used. Pages are followed until the registry sends no C(rel="next") link.
      - At most 1000 pages are followed, or, when O(page_size) is so small that 1,000,000 tags need more pages,
        1,000,000 / O(page_size) pages (V(1) - a million pages, V(100) - 10,000). The bounds of 1,000,000 tags
        and 64 MiB hold whatever the page size. So a small O(page_size) also lets a hostile registry keep the
        task busy for that many requests; without it, or with V(1000) or more, it stops after 1000.
      - A registry that sends fewer tags per page than asked for (some cap C(n)) may reach the page bound before
        the tag bound (without O(page_size), at 1000 times its page size); if a repository really has that many
        tags, set O(page_size) to the number of tags the registry sends per page.
    type: int
'''

EXAMPLES = r'''
- name: All tags of a repository
  imagelayers.registry.tags_info:
    image: registry.example.com/app
  register: app_tags

- name: The highest 1.x release
  imagelayers.registry.tags_info:
    image: registry.example.com/app
    pattern: '^1\.'
    sort: semver
  register: releases

- ansible.builtin.debug:
    msg: "Latest 1.x release: {{ releases.tags | last }}"
  when: releases.tags | length > 0

- name: Which tags point at the same image as latest?
  imagelayers.registry.tags_info:
    image: registry.example.com/app
    with_digests: true
  register: listing

- ansible.builtin.debug:
    msg: "{{ listing.digests | dict2items | selectattr('value', 'equalto', listing.digests['latest']) | map(attribute='key') }}"
'''

RETURN = r'''
repository:
  description: The normalised repository name.
  returned: always
  type: str
  sample: registry.example.com/app
exists:
  description: Whether the repository exists.
  returned: always
  type: bool
  sample: true
tags:
  description: The tags, filtered by O(pattern) and sorted by O(sort).
  returned: always
  type: list
  elements: str
  sample: ["1.3.0", "1.4.0-rc.1", "1.4.0", "1.4.2"]
other_tags:
  description: With O(sort=semver), the tags matching O(pattern) that are not semantic versions, sorted lexically.
  returned: when O(sort=semver)
  type: list
  elements: str
  sample: ["1.4", "latest"]
digests:
  description:
    - Tag to digest, for every tag in RV(tags) and RV(other_tags).
    - A tag deleted between the listing and its C(HEAD) maps to null.
  returned: when O(with_digests=true)
  type: dict
  sample: {"1.4.2": "sha256:7e1a4e2d11e2ac7a8c3f768d4166c2defeb09d2a750b010412b6ea13de1efb19"}
total:
  description: Number of tags in the repository, before O(pattern).
  returned: when the repository exists
  type: int
  sample: 42
pages:
  description: Number of pages the registry returned the listing in.
  returned: when the repository exists
  type: int
  sample: 1
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import DEFAULT_FANOUT
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import repository_target, tags_info


def run(rm: RegistryModule) -> dict:
    params = rm.params
    reference = repository_target(params['image'])
    return tags_info(rm.client(reference), reference, pattern=params['pattern'], sort=params['sort'],
                     with_digests=params['with_digests'], page_size=params['page_size'],
                     ctx=rm.context(workers=DEFAULT_FANOUT)).to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'image': {'type': 'str', 'required': True},
        'pattern': {'type': 'str'},
        'sort': {'type': 'str', 'default': 'lexical', 'choices': ['lexical', 'semver']},
        'with_digests': {'type': 'bool', 'default': False},
        'page_size': {'type': 'int'},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
