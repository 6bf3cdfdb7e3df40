# -*- coding: utf-8 -*-
# Copyright: contributors to the imagelayers.registry collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: may change without notice between releases.
"""What a task asks of every operation it runs, built once per task.

Operations (copy, push, tag, blob_verify, ...) take a :class:`RunContext`
instead of a handful of keyword arguments, so check mode, diff mode, the retry
budget, the parallelism and where warnings go reach every layer by one route.
"""

from __future__ import annotations

from typing import Callable, List, Optional

DEFAULT_WORKERS = 4


class RunContext:
    """Check mode, diff mode, retries, workers and warnings of one task."""

    def __init__(self, check_mode: bool = False, diff_mode: bool = False, retries: int = 3,
                 workers: int = DEFAULT_WORKERS, warn: Optional[Callable[[str], None]] = None) -> None:
        self.check_mode = bool(check_mode)
        self.diff_mode = bool(diff_mode)
        self.retries = int(retries)
        self.workers = int(workers)
        self.warnings: List[str] = []
        self._warn = warn

    def warn(self, message: str) -> None:
        """Pass a warning on to the task (or keep it, when nothing takes warnings)."""
        if self._warn is not None:
            self._warn(message)
        else:
            self.warnings.append(message)
