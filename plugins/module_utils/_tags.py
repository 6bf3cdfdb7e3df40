# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Paged listings (``Link`` pagination, bounded; tag lists and the catalog), semantic-version sorting, and the
``tags_info`` module's outcome."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Set
from urllib.parse import urljoin, urlsplit

from ansible_collections.imagelayers.registry.plugins.module_utils._context import RunContext
from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryHTTPError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._parallel import DEFAULT_FANOUT, parallel_map
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import ImageReference, is_tag
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.client import Page, RegistryClient
from ansible_collections.imagelayers.registry.plugins.module_utils._registry.transport import url_origin

# Bounds of one tag listing (and of a catalog listing). A real registry stays far below them; a registry whose
# Link header names a new page every time, or that sends tags without end, reaches them within seconds and a few MiB.
MAX_PAGES = 1000                          # without page_size, or with page_size >= 1000
MAX_TAGS = 1000000                        # distinct tags (or catalog repositories), whatever the page size
MAX_LISTING_BYTES = 64 * 1024 * 1024      # all the pages' bodies together
MAX_PAGE_BYTES = 16 * 1024 * 1024         # one page's body

_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[a-zA-Z0-9*_-]+\s*=\s*(?:"[^"]*"|[^;,\s]*)\s*)*)')
_REL = re.compile(r'''rel\s*=\s*(?:"([^"]*)"|([^;,\s]*))''', re.IGNORECASE)


# -- listing -------------------------------------------------------------------
def next_link(header: str | None) -> str | None:
    """The target of the ``rel="next"`` entry of a ``Link`` header, or None."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        for rel in _REL.finditer(match.group(2) or ''):
            value = rel.group(1) if rel.group(1) is not None else rel.group(2)
            if 'next' in (value or '').lower().split():
                return match.group(1).strip()
    return None


def clean_tags(entries: Iterable[Any] | None, seen: set[str] | None = None) -> list[str]:
    """Valid tag names from a ``tags`` array, in order, without duplicates.

    Some registries put ``null`` entries or digests (``sha256:...``) in the list;
    neither is a tag that can be pulled, so both are left out, and so is any other
    name a tag cannot have (``"x\\n"``, ``"a b"``). ``seen`` (a set, updated) carries
    the tags of earlier pages.
    """
    return unique_valid(entries, is_tag, seen)


def unique_valid(entries: Iterable[Any] | None, valid: Callable[[Any], bool], seen: set[str] | None = None) -> list[str]:
    """The entries ``valid`` accepts, in order, each once; ``seen`` (a set, updated) carries earlier pages'."""
    seen = set() if seen is None else seen
    result = []
    for entry in entries or ():
        if not valid(entry) or entry in seen:
            continue
        seen.add(entry)
        result.append(entry)
    return result


def page_bound(page_size: int | None = None) -> int:
    """The most pages a listing may take.

    MAX_PAGES, or more when the page size the user asked for is so small that
    MAX_TAGS tags need more pages (``page_size: 1`` may take a million pages). The
    user chooses page_size, the registry does not; MAX_TAGS and MAX_LISTING_BYTES hold always.
    """
    if not page_size:
        return MAX_PAGES
    return max(MAX_PAGES, -(-MAX_TAGS // page_size))


def check_page_size(page_size: int | None) -> None:
    """Refuse a page size no registry could honour (``n`` is sent as given)."""
    if page_size is not None and (page_size < 1 or page_size > 100000):
        raise InvalidInputError('page_size must be between 1 and 100000, got %r' % (page_size,))


class Listing(NamedTuple):
    """One paged listing as :func:`read_listing` follows it, so the tag lists and the catalog share one pager.

    The words are what its messages say (``listing`` "tag listing", ``document`` "tag list",
    ``field`` the JSON array, ``owner`` what holds the entries, ``entries`` what they are);
    ``fetch(next_url, limit)`` reads one page (the first when ``next_url`` is None), ``clean``
    keeps the valid new entries of a page. A next link to another origin is refused: a hostile
    registry must not point the task at other hosts.
    """

    name: str
    listing: str
    document: str
    field: str
    owner: str
    entries: str
    fetch: Callable[[Optional[str], int], Page]
    clean: Callable[[Iterable[Any], Set[str]], List[str]]


def _too_many_pages(listing: Listing, bound: int, page_size: int | None) -> str:
    asked = 'with page_size %d' % page_size if page_size else 'without page_size'
    return ('The %s of %s has more than %d pages, the most followed %s; giving up: a registry whose Link '
            'header names a new page every time would never end. If the %s really has that many %s, set '
            'page_size to the number of %s the registry sends per page (at most %d %s are listed in any case)'
            % (listing.listing, listing.name, bound, asked, listing.owner, listing.entries, listing.entries, MAX_TAGS,
               listing.entries))


def _read_page(listing: Listing, next_url: str | None, budget: int) -> tuple[str, bytes, str | None]:
    """``(url, body bytes, Link header)`` of one page, refused past ``min(MAX_PAGE_BYTES, budget)`` bytes."""
    page = listing.fetch(next_url, min(MAX_PAGE_BYTES, budget) + 1)
    url, raw, link = page.url, page.body, page.link
    if len(raw) > MAX_PAGE_BYTES:
        raise RegistryHTTPError('A %s page of %s is larger than %d bytes'
                                % (listing.document, listing.name, MAX_PAGE_BYTES), url=url)
    if len(raw) > budget:
        raise RegistryHTTPError('The %s of %s is larger than %d bytes (%d MiB) in total; giving up'
                                % (listing.listing, listing.name, MAX_LISTING_BYTES, MAX_LISTING_BYTES // (1024 * 1024)),
                                url=url)
    return url, raw, link


def _page_entries(listing: Listing, raw: bytes, url: str) -> list[Any]:
    """The entries array of one page (possibly with junk entries), or an empty list."""
    try:
        body = json.loads(raw.decode('utf-8')) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise RegistryHTTPError('The %s of %s is not valid JSON: %s' % (listing.document, listing.name, exc), url=url)
    if not isinstance(body, dict):
        raise RegistryHTTPError('The %s of %s is not a JSON object' % (listing.document, listing.name), url=url)
    entries = body.get(listing.field)
    if entries is not None and not isinstance(entries, list):
        raise RegistryHTTPError('The %s of %s has a "%s" field that is not a list'
                                % (listing.document, listing.name, listing.field), url=url)
    return entries or []


def next_page_url(page_url: str, link: str | None, seen_urls: set[str], what: str,
                  loop_error: type[RegistryError] = RegistryHTTPError) -> str | None:
    """The absolute URL of the next page a ``Link`` names (None at the end), for every paged listing.

    A link to another origin is refused (a registry's answer must not send the task to other
    servers), and so is one back to a page already read (``seen_urls``). ``what`` starts the
    messages ("The tag listing of reg/app").
    """
    target = next_link(link)
    if not target:
        return None
    next_url = urljoin(page_url, target)
    if url_origin(next_url) != url_origin(page_url):
        raise IntegrityError('%s links its next page to another host (%s); refusing to follow it'
                             % (what, urlsplit(next_url).netloc.rpartition('@')[2]), url=page_url)
    if next_url in seen_urls:
        raise loop_error('%s loops: the registry links back to the page %s' % (what, urlsplit(next_url).path),
                         url=next_url)
    return next_url


def read_listing(listing: Listing, page_size: int | None = None) -> tuple[list[str], int]:
    """Every entry of a paged listing, following ``Link: <...>; rel="next"``; ``(entries, pages)``.

    Stops with RegistryHTTPError past page_bound(page_size) pages, MAX_TAGS entries or
    MAX_LISTING_BYTES of bodies, and when a link names a page already read. ``page_size``
    is only the bound's input here: ``listing.fetch`` sends it.
    """
    check_page_size(page_size)
    bound = page_bound(page_size)
    seen_urls: set[str] = set()
    seen_entries: set[str] = set()
    found: list[str] = []
    pages = received = 0
    next_url = None
    while pages == 0 or next_url:
        if pages >= bound:
            raise RegistryHTTPError(_too_many_pages(listing, bound, page_size), url=next_url,
                                    details={'pages': pages, 'max_pages': bound})
        pages += 1
        url, raw, link = _read_page(listing, next_url, MAX_LISTING_BYTES - received)
        received += len(raw)
        seen_urls.add(url)
        found.extend(listing.clean(_page_entries(listing, raw, url), seen_entries))
        if len(found) > MAX_TAGS:
            raise RegistryHTTPError('The %s of %s has more than %d %s after %d pages; giving up'
                                    % (listing.listing, listing.name, MAX_TAGS, listing.entries, pages), url=url,
                                    details={'pages': pages})
        next_url = next_page_url(url, link, seen_urls, 'The %s of %s' % (listing.listing, listing.name))
    return found, pages


def list_tags(client: RegistryClient, repository: str, page_size: int | None = None,
              name: str | None = None) -> tuple[list[str], int]:
    """Every tag of ``repository``, following ``Link: <...>; rel="next"`` pagination.

    Stops with RegistryHTTPError past page_bound(page_size) pages, MAX_TAGS tags or
    MAX_LISTING_BYTES of bodies, and when a link names a page already read. Returns
    ``(tags, pages)``; raises NotFoundError when the repository does not exist.
    ``name`` (the full repository name) is what messages say.
    """
    check_page_size(page_size)
    name = name or repository

    def fetch(next_url: str | None, limit: int) -> Page:
        return client.tags_page(repository, page_size, url=next_url, limit=limit, name=name)

    return read_listing(Listing(name, 'tag listing', 'tag list', 'tags', 'repository', 'tags', fetch, clean_tags),
                        page_size)


# -- semantic versions -------------------------------------------------------
# Used with fullmatch ("$" would also accept a final newline).
_SEMVER = re.compile(
    r'v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)'
    r'(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?'
    r'(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?')


def parse_semver(tag: str | None) -> tuple[int, int, int, tuple[str, ...]] | None:
    """``(major, minor, patch, prerelease_identifiers)`` or None when ``tag`` is not a semantic version.

    Accepts ``MAJOR.MINOR.PATCH[-prerelease][+build]`` with an optional leading
    ``v``. Image tags cannot contain ``+``, so build metadata only appears when
    a registry lists it; it does not affect the order.
    """
    match = _SEMVER.fullmatch(tag or '')
    if not match:
        return None
    prerelease = tuple(match.group(4).split('.')) if match.group(4) else ()
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), prerelease


def semver_key(tag: str) -> tuple[Any, ...]:
    """A sort key implementing semver 2.0.0 precedence (prereleases before their release)."""
    major, minor, patch, prerelease = parse_semver(tag) or (0, 0, 0, ())  # only versions are sorted by it
    pre_key: tuple[Any, ...]
    if not prerelease:
        pre_key = (1,)
    else:
        # Numeric identifiers sort numerically and before alphanumeric ones; a shorter
        # list of identifiers that is a prefix of a longer one sorts first.
        pre_key = (0, tuple((0, int(p), '') if p.isdigit() else (1, 0, p) for p in prerelease))
    # Tie-break on the tag itself ("v1.0.0" and "1.0.0" are the same version), so the order is stable.
    return (major, minor, patch, pre_key, tag)


def sort_tags(tags: Iterable[str], mode: str = 'lexical') -> tuple[list[str], list[str]]:
    """``(sorted_tags, other_tags)``: with ``semver``, the tags that are not versions go to other_tags."""
    if mode == 'lexical':
        return sorted(tags), []
    if mode == 'semver':
        versions = [t for t in tags if parse_semver(t) is not None]
        others = sorted(t for t in tags if parse_semver(t) is None)
        return sorted(versions, key=semver_key), others
    raise InvalidInputError('Unknown sort %r: use lexical or semver' % (mode,))


def compile_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """The regular expression of a ``pattern`` option (None without one); a bad one is the user's error."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInputError('Invalid pattern %r: %s' % (pattern, exc))


def filter_tags(tags: Iterable[str], pattern: str | None) -> list[str]:
    """The names ``pattern`` finds (``re.search``), in order: tags, or the repositories of a catalog."""
    regex = compile_pattern(pattern)
    if regex is None:
        return list(tags)
    return [t for t in tags if regex.search(t)]


class TagsInfoOutcome:
    """The tags of one repository, as listed, filtered and ordered: ``to_result()`` is the module's result."""

    def __init__(self, reference: ImageReference, sort: str = 'lexical') -> None:
        self.reference = reference
        self.sort = sort
        self.exists = True
        self.registry_error_codes: list[str] = []
        self.pages = 0
        self.total = 0
        self.tags: list[str] = []
        self.other_tags: list[str] = []
        self.digests: dict[str, str | None] | None = None  # None: not asked for

    def to_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {'changed': False, 'repository': self.reference.repository_name,
                                  'exists': self.exists, 'tags': self.tags}
        if not self.exists:
            result['registry_error_codes'] = self.registry_error_codes
        else:
            result.update({'pages': self.pages, 'total': self.total})
            if self.sort == 'semver':
                result['other_tags'] = self.other_tags
        if self.digests is not None:
            result['digests'] = self.digests
        return result


def repository_target(image: str) -> ImageReference:
    """The repository ``tags_info`` lists: ``image`` must name no tag and no digest."""
    reference = ImageReference.parse(image)
    if reference.tag or reference.digest:
        raise InvalidInputError('image must name a repository without a tag or digest, got %s' % image)
    return reference


def tags_info(client: RegistryClient, reference: ImageReference, pattern: str | None = None, sort: str = 'lexical',
              with_digests: bool = False, page_size: int | None = None,
              ctx: RunContext | None = None) -> TagsInfoOutcome:
    """The tags of ``reference``'s repository (a missing repository is an outcome, not an error).

    With ``with_digests``, every listed tag is resolved with a HEAD, ``ctx.workers`` at once.
    """
    ctx = ctx or RunContext(workers=DEFAULT_FANOUT)
    outcome = TagsInfoOutcome(reference, sort)
    try:
        tags, outcome.pages = list_tags(client, reference.repository, page_size=page_size,
                                        name=reference.repository_name)
    except NotFoundError as error:
        outcome.exists, outcome.registry_error_codes = False, error.codes
        outcome.digests = {} if with_digests else None
        return outcome
    outcome.total = len(tags)
    outcome.tags, outcome.other_tags = sort_tags(filter_tags(tags, pattern), sort)
    if with_digests:
        wanted = outcome.tags + outcome.other_tags

        def resolve(tag: str) -> str | None:
            found = client.resolve(reference.repository, tag)
            return found['digest'] if found else None

        # A tag deleted between the listing and its HEAD has no digest (null).
        outcome.digests = dict(zip(wanted, parallel_map(resolve, wanted, ctx.workers)))
    return outcome


# -- semantic version ranges (sync's ``semver`` selector) ------------------------
# A comparator is an operator and a version that may be partial (``1.4``) or have wildcards (``1.4.x``, ``*``).
_COMPARATOR = re.compile(r'(\^|~|>=|<=|>|<|=)?\s*v?(\*|x|X|0|[1-9][0-9]*)(?:\.(\*|x|X|0|[1-9][0-9]*))?'
                         r'(?:\.(\*|x|X|0|[1-9][0-9]*))?(?:-([0-9A-Za-z.-]+))?')
_Bound = tuple[Any, ...]  # (major, minor, patch, prerelease key) as semver_key orders them


def _bound(major: int, minor: int, patch: int, prerelease: tuple[str, ...] = (), lowest: bool = False) -> _Bound:
    """The order key of a version; ``lowest`` is below every prerelease of it (``1.5.0-0`` and lower)."""
    if lowest:
        return (major, minor, patch, (0, ()))
    return semver_key('%d.%d.%d%s' % (major, minor, patch, '-' + '.'.join(prerelease) if prerelease else ''))[:4]


def _comparator(text: str, expression: str) -> list[tuple[str, _Bound]]:
    """``[(operator, bound)]`` of one comparator: a caret, tilde or wildcard becomes a lower and an upper bound."""
    match = _COMPARATOR.fullmatch(text)
    if not match:
        raise InvalidInputError('Invalid semver range %r: %r is not a comparator such as >=1.25.0, ^1.4, ~1.4.2 or '
                                '1.4.x' % (expression, text))
    op = match.group(1) or '='
    parts = [None if p is None or p in '*xX' else int(p) for p in match.group(2, 3, 4)]
    given = len([p for p in match.group(2, 3, 4) if p is not None and p not in '*xX'])
    if any(p is not None for p in parts[given:]) or (match.group(5) and given < 3):
        raise InvalidInputError('Invalid semver range %r: in %r, a wildcard or a missing part is followed by a '
                                'number or a prerelease' % (expression, text))
    numbers = [p or 0 for p in parts]
    prerelease = tuple(match.group(5).split('.')) if match.group(5) else ()
    if prerelease and parse_semver('0.0.0-' + match.group(5)) is None:
        raise InvalidInputError('Invalid semver range %r: %r has an invalid prerelease' % (expression, text))
    low = _bound(numbers[0], numbers[1], numbers[2], prerelease)
    if given == 0:
        return [] if op in ('=', '>=', '<=', '^', '~') else [('<', _bound(0, 0, 0, lowest=True))]
    if op == '^':
        bump = next((i for i in range(given) if numbers[i]), given - 1)
        return [('>=', low), ('<', _upper(numbers, min(bump, 2)))]
    if op == '~':
        return [('>=', low), ('<', _upper(numbers, 0 if given == 1 else 1))]
    if given == 3:
        return [(op, low)]
    # A partial version is a range of its own: 1.4 is >=1.4.0 <1.5.0-0.
    upper = _upper(numbers, given - 1)
    floor = _bound(numbers[0], numbers[1], numbers[2], lowest=True)
    return {'=': [('>=', low), ('<', upper)], '>=': [('>=', low)], '<': [('<', floor)],
            '>': [('>=', upper)], '<=': [('<', upper)]}[op]


def _upper(numbers: list[int], position: int) -> _Bound:
    """The first version above every one that shares ``numbers[:position + 1]`` (lower than its prereleases)."""
    bumped = list(numbers[:position]) + [numbers[position] + 1] + [0] * (2 - position)
    return _bound(bumped[0], bumped[1], bumped[2], lowest=True)


_COMPARE = {'=': lambda a, b: a == b, '>=': lambda a, b: a >= b, '<=': lambda a, b: a <= b,
            '>': lambda a, b: a > b, '<': lambda a, b: a < b}


class SemverRange:
    """A range of semantic versions in the npm notation: ``>=1.25.0 <1.27.0``, ``^1.4``, ``~1.4.2``, ``1.4.x``,
    ``*``, and alternatives joined with ``||``. Comparators separated by spaces must all hold.

    A prerelease (``1.5.0-rc.1``) is in the range only when ``prereleases`` is asked for: a release promotion
    does not pick a release candidate because it sorts between two releases. With it, prereleases are
    ordered by semver precedence (``^1.4`` stops below ``2.0.0-0``, so no prerelease of 2.0.0 is in it).
    """

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidInputError('Invalid semver range %r: it is empty' % (expression,))
        self.expression = expression
        self.alternatives: list[list[tuple[str, _Bound]]] = []
        for alternative in expression.split('||'):
            text = re.sub(r'(\^|~|>=|<=|>|<|=)\s+', r'\1', alternative.strip())
            comparators: list[tuple[str, _Bound]] = []
            for part in text.split() or ['*']:
                comparators.extend(_comparator(part, expression))
            self.alternatives.append(comparators)

    def matches(self, tag: str, prereleases: bool = False) -> bool:
        """Whether the tag is a version in the range (a tag that is no version never is)."""
        version = parse_semver(tag)
        if version is None or (version[3] and not prereleases):
            return False
        key = semver_key(tag)[:4]
        return any(all(_COMPARE[op](key, bound) for op, bound in alternative) for alternative in self.alternatives)


def latest_versions(tags: Iterable[str], count: int, prereleases: bool = False) -> list[str]:
    """The ``count`` highest semantic versions among ``tags``, highest first (prereleases only when asked for)."""
    if count < 1:
        raise InvalidInputError('latest must be at least 1, got %r' % (count,))
    versions = []
    for tag in tags:
        version = parse_semver(tag)
        if version is not None and (prereleases or not version[3]):
            versions.append(tag)
    return sorted(versions, key=semver_key, reverse=True)[:count]
