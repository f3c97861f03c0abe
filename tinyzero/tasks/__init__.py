"""The task registry: everything training and evaluation need to know about a task.

``TASKS["countdown"]`` and ``TASKS["multiplication"]`` are ``Task`` objects. Code outside the
task modules goes through them only, so adding a task means adding one entry here::

    task = TASKS[row["task"]]
    task.prompt(row, "base")        # the prompt (str, or messages for "chat")
    task.grade(completion, row)     # -> Verdict; THE definition of correct
    task.reward                     # the TRL reward function (rewards.py)
    task.columns                    # the dataset columns grade/reward need
    task.key(row)                   # problem identity, for train/test separation
    task.validate(row)              # None, or what is wrong with a data row
    task.reference(row)             # a correct answer text, or None
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tinyzero import countdown, multiplication
from tinyzero.grader import Verdict
from tinyzero.rewards import answer_reward, multiplication_reward

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


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _validate_countdown(row: Row) -> str | None:
    nums, target = row["nums"], row["target"]
    if not isinstance(nums, (list, tuple)):
        return f"nums is not a list: {nums!r:.40}"
    if not nums:
        return "nums is empty"
    for i, x in enumerate(nums):
        if not _is_int(x):
            return f"nums[{i}] is not an integer: {x!r:.40}"
        if x < 0:
            return f"nums[{i}] is negative: {x}"
    if not _is_int(target):
        return f"target is not an integer: {target!r:.40}"
    if target <= 0:
        return f"target must be positive, got {target}"
    return None


def _validate_multiplication(row: Row) -> str | None:
    for name in ("a", "b"):
        x = row[name]
        if not _is_int(x):
            return f"{name} is not an integer: {x!r:.40}"
        if x < 0:
            return f"{name} is negative: {x}"
    if "product" in row and row["product"] != row["a"] * row["b"]:  # type: ignore[operator]
        return f"product {row['product']!r:.40} is not a * b"
    return None


def _countdown_reference(row: Row) -> str | None:
    # Shipped rows carry a solution; a user's rows (e.g. Countdown-Tasks-3to4) do not.
    return row.get("solution") or countdown.solve(row["nums"], row["target"])  # type: ignore[arg-type]


TASKS: dict[str, Task] = {
    "countdown": Task(
        name="countdown",
        columns=("nums", "target"),
        reward=answer_reward,
        _prompt=countdown.prompt,
        _grade=countdown.grade,
        _key=countdown.problem_key,
        _reference=_countdown_reference,
        _validate=_validate_countdown,
    ),
    "multiplication": Task(
        name="multiplication",
        columns=("a", "b"),
        reward=multiplication_reward,
        _prompt=multiplication.prompt,
        _grade=multiplication.grade,
        _key=multiplication.problem_key,
        _reference=lambda row: str(row["a"] * row["b"]),  # type: ignore[operator]
        _validate=_validate_multiplication,
    ),
}


def detect_task(columns: set[str] | list[str]) -> str | None:
    """The task whose columns a dataset has (e.g. Countdown-Tasks-3to4: nums, target)."""
    found = [name for name, task in TASKS.items() if set(task.columns) <= set(columns)]
    return found[0] if len(found) == 1 else None
