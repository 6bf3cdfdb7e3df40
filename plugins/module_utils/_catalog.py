# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""The repositories a registry lists in its catalog (``GET /v2/_catalog``), and the ``catalog_info`` outcome.

The catalog is paged like a tag list and read by the same bounded pager (``_tags.read_listing``),
with one difference: a next link to another host is refused, since a catalog belongs to one
registry. Many registries do not offer it at all (Docker Hub, GHCR) or only to administrators
(distribution's token server); their refusal of the first page becomes one message that says
what to do instead.
"""

from __future__ import annotations

from typing import Any, Iterable

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import (
    NAME_TOTAL_LENGTH_MAX,
    PATH_COMPONENT,
    ImageReference,
    split_host_port,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import Page, RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._tags import (
    Listing,
    check_page_size,
    compile_pattern,
    filter_tags,
    read_listing,
    unique_valid,
)

# The answers of a registry that keeps its catalog to itself (or from these credentials).
REFUSALS = (AuthenticationError, NotFoundError, UnsupportedError)


def catalog_target(registry: Any) -> ImageReference:
    """The registry named by the ``registry`` option (``host[:port]``), as a reference without repository.

    It is the registry part of an image reference, so Docker Hub's names fold to ``docker.io``
    (whose API host is ``registry-1.docker.io``); a scheme, a path or white space is refused.
    """
    value = registry if isinstance(registry, str) else ''
    if not value or '/' in value or any(c.isspace() for c in value):
        raise InvalidInputError('registry must be a registry host with an optional port, as in an image reference '
                                '(registry.example.com, localhost:5000, [::1]:5000), without scheme or path; got %r'
                                % (registry,))
    return ImageReference(split_host_port(value, value), '')


def is_repository_name(value: Any) -> bool:
    """Whether ``value`` is a repository name (lowercase path components), as the catalog should list only."""
    if not isinstance(value, str) or not value or len(value) > NAME_TOTAL_LENGTH_MAX:
        return False
    return all(PATH_COMPONENT.fullmatch(component) for component in value.split('/'))


def clean_repositories(entries: Iterable[Any] | None, seen: set[str] | None = None) -> list[str]:
    """Valid repository names from a ``repositories`` array, in order, without duplicates.

    ``null`` entries, numbers and names no repository can have are left out, as the tag
    listing leaves out junk tags; ``seen`` (a set, updated) carries earlier pages' names.
    """
    return unique_valid(entries, is_repository_name, seen)


class CatalogOutcome:
    """The repositories of one registry's catalog, filtered: ``to_result()`` is the module's result."""

    def __init__(self, target: ImageReference) -> None:
        self.target = target
        self.repositories: list[str] = []
        self.total = 0
        self.pages = 0

    def to_result(self) -> dict[str, Any]:
        return {'changed': False, 'registry': self.target.registry, 'repositories': self.repositories,
                'total': self.total, 'pages': self.pages}


def catalog_refused(client: RegistryClient, target: ImageReference, error: RegistryError) -> RegistryError:
    """``error`` (a refusal of the first catalog page) said as what it means and what to do instead.

    The class, status, URL and registry error codes stay those of the answer.
    """
    credentials = client.api.auth.credentials
    who = 'anonymous access' if credentials.is_empty else 'the credentials from %s' % credentials.describe()
    msg = ('The registry %s does not offer its catalog (GET /v2/_catalog) to %s: %s. Many registries turn the catalog '
           'off or keep it for administrators (Docker Hub and GHCR offer it to nobody); list the repositories you know '
           'instead, and read the tags of each with imagelayers.registry.tags_info'
           % (target.registry, who, error.msg.rstrip('.')))
    return type(error)(msg, status=error.status, url=error.url, codes=error.codes, errors=error.errors,
                       attempts=error.attempts, details=dict(error.details, registry=target.registry))


def list_repositories(client: RegistryClient, target: ImageReference,
                      page_size: int | None = None) -> tuple[list[str], int]:
    """Every repository of the catalog, in the registry's order, and the number of pages; bounded as a tag list."""
    check_page_size(page_size)

    def fetch(next_url: str | None, limit: int) -> Page:
        try:
            return client.catalog_page(page_size, url=next_url, limit=limit)
        except REFUSALS as error:
            if next_url is not None:
                raise
            raise catalog_refused(client, target, error)

    listing = Listing(target.registry, 'catalog', 'catalog', 'repositories', 'registry', 'repositories', fetch,
                      clean_repositories)
    return read_listing(listing, page_size)


def catalog_info(client: RegistryClient, target: ImageReference, pattern: str | None = None,
                 page_size: int | None = None) -> CatalogOutcome:
    """The repositories of ``target``'s catalog that ``pattern`` finds; a bad pattern fails before any request."""
    compile_pattern(pattern)
    outcome = CatalogOutcome(target)
    repositories, outcome.pages = list_repositories(client, target, page_size)
    outcome.total = len(repositories)
    outcome.repositories = filter_tags(repositories, pattern)
    return outcome
