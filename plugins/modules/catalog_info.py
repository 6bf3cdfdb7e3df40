#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: catalog_info
short_description: List the repositories of a registry from its catalog, filtered
version_added: 0.2.0
description:
  - Lists the repositories a registry names in its catalog (C(GET /v2/_catalog) of the Registry HTTP API v2),
    following C(Link) pagination (relative or absolute links on the same host), like C(crane catalog).
  - The token asked for has the scope C(registry:catalog:*); distribution's token server grants it to
    administrators only.
  - Many registries do not offer their catalog - Docker Hub and GHCR to nobody (they answer 401, 403 or 404),
    others only to some users, some answer 405 C(UNSUPPORTED). The task then fails with a message that says so
    and what to do instead (list the repositories you know and read their tags with M(imagelayers.registry.tags_info)),
    with the HTTP C(status) of the answer.
  - Entries that are not repository names (C(null), numbers, uppercase or malformed names) are left out, and so
    are duplicates.
  - A listing is bounded as the tag listing of M(imagelayers.registry.tags_info) is - at most 1000 pages (more with
    a small O(page_size)), 1,000,000 repositories and 64 MiB of listing bodies in total; a link that names a page
    already read, or a page on another host, fails the task.
author:
  - imagelayers maintainers (@imagelayers)
extends_documentation_fragment:
  - imagelayers.registry._connection
  - imagelayers.registry._attributes.info_module
options:
  registry:
    description:
      - The registry, C(host[:port]) as in the registry part of an image reference (V(registry.example.com),
        V(localhost:5000), V([::1]:5000)), without scheme or path.
      - Docker Hub's names (V(docker.io)) are accepted; Docker Hub does not offer its catalog, so the task fails
        with the message described above.
    type: str
    required: true
  pattern:
    description:
      - A Python regular expression; only repositories it matches (C(re.search), so anchor it with C(^) and C($)
        as needed) are returned.
    type: str
  page_size:
    description:
      - The number of repositories to ask for per page (the C(n) parameter), from 1 to 100000. When not set, the
        registry's default page size is used (distribution sends 100 and a C(rel="next") link when there are more).
      - At most 1000 pages are followed, or, when O(page_size) is so small that 1,000,000 repositories need more
        pages, 1,000,000 / O(page_size) pages.
      - Registries cap C(n) - distribution answers more than its C(catalog.maxentries) (1000 by default) with
        C(400 PAGINATION_NUMBER_INVALID), which fails the task with that code in C(registry_error_codes).
    type: int
'''

EXAMPLES = r'''
- name: The repositories of one team
  imagelayers.registry.catalog_info:
    registry: registry.example.com
    pattern: '^team/'
  register: catalog

- name: Their tags
  imagelayers.registry.tags_info:
    image: "registry.example.com/{{ item }}"
  loop: "{{ catalog.repositories }}"
'''

RETURN = r'''
registry:
  description: The registry, normalised (Docker Hub's names are V(docker.io)).
  returned: success
  type: str
  sample: registry.example.com
repositories:
  description: The repository names (without the registry) O(pattern) matches, in the order the registry lists them.
  returned: success
  type: list
  elements: str
  sample: ["team/api", "team/web"]
total:
  description: Number of repositories in the catalog, before O(pattern).
  returned: success
  type: int
  sample: 42
pages:
  description: Number of pages the registry returned the catalog in.
  returned: success
  type: int
  sample: 1
status:
  description: The HTTP status of the answer, when the registry refused the catalog (or failed otherwise).
  returned: failure
  type: int
  sample: 401
'''

from ansible_collections.imagelayers.registry.plugins.module_utils._catalog import catalog_info, catalog_target
from ansible_collections.imagelayers.registry.plugins.module_utils._module import RegistryModule


def run(rm: RegistryModule) -> dict:
    params = rm.params
    target = catalog_target(params['registry'])
    return catalog_info(rm.client(target), target, pattern=params['pattern'],
                        page_size=params['page_size']).to_result()


def main() -> None:
    rm = RegistryModule(argument_spec={
        'registry': {'type': 'str', 'required': True},
        'pattern': {'type': 'str'},
        'page_size': {'type': 'int'},
    })
    rm.run(run)


if __name__ == '__main__':
    main()
