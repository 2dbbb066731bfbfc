"""Shared test setup: makes ``tests/`` importable so helper modules (``killresume``) can be shared."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
