"""Test setup: make tests/ importable (progen) and keep hypothesis quiet about its database."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(params=(0, 2), ids=lambda level: f"O{level}")
def level(request) -> int:
    """The opt levels the end-to-end tests run each program at."""
    return request.param
