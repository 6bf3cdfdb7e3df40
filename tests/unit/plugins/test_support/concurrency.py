# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many threads are inside one place at once: the tests of parallel work count with it."""

from __future__ import annotations

import threading
import time


class Overlap:
    """``hold(seconds)`` stays a moment and counts who else is in; ``peak`` is the most seen at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def hold(self, seconds):
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self.active -= 1
