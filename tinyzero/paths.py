"""Where tinyzero's own files live: the checkout's recipes/, data/ and runs/.

A leaf module (no imports of tinyzero), so every layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"


def runs_root() -> Path:
    """Where caches and default outputs go: $TINYZERO_HOME, else <checkout>/runs (or ./runs
    when the package is installed outside a checkout)."""
    if os.environ.get("TINYZERO_HOME"):
        return Path(os.environ["TINYZERO_HOME"])
    base = REPO if (REPO / "pyproject.toml").is_file() else Path.cwd()
    return base / "runs"
