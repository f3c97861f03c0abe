"""``Task``: the one interface through which the rest of tinyzero sees a task.

A task module (``countdown``, ``multiplication``) owns its whole task (generator, prompts,
grading, reward, data rules) and exposes it as ``TASK = Task(...)``; ``tinyzero.tasks.TASKS``
collects them. Code outside a task module goes through these methods only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tinyzero.tasks.grading import Verdict

Row = Mapping[str, object]


@dataclass(frozen=True)
class Task:
    name: str
    columns: tuple[str, ...]
    reward: Callable[..., list[float]]
    _prompt: Callable[..., object]
    _grade: Callable[..., Verdict]
    _key: Callable[..., tuple]
    _reference: Callable[[Row], str | None]
    _validate: Callable[[Row], str | None]
    # Data preparation (data/prepare.py): seeded generator, the full problem space when it is
    # small enough to list, a row for a problem key, and the keys train must not contain.
    generate: Callable[..., list[dict]]
    space: Callable[[dict], list[tuple] | None]
    row_from_key: Callable[[tuple, random.Random], dict]
    leak_keys: Callable[[Iterable[Row]], set[tuple]]
    exclusion: str  # in words, what keeps train and test apart

    def _args(self, row: Row) -> list:
        return [row[c] for c in self.columns]

    def prompt(self, row: Row, template: str = "base") -> str | list[dict[str, str]]:
        return self._prompt(*self._args(row), template)  # type: ignore[return-value]

    def grade(self, completion: object, row: Row) -> Verdict:
        return self._grade(completion, *self._args(row))

    def key(self, row: Row) -> tuple:
        return self._key(*self._args(row))

    def reference(self, row: Row) -> str | None:
        return self._reference(row)

    def validate(self, row: Row) -> str | None:
        """What is wrong with a data row (short text), or None when grading can use it."""
        missing = [c for c in self.columns if c not in row]
        if missing:
            return f"missing column {missing[0]!r}"
        return self._validate(row)


def is_int(x: object) -> bool:
    """An int that is not a bool (JSON true/false must not pass as a number)."""
    return isinstance(x, int) and not isinstance(x, bool)
