"""The tasks: problems, prompts, the grader, rewards and data, with no torch.

``TASKS["countdown"]`` and ``TASKS["multiplication"]`` are ``Task`` objects (``base.py``), each
defined at the bottom of its own module. Code outside this package goes through them only,
so adding a task means writing its module and adding it to the tuple below::

    task = TASKS[row["task"]]
    task.prompt(row, "base")        # the prompt (str, or messages for "chat")
    task.grade(completion, row)     # -> Verdict; THE definition of correct
    task.reward                     # the TRL reward function (score of grade, rewards.py)
    task.columns                    # the dataset columns grade/reward need
    task.key(row)                   # problem identity, for train/test separation
    task.validate(row)              # None, or what is wrong with a data row
    task.reference(row)             # a correct answer text, or None

Modules: ``grading`` (tags, safe arithmetic, ``Verdict``), ``prompts`` (the R1-Zero framing),
``rewards`` (TinyZero's 1.0 / 0.1 / 0.0), ``countdown``, ``multiplication``, ``data``
(shipped splits and a user's files, validated row by row).
"""

from __future__ import annotations

from tinyzero.tasks import countdown, multiplication
from tinyzero.tasks.base import Task

TASKS: dict[str, Task] = {t.name: t for t in (countdown.TASK, multiplication.TASK)}


def get_task(name: str) -> Task:
    """The task called ``name``, or a one-line error that lists the known ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name]


def detect_task(columns: set[str] | list[str]) -> str | None:
    """The task whose columns a dataset has (e.g. Countdown-Tasks-3to4: nums, target)."""
    found = [name for name, task in TASKS.items() if set(task.columns) <= set(columns)]
    return found[0] if len(found) == 1 else None


__all__ = ["TASKS", "Task", "detect_task", "get_task"]
