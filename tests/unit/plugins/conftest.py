# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The servers every unit test may ask for by name; each is closed when its test ends.

``registry``, ``source``, ``server`` and ``other_server`` are fake registries (test_support.registry)
that a test may also script request by request; ``slow`` is a SlowServer (test_support.servers);
``outside`` a directory that crafted archives must leave untouched.
"""

from __future__ import annotations

import pytest

from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.archives import make_outside
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.registry import Registry
from ansible_collections.imagelayers.registry.tests.unit.plugins.test_support.servers import SlowServer


@pytest.fixture
def registry():
    with Registry() as served:
        yield served


@pytest.fixture
def source():
    with Registry() as served:
        yield served


@pytest.fixture
def server():
    with Registry() as served:
        yield served


@pytest.fixture
def other_server():
    with Registry() as served:
        yield served


@pytest.fixture
def slow():
    with SlowServer() as served:
        yield served


@pytest.fixture
def outside(tmp_path):
    return make_outside(tmp_path)
