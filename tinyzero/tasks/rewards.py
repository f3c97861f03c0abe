"""Reward functions for TRL's GRPOTrainer, built only on the tasks' ``grade`` functions.

TRL's contract: each function takes the batch's ``completions`` (strings, or message lists
for conversational datasets) plus every dataset column as a keyword argument, and returns
one float per completion. The names are deliberate: TRL logs ``rewards/<function name>/mean``.
They have no side effects (no printing, no files); sample logging is TRL's ``log_completions``.

TinyZero's scheme (``score``): 1.0 for a correct answer, 0.1 for an answer block that is wrong,
malformed or breaks the rules, 0.0 for no answer block. ``format_reward`` is a separate,
optional shaping signal for the R1 ``<think>...</think><answer>...</answer>`` layout.

Usage::

    GRPOTrainer(..., reward_funcs=[answer_reward, format_reward], train_dataset=countdown_ds)
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyzero import countdown, multiplication
from tinyzero.grader import Verdict, completion_text, is_well_formed

CORRECT, ANSWERED, NO_ANSWER = 1.0, 0.1, 0.0


def score(verdict: Verdict) -> float:
    """TinyZero's reward for one graded completion."""
    if verdict.correct:
        return CORRECT
    return ANSWERED if verdict.has_answer else NO_ANSWER


def _check_lengths(completions: Sequence, **columns: Sequence) -> None:
    # A silent zip() truncation would shift rewards onto the wrong completions.
    for name, column in columns.items():
        if len(column) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(column)} values of {name!r}")


def answer_reward(
    completions: Sequence, nums: Sequence[Sequence[int]], target: Sequence[int], **kwargs
) -> list[float]:
    """Countdown: 1.0 correct, 0.1 answered but not correct, 0.0 no answer block."""
    _check_lengths(completions, nums=nums, target=target)
    return [score(countdown.grade(c, n, t)) for c, n, t in zip(completions, nums, target)]


def multiplication_reward(
    completions: Sequence, a: Sequence[int], b: Sequence[int], **kwargs
) -> list[float]:
    """Multiplication: 1.0 correct, 0.1 answered but not correct, 0.0 no answer block."""
    _check_lengths(completions, a=a, b=b)
    return [score(multiplication.grade(c, x, y)) for c, x, y in zip(completions, a, b)]


def format_reward(completions: Sequence, **kwargs) -> list[float]:
    """1.0 when the completion is ``is_well_formed``, else 0.0 (any task)."""
    return [1.0 if is_well_formed(completion_text(c)) else 0.0 for c in completions]
