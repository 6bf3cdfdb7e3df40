# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Tag listing (with ``Link`` pagination), semantic-version sorting and bounded parallel requests."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryHTTPError,
)
from ansible_collections.imagelayers.registry.plugins.module_utils._reference import is_tag

# Requests in flight at once against one registry (HEAD per tag, digests of a listing).
MAX_WORKERS = 8
# Bounds of one tag listing. A real registry stays far below them; a registry whose Link header names a
# new page every time, or that sends tags without end, reaches them within seconds and a few MiB.
MAX_PAGES = 1000                          # without page_size, or with page_size >= 1000
MAX_TAGS = 1000000                        # distinct tags, whatever the page size
MAX_LISTING_BYTES = 64 * 1024 * 1024      # all the pages' bodies together
MAX_PAGE_BYTES = 16 * 1024 * 1024         # one page's body

_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[a-zA-Z0-9*_-]+\s*=\s*(?:"[^"]*"|[^;,\s]*)\s*)*)')
_REL = re.compile(r'''rel\s*=\s*(?:"([^"]*)"|([^;,\s]*))''', re.IGNORECASE)


# -- parallel requests -------------------------------------------------------
def parallel_map(function, items, workers=MAX_WORKERS):
    """``[function(item) for item in items]`` with at most ``workers`` calls in flight.

    Results keep the order of ``items``. The first call runs alone (when it
    raises, nothing else runs); the others run in parallel, all to completion,
    and the first of their exceptions (in the order of ``items``) is raised
    after they finished, so no request is left running behind the caller's back.
    """
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [function(item) for item in items]
    results = []
    for ok, value in run_first_then_all(function, items, workers):
        if not ok:
            raise value  # in the caller's thread, once every call has finished
        results.append(value)
    return results


def run_first_then_all(function, items, workers=MAX_WORKERS):
    """Like run_all, but the first call runs alone; when it fails, the others are not attempted: ``(False, None)``.

    The first call learns the scheme and fetches the token the others then share,
    instead of every thread answering the same 401 with its own token request.
    """
    items = list(items)
    outcomes = run_all(function, items[:1], workers)
    if outcomes and not outcomes[0][0]:
        return outcomes + [(False, None)] * (len(items) - 1)
    return outcomes + run_all(function, items[1:], workers)


def run_all(function, items, workers=MAX_WORKERS):
    """Like parallel_map, but returns ``[(ok, result_or_exception)]`` and never raises."""
    items = list(items)
    lock = threading.Lock()
    outcomes = [None] * len(items)

    def call(index):
        try:
            value = (True, function(items[index]))
        except Exception as exc:
            value = (False, exc)
        with lock:
            outcomes[index] = value

    if len(items) <= 1 or workers <= 1:
        for index in range(len(items)):
            call(index)
        return outcomes
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        list(pool.map(call, range(len(items))))
    return outcomes


# -- listing -------------------------------------------------------------------
def next_link(header):
    """The target of the ``rel="next"`` entry of a ``Link`` header, or None."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        for rel in _REL.finditer(match.group(2) or ''):
            value = rel.group(1) if rel.group(1) is not None else rel.group(2)
            if 'next' in (value or '').lower().split():
                return match.group(1).strip()
    return None


def clean_tags(entries, seen=None):
    """Valid tag names from a ``tags`` array, in order, without duplicates.

    Some registries put ``null`` entries or digests (``sha256:...``) in the list;
    neither is a tag that can be pulled, so both are left out, and so is any other
    name a tag cannot have (``"x\\n"``, ``"a b"``). ``seen`` (a set, updated) carries
    the tags of earlier pages.
    """
    seen = set() if seen is None else seen
    result = []
    for entry in entries or ():
        if not is_tag(entry) or entry in seen:
            continue
        seen.add(entry)
        result.append(entry)
    return result


def page_bound(page_size=None):
    """The most pages a listing may take.

    MAX_PAGES, or more when the page size the user asked for is so small that
    MAX_TAGS tags need more pages (``page_size: 1`` may take a million pages). The
    user chooses page_size, the registry does not; MAX_TAGS and MAX_LISTING_BYTES hold always.
    """
    if not page_size:
        return MAX_PAGES
    return max(MAX_PAGES, -(-MAX_TAGS // page_size))


def _too_many_pages(name, bound, page_size):
    asked = 'with page_size %d' % page_size if page_size else 'without page_size'
    return ('The tag listing of %s has more than %d pages, the most followed %s; giving up: a registry whose Link '
            'header names a new page every time would never end. If the repository really has that many tags, set '
            'page_size to the number of tags the registry sends per page (at most %d tags are listed in any case)'
            % (name, bound, asked, MAX_TAGS))


def _read_page(client, repository, page_size, next_url, name, budget):
    """``(url, body bytes, Link header)`` of one page, refused past ``min(MAX_PAGE_BYTES, budget)`` bytes."""
    page = client.tags_page(repository, page_size, url=next_url, limit=min(MAX_PAGE_BYTES, budget) + 1, name=name)
    url, raw, link = page.url, page.body, page.link
    if len(raw) > MAX_PAGE_BYTES:
        raise RegistryHTTPError('A tag list page of %s is larger than %d bytes' % (name, MAX_PAGE_BYTES), url=url)
    if len(raw) > budget:
        raise RegistryHTTPError('The tag listing of %s is larger than %d bytes (%d MiB) in total; giving up'
                                % (name, MAX_LISTING_BYTES, MAX_LISTING_BYTES // (1024 * 1024)), url=url)
    return url, raw, link


def _page_entries(raw, name, url):
    """The ``tags`` array of one page (possibly with junk entries), or an empty list."""
    try:
        body = json.loads(raw.decode('utf-8')) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise RegistryHTTPError('The tag list of %s is not valid JSON: %s' % (name, exc), url=url)
    if not isinstance(body, dict):
        raise RegistryHTTPError('The tag list of %s is not a JSON object' % name, url=url)
    entries = body.get('tags')
    if entries is not None and not isinstance(entries, list):
        raise RegistryHTTPError('The tag list of %s has a "tags" field that is not a list' % name, url=url)
    return entries or []


def list_tags(client, repository, page_size=None, name=None):
    """Every tag of ``repository``, following ``Link: <...>; rel="next"`` pagination.

    Stops with RegistryHTTPError past page_bound(page_size) pages, MAX_TAGS tags or
    MAX_LISTING_BYTES of bodies, and when a link names a page already read. Returns
    ``(tags, pages)``; raises NotFoundError when the repository does not exist.
    ``name`` (the full repository name) is what messages say.
    """
    if page_size is not None and (page_size < 1 or page_size > 100000):
        raise InvalidInputError('page_size must be between 1 and 100000, got %r' % (page_size,))
    name = name or repository
    bound = page_bound(page_size)
    seen_urls, seen_tags, tags = set(), set(), []
    pages = received = 0
    next_url = None
    while pages == 0 or next_url:
        if pages >= bound:
            raise RegistryHTTPError(_too_many_pages(name, bound, page_size), url=next_url,
                                    details={'pages': pages, 'max_pages': bound})
        pages += 1
        url, raw, link = _read_page(client, repository, page_size, next_url, name, MAX_LISTING_BYTES - received)
        received += len(raw)
        seen_urls.add(url)
        tags.extend(clean_tags(_page_entries(raw, name, url), seen_tags))
        if len(tags) > MAX_TAGS:
            raise RegistryHTTPError('The tag listing of %s has more than %d tags after %d pages; giving up'
                                    % (name, MAX_TAGS, pages), url=url, details={'pages': pages})
        target = next_link(link)
        next_url = urljoin(url, target) if target else None
        if next_url in seen_urls:
            raise RegistryHTTPError('The tag listing of %s loops: the registry links back to the page %s'
                                    % (name, urlsplit(next_url).path), url=next_url)
    return tags, pages


# -- semantic versions -------------------------------------------------------
# Used with fullmatch ("$" would also accept a final newline).
_SEMVER = re.compile(
    r'v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)'
    r'(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?'
    r'(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?')


def parse_semver(tag):
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


def semver_key(tag):
    """A sort key implementing semver 2.0.0 precedence (prereleases before their release)."""
    major, minor, patch, prerelease = parse_semver(tag)
    if not prerelease:
        pre_key = (1,)
    else:
        # Numeric identifiers sort numerically and before alphanumeric ones; a shorter
        # list of identifiers that is a prefix of a longer one sorts first.
        pre_key = (0, tuple((0, int(p), '') if p.isdigit() else (1, 0, p) for p in prerelease))
    # Tie-break on the tag itself ("v1.0.0" and "1.0.0" are the same version), so the order is stable.
    return (major, minor, patch, pre_key, tag)


def sort_tags(tags, mode='lexical'):
    """``(sorted_tags, other_tags)``: with ``semver``, the tags that are not versions go to other_tags."""
    if mode == 'lexical':
        return sorted(tags), []
    if mode == 'semver':
        versions = [t for t in tags if parse_semver(t) is not None]
        others = sorted(t for t in tags if parse_semver(t) is None)
        return sorted(versions, key=semver_key), others
    raise InvalidInputError('Unknown sort %r: use lexical or semver' % (mode,))


def filter_tags(tags, pattern):
    if not pattern:
        return list(tags)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InvalidInputError('Invalid pattern %r: %s' % (pattern, exc))
    return [t for t in tags if regex.search(t)]


def tags_info(client, reference, pattern=None, sort='lexical', with_digests=False, page_size=None):
    """What the ``tags_info`` module returns."""
    result = {'changed': False, 'repository': reference.repository_name, 'exists': True, 'tags': []}
    try:
        tags, pages = list_tags(client, reference.repository, page_size=page_size,
                                name=reference.repository_name)
    except NotFoundError as error:
        result.update({'exists': False, 'registry_error_codes': error.codes})
        if with_digests:
            result['digests'] = {}
        return result
    result['pages'] = pages
    result['total'] = len(tags)
    selected = filter_tags(tags, pattern)
    ordered, others = sort_tags(selected, sort)
    result['tags'] = ordered
    if sort == 'semver':
        result['other_tags'] = others
    if with_digests:
        wanted = ordered + others

        def resolve(tag):
            found = client.resolve(reference.repository, tag)
            return found['digest'] if found else None

        digests = parallel_map(resolve, wanted)
        # A tag deleted between the listing and its HEAD has no digest (null).
        result['digests'] = dict(zip(wanted, digests))
    return result
