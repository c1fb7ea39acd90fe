"""Test setup: make tests/ importable (progen) and keep hypothesis quiet about its database."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
