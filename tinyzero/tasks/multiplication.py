"""The multiplication task (TinyZero's second task): multiply two integers.

Each problem is a pair ``a``, ``b``; an answer is the exact product written as a plain
integer (surrounding whitespace and correctly grouped thousands commas allowed).

- ``generate(n, digits_a=2, digits_b=2, seed=...)``: seeded, distinct problems.
- ``all_problems(digits_a, digits_b)``: every problem of that size (2x2 digits: 8100).
- ``prompt(a, b, template)``: "base", "chat" or "nano" prompt.
- ``grade(completion, a, b)``: the one definition of a correct answer.
- ``multiplication_reward``: the TRL reward function, ``score`` of ``grade``.
- ``TASK``: all of it as a ``tinyzero.tasks.Task``.

Try it::

    python -m tinyzero.tasks.multiplication
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from fractions import Fraction

from tinyzero.tasks.base import Row, Task, is_int
from tinyzero.tasks.grading import (
    Verdict,
    completion_text,
    extract_answer,
    failed,
    is_well_formed,
)
from tinyzero.tasks.prompts import base_prompt, chat_prompt
from tinyzero.tasks.rewards import check_lengths, score

Problem = tuple[int, int]
MAX_ANSWER_CHARS = 64
# ASCII digits only ("\d" would accept other scripts' digits); commas only as thousands groups.
_INTEGER = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)")


def problem_key(a: int, b: int) -> Problem:
    return int(a), int(b)


def _digit_range(digits: int) -> tuple[int, int]:
    return (10 ** (digits - 1) if digits > 1 else 0), 10**digits - 1


def generate(
    n: int,
    *,
    digits_a: int = 2,
    digits_b: int = 2,
    seed: int = 0,
    exclude: Iterable[Problem] = (),
) -> list[dict]:
    """``n`` distinct problems as rows ``{"a", "b", "product"}``, ``a`` with exactly
    ``digits_a`` digits and ``b`` with ``digits_b`` (uniform, ``random.Random(seed)``).

    ``a x b`` and ``b x a`` are different prompts and so different problems here; callers
    that keep a test set apart should exclude both orders (``data/prepare.py`` does). Raises
    ValueError when fewer than ``n`` problems are left.
    """
    lo_a, hi_a = _digit_range(digits_a)
    lo_b, hi_b = _digit_range(digits_b)
    seen = set(exclude)
    available = (hi_a - lo_a + 1) * (hi_b - lo_b + 1) - sum(
        lo_a <= a <= hi_a and lo_b <= b <= hi_b for a, b in seen
    )
    if n > available:
        raise ValueError(f"only {available} distinct {digits_a}x{digits_b}-digit problems left")
    rng = random.Random(seed)
    rows: list[dict] = []
    while len(rows) < n:
        a, b = rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b)
        if (a, b) not in seen:
            seen.add((a, b))
            rows.append({"a": a, "b": b, "product": a * b})
    return rows


def all_problems(*, digits_a: int = 2, digits_b: int = 2) -> list[Problem]:
    lo_a, hi_a = _digit_range(digits_a)
    lo_b, hi_b = _digit_range(digits_b)
    return [(a, b) for a in range(lo_a, hi_a + 1) for b in range(lo_b, hi_b + 1)]


def prompt(a: int, b: int, template: str = "base") -> str | list[dict[str, str]]:
    """The prompt for one problem.

    "base": the R1-Zero base-model transcript, ending in "...step by step.\\n<think>".
    "chat": [system, user] messages for an instruct model's chat template.
    "nano": ``"Multiply {a} by {b}.\\n<think>"``, exactly (the nano tokenizer depends on it).
    """
    question = (
        f"Calculate {int(a)} * {int(b)}. Show your work in <think> </think> tags. And return "
        "the final answer as a plain integer in <answer> </answer> tags, for example "
        "<answer> 1234 </answer>."
    )
    if template == "base":
        return base_prompt(question)
    if template == "chat":
        return chat_prompt(question)
    if template == "nano":
        return f"Multiply {a} by {b}.\n<think>"
    raise ValueError(f"unknown template {template!r}; expected 'base', 'chat' or 'nano'")


def parse_integer(answer: str) -> int | None:
    """The integer an answer states, or None: optional sign, ASCII digits, optional thousands
    commas ("1,234" but not "12,34"), surrounding whitespace. No floats, no expressions."""
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
        return None
    text = answer.strip()
    if not _INTEGER.fullmatch(text):
        return None
    return int(text.replace(",", ""))


def grade(completion: object, a: int, b: int) -> Verdict:
    """Grade one completion. Correct iff the last answer block is a plain integer
    (``parse_integer``) equal to ``a * b``. Format is reported, not required. Never raises."""
    try:
        text = completion_text(completion)
        answer = extract_answer(text)
        if answer is None:
            return failed("no answer block", text)
        value = parse_integer(answer)
        if value is None:
            shown = answer.strip()
            shown = shown if len(shown) <= 24 else shown[:21] + "..."
            return failed(f"not an integer: {shown!r}", text, answer)
        product = int(a) * int(b)
        correct = value == product
        return Verdict(
            has_answer=True,
            well_formed=is_well_formed(text),
            parsed=True,
            numbers_ok=True,
            value=Fraction(value),
            correct=correct,
            reason="correct" if correct else f"equals {value}, not {product}",
            answer=answer,
        )
    except Exception as e:  # noqa: BLE001 (a last line of defence for odd problem rows; bugs get tested)
        return Verdict(False, False, False, False, None, False, f"grader error: {type(e).__name__}")


# --- reward, data rules and the Task --------------------------------------------------


def multiplication_reward(completions, a, b, **kwargs) -> list[float]:
    """Multiplication: 1.0 correct, 0.1 answered but not correct, 0.0 no answer block."""
    check_lengths(completions, a=a, b=b)
    return [score(grade(c, x, y)) for c, x, y in zip(completions, a, b)]


def validate(row: Row) -> str | None:
    for name in ("a", "b"):
        x = row[name]
        if not is_int(x):
            return f"{name} is not an integer: {x!r:.40}"
        if x < 0:
            return f"{name} is negative: {x}"
    if "product" in row and row["product"] != row["a"] * row["b"]:  # type: ignore[operator]
        return f"product {row['product']!r:.40} is not a * b"
    return None


def space(params: dict) -> list[Problem] | None:
    """Every problem of that size, when small enough to list (up to 5 digits in all); else None."""
    return all_problems(**params) if params["digits_a"] + params["digits_b"] <= 5 else None


def row_from_key(key: Problem, rng: random.Random) -> dict:
    a, b = key
    return {"a": a, "b": b, "product": a * b}


def leak_keys(rows: Iterable[Row]) -> set[Problem]:
    # a x b and b x a are different prompts but the same fact: keep both out of train.
    rows = list(rows)
    return {(r["a"], r["b"]) for r in rows} | {(r["b"], r["a"]) for r in rows}  # type: ignore[misc]


TASK = Task(
    name="multiplication",
    columns=("a", "b"),
    reward=multiplication_reward,
    _prompt=prompt,
    _grade=grade,
    _key=problem_key,
    _reference=lambda row: str(row["a"] * row["b"]),  # type: ignore[operator]
    _validate=validate,
    generate=generate,
    space=space,
    row_from_key=row_from_key,
    leak_keys=leak_keys,
    exclusion="no train problem equals a test problem a x b or its commuted form b x a",
)


if __name__ == "__main__":
    for row in generate(5, seed=1):
        completion = f"...</think> <answer>{row['product']:,}</answer>"
        print(row, grade(completion, row["a"], row["b"]).reason)
