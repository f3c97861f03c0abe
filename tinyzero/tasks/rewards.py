"""The reward scheme shared by every task, for TRL's GRPOTrainer.

TRL's contract: each function takes the batch's ``completions`` (strings, or message lists
for conversational datasets) plus every dataset column as a keyword argument, and returns
one float per completion. The names are deliberate: TRL logs ``rewards/<function name>/mean``.
They have no side effects (no printing, no files); sample logging is TRL's ``log_completions``.

TinyZero's scheme (``score``): 1.0 for a correct answer, 0.1 for an answer block that is wrong,
malformed or breaks the rules, 0.0 for no answer block. ``format_reward`` is a separate,
optional shaping signal for the R1 ``<think>...</think><answer>...</answer>`` layout.

Each task's own reward function (``countdown.answer_reward``, ``multiplication.multiplication_reward``)
is ``score`` of its ``grade``; ``tinyzero.tasks.TASKS[name].reward`` names it. Usage::

    GRPOTrainer(..., reward_funcs=[TASKS["countdown"].reward, format_reward], train_dataset=ds)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from tinyzero.tasks.grading import Verdict, completion_text, is_well_formed

CORRECT, ANSWERED, NO_ANSWER = 1.0, 0.1, 0.0


def score(verdict: Verdict) -> float:
    """TinyZero's reward for one graded completion."""
    if verdict.correct:
        return CORRECT
    return ANSWERED if verdict.has_answer else NO_ANSWER


def check_lengths(completions: Sequence, **columns: Sequence) -> None:
    """One value of each column per completion: a silent zip() truncation would shift rewards
    onto the wrong completions."""
    for name, column in columns.items():
        if len(column) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(column)} values of {name!r}")


def format_reward(completions: Sequence, **kwargs) -> list[float]:
    """1.0 when the completion is ``is_well_formed``, else 0.0 (any task)."""
    return [1.0 if is_well_formed(completion_text(c)) else 0.0 for c in completions]


# --- control rewards --------------------------------------------------------------------
# Selected with ``reward:`` in a recipe (``tinyzero.train``). They answer "does the gain come
# from the reward?": under a random or sign-flipped reward, accuracy should not rise.


def random_reward(completions: Sequence, **kwargs) -> list[float]:
    """Each completion 0.0 or 1.0 at random (Python's ``random``, which Trainer seeds)."""
    return [float(random.random() < 0.5) for _ in completions]


def flipped(reward: Callable[..., list[float]]) -> Callable[..., list[float]]:
    """The task's reward with its sign flipped: being right is punished."""

    def flipped_reward(completions: Sequence, **kwargs) -> list[float]:
        return [-r for r in reward(completions, **kwargs)]

    return flipped_reward


REWARDS = ("task", "format", "random", "flipped")


def select_reward(name: str, task_reward: Callable[..., list[float]]) -> Callable[..., list[float]]:
    """The reward a recipe's ``reward:`` names: the task's own, or a control."""
    choices = {
        "task": lambda: task_reward,
        "format": lambda: format_reward,
        "random": lambda: random_reward,
        "flipped": lambda: flipped(task_reward),
    }
    if name not in choices:
        raise ValueError(f"unknown reward {name!r}; choose from {list(REWARDS)}")
    return choices[name]()
