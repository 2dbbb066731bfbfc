"""Shared test setup: makes ``tests/`` importable so helper modules (``killresume``) can be shared,
and the ``one_torch_thread`` fixture."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Many small convolutions: with intra-op threads on a busy machine each call waits on its
    threads (~20 ms instead of 0.3 ms); one thread keeps such tests fast. Restored afterwards.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
