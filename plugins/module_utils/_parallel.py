# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""Bounded parallel calls, the first one alone: the one "first call, then fan out" of the collection.

The first call against a registry learns its scheme and fetches the token the
others then share; made alone, it saves every worker thread from answering the
same 401 with its own token request. Every caller that fans requests out
(HEADs of tags, tag writes, blob uploads and verifications, child manifests)
goes through :func:`run_all` or :func:`parallel_map`.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, List, Optional, TypeVar

from ansible_collections.imagelayers.registry.plugins.module_utils._errors import InvalidInputError

T = TypeVar('T')

# Requests in flight at once when a caller does not say (HEAD per tag, digests of a listing, child manifests).
DEFAULT_FANOUT = 8
# The most workers a task may ask for (copy, push, blob_verify).
MAX_WORKERS = 32


def check_workers(workers: int) -> int:
    """``workers`` when it is within 1..MAX_WORKERS; InvalidInputError otherwise."""
    if not 1 <= workers <= MAX_WORKERS:
        raise InvalidInputError('workers must be between 1 and %d, got %r' % (MAX_WORKERS, workers))
    return workers


class Call:
    """What became of one call: its value, the exception it raised, or that it was not attempted."""

    def __init__(self, attempted: bool = True, value: Any = None, error: Optional[BaseException] = None) -> None:
        self.attempted = attempted
        self.value = value
        self.error = error

    @property
    def ok(self) -> bool:
        return self.attempted and self.error is None


NOT_ATTEMPTED = Call(attempted=False)


def _call_each(function: Callable[[Any], Any], items: List[Any], workers: int) -> List[Call]:
    """Every call, at most ``workers`` at once; never raises (an exception is in its Call)."""
    lock = threading.Lock()
    calls: List[Call] = [NOT_ATTEMPTED] * len(items)

    def call(index: int) -> None:
        try:
            outcome = Call(value=function(items[index]))
        except Exception as exc:  # pylint: disable=broad-except
            outcome = Call(error=exc)
        with lock:
            calls[index] = outcome

    if len(items) <= 1 or workers <= 1:
        for index in range(len(items)):
            call(index)
        return calls
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        list(pool.map(call, range(len(items))))
    return calls


def run_all(function: Callable[[Any], Any], items: Iterable[Any], workers: int = DEFAULT_FANOUT,
            first_alone: bool = True) -> List[Call]:
    """One :class:`Call` per item, in the order of ``items``; never raises.

    With ``first_alone``, the first call runs before the others; when it fails,
    the others are :data:`NOT_ATTEMPTED`. The others run in parallel, all to completion.
    """
    items = list(items)
    if not first_alone or not items:
        return _call_each(function, items, workers)
    first = _call_each(function, items[:1], 1)
    if not first[0].ok:
        return first + [NOT_ATTEMPTED] * (len(items) - 1)
    return first + _call_each(function, items[1:], workers)


def parallel_map(function: Callable[[Any], T], items: Iterable[Any], workers: int = DEFAULT_FANOUT,
                 first_alone: bool = True) -> List[T]:
    """``[function(item) for item in items]`` with at most ``workers`` calls in flight.

    Results keep the order of ``items``. The first call runs alone (unless
    ``first_alone`` is false; when it raises, nothing else runs); the others run
    in parallel, all to completion, and the first of their exceptions (in the
    order of ``items``) is raised after they finished, so no request is left
    running behind the caller's back.
    """
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [function(item) for item in items]
    results = []
    for call in run_all(function, items, workers, first_alone):
        if call.error is not None:
            raise call.error  # in the caller's thread, once every call has finished
        results.append(call.value)
    return results
