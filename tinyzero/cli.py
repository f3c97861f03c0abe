"""How every tinyzero command reads its flags and reports bad input.

The commands with recipes (train, pretrain, eval, sample) parse dataclasses with TRL's
``TrlParser``: ``--config recipe.yaml`` sets the defaults, flags override them, unknown keys
are errors, ``--help`` lists every key. Commands that take paths as positional arguments
(plot, the benchmarks) use ``ArgumentParser``. Two things are changed, both for people at a
terminal:

- an argument error is one line (argparse would first print a usage of hundreds of
  GRPOConfig flags);
- ``run`` turns a bad input found later (a missing model folder, a broken data file, an
  unknown task) into one line naming it, instead of a traceback. ``TINYZERO_DEBUG=1`` shows
  the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from trl import TrlParser


class Parser(TrlParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the same one-line errors, for commands with positional arguments
    (``tinyzero.plot``, the benchmarks, ``data/prepare.py``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse(
    types: Iterable[type], argv: Sequence[str] | None = None, default_config: str | Path | None = None, prog: str | None = None
) -> tuple[Any, ...]:
    """The dataclasses of ``types`` from ``argv`` (default: sys.argv), over ``default_config``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if default_config is not None and "--config" not in argv:
        argv = ["--config", str(default_config), *argv]
    parser = Parser(tuple(types), prog=prog or _prog())
    try:
        *parsed, unknown = parser.parse_args_and_config(argv, return_remaining_strings=True)
    except (ValueError, OSError) as e:  # a bad recipe file or value (dataclass __post_init__)
        parser.error(_one_line(e))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return tuple(parsed)


def run(main: Callable[..., Any], *args: Any) -> Any:
    """``main(*args)``, with bad input reported as one line and exit status 1."""
    try:
        return main(*args)
    except (ValueError, OSError) as e:
        if os.environ.get("TINYZERO_DEBUG"):
            raise
        sys.exit(f"{_prog()}: error: {_one_line(e)} (TINYZERO_DEBUG=1 shows the traceback)")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _prog() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return f"python -m {spec.name}" if spec is not None and spec.name else Path(sys.argv[0]).name
