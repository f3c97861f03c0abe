"""The Countdown task (TinyZero's main task): reach a target from given numbers.

Each problem is a list of numbers and a target; an answer is an arithmetic expression over
``+ - * /`` and parentheses that uses every given number exactly once and equals the target
exactly (fractions and negative intermediate values are allowed, as in TinyZero).

- ``solve(nums, target)``: exhaustive solver, returns a reference expression or None.
- ``generate(n, ...)``: seeded, solvable, distinct problems with reference solutions.
- ``all_problems(...)``: every distinct solvable problem of a small space (for nano data).
- ``prompt(nums, target, template)``: "base", "chat" or "nano" prompt.
- ``grade(completion, nums, target)``: the one definition of a correct answer.
- ``answer_reward``: the TRL reward function, ``score`` of ``grade``.
- ``TASK``: all of it as a ``tinyzero.tasks.Task`` (with the data rules ``data/prepare.py`` uses).

Try it::

    python -m tinyzero.tasks.countdown           # prints a few generated problems and grades them
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from functools import lru_cache

from tinyzero.tasks.base import Row, Task, is_int
from tinyzero.tasks.grading import (
    Verdict,
    calculate,
    completion_text,
    extract_answer,
    failed,
    is_well_formed,
    number_problems,
)
from tinyzero.tasks.prompts import base_prompt, chat_prompt
from tinyzero.tasks.rewards import check_lengths, score

Number = int | Fraction
Problem = tuple[tuple[int, ...], int]  # (sorted nums, target): what makes two problems equal


def problem_key(nums: Iterable[int], target: int) -> Problem:
    """Problems are equal when their number multisets and targets are: order is presentation."""
    return tuple(sorted(int(n) for n in nums)), int(target)


# --- solver -----------------------------------------------------------------------------


def _normal(v: Number) -> Number:
    # Integers stay Python ints (much faster than Fraction); Fraction(4, 2) becomes 2.
    return v.numerator if type(v) is Fraction and v.denominator == 1 else v


def _divide(a: Number, b: Number) -> Number:
    if type(a) is int and type(b) is int:
        return a // b if a % b == 0 else Fraction(a, b)
    return _normal(Fraction(a) / b)


def _wrap(expr: str) -> str:
    return expr if expr.isdigit() else f"({expr})"


def _splits(mask: int) -> Iterator[tuple[int, int]]:
    """Each split of a subset into two non-empty parts once (the lowest bit's part first)."""
    low = mask & -mask
    sub = (mask - 1) & mask
    while sub:
        if sub & low:
            yield sub, mask ^ sub
        sub = (sub - 1) & mask


@lru_cache(maxsize=64)
def _tables(nums: tuple[int, ...]) -> dict[int, dict[Number, str]]:
    """For every PROPER subset of ``nums`` (a bitmask), every value an expression using each
    of its numbers exactly once can take -> one such expression. Dynamic programming: a
    subset's values combine the values of its two parts with the six ordered operations,
    which covers every binary expression tree. The full set is left to the callers, which
    only need integer targets and so can do its (largest) level much faster."""
    n = len(nums)
    table: dict[int, dict[Number, str]] = {1 << i: {x: str(x)} for i, x in enumerate(nums)}
    for mask in sorted(range(1, (1 << n) - 1), key=int.bit_count):
        if mask in table:
            continue
        out: dict[Number, str] = {}
        for left, right in _splits(mask):
            for a, ea in table[left].items():
                wa = _wrap(ea)
                for b, eb in table[right].items():
                    wb = _wrap(eb)
                    out.setdefault(_normal(a + b), f"{wa} + {wb}")
                    out.setdefault(_normal(a * b), f"{wa} * {wb}")
                    out.setdefault(_normal(a - b), f"{wa} - {wb}")
                    out.setdefault(_normal(b - a), f"{wb} - {wa}")
                    if b:
                        out.setdefault(_divide(a, b), f"{wa} / {wb}")
                    if a:
                        out.setdefault(_divide(b, a), f"{wb} / {wa}")
        table[mask] = out
    return table


def _final_splits(nums: tuple[int, ...]) -> list[tuple[dict[Number, str], dict[Number, str]]]:
    if len(nums) == 1:
        return []
    table = _tables(nums)
    return [(table[a], table[b]) for a, b in _splits((1 << len(nums)) - 1)]


def solve(nums: Sequence[int], target: int) -> str | None:
    """An expression using each of ``nums`` exactly once that equals ``target``, or None.

    Exhaustive over + - * / and every parenthesisation, with exact arithmetic; the returned
    string is accepted by ``grade``. Memoised on the sorted numbers, so repeated calls for the
    same numbers (e.g. different targets) are cheap. Meant for up to ~5 numbers.
    """
    nums_key, t = problem_key(nums, target)
    if len(nums_key) == 1:
        return str(t) if nums_key[0] == t else None
    for left, right in _final_splits(nums_key):
        # The last operation a ? b = t, solved for b, then looked up: linear in len(left).
        for a, ea in left.items():
            wanted = [(t - a, "{a} + {b}"), (a - t, "{a} - {b}"), (a + t, "{b} - {a}")]
            if a:
                wanted += [(Fraction(t) / a, "{a} * {b}"), (a * t, "{b} / {a}")]
            if t:
                wanted.append((Fraction(a) / t, "{a} / {b}"))
            elif not a:  # 0 * b == 0 for any b
                wanted += [(b, "{a} * {b}") for b in list(right)[:1]]
            for b, pattern in wanted:
                eb = right.get(b)
                if eb is not None and not (pattern == "{a} / {b}" and b == 0):
                    return pattern.format(a=_wrap(ea), b=_wrap(eb))
    return None


def _split_kinds(values: Iterable[Number]) -> tuple[list[int], list[tuple[int, int]]]:
    ints: list[int] = []
    fracs: list[tuple[int, int]] = []
    for v in values:
        if type(v) is int:
            ints.append(v)
        else:
            fracs.append((v.numerator, v.denominator))
    return ints, fracs


def solvable_targets(nums: Sequence[int], target_range: tuple[int, int]) -> list[int]:
    """The targets in ``target_range`` (inclusive) that ``nums`` can reach, ascending."""
    lo, hi = target_range
    nums_key = problem_key(nums, 0)[0]
    if len(nums_key) == 1:
        return [t for t in nums_key if lo <= t <= hi]
    found: set[int] = set()
    for left, right in _final_splits(nums_key):
        # Only the last operation's INTEGER results matter, so everything below is integer
        # math on numerators/denominators (Fraction objects made this several times slower). With
        # a = p/q and b = r/s in lowest terms, a result x/y is an integer iff y divides x.
        l_int, l_frac = _split_kinds(left)
        r_int, r_frac = _split_kinds(right)
        for a in l_int:
            for b in r_int:
                found.update((a + b, a - b, b - a, a * b))
                if b and a % b == 0:
                    found.add(a // b)
                if a and b % a == 0:
                    found.add(b // a)
        # integer b with fractional a = p/q (q > 1): a +- b is never an integer, nor is a / b
        # (q cannot divide p); only a * b and b / a can be.
        for ints, fracs in ((l_int, r_frac), (r_int, l_frac)):
            for b in ints:
                for p, q in fracs:
                    if (p * b) % q == 0:
                        found.add(p * b // q)
                    if p and (b * q) % p == 0:
                        found.add(b * q // p)
        for p, q in l_frac:
            for r, s in r_frac:
                qs = q * s
                for x, y in ((p * s + r * q, qs), (p * s - r * q, qs), (r * q - p * s, qs),
                             (p * r, qs), (p * s, q * r), (r * q, s * p)):
                    if y and x % y == 0:
                        found.add(x // y)
    return sorted(t for t in found if lo <= t <= hi)


# --- problems ---------------------------------------------------------------------------


def _count_range(num_count: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(num_count, int):
        return num_count, num_count
    lo, hi = num_count
    return lo, hi


def generate(
    n: int,
    *,
    num_count: int | tuple[int, int] = (3, 4),
    num_range: tuple[int, int] = (1, 99),
    target_range: tuple[int, int] = (1, 100),
    seed: int = 0,
    exclude: Iterable[Problem] = (),
) -> list[dict]:
    """``n`` distinct solvable problems as rows ``{"nums", "target", "solution"}``.

    Sampling (all ranges inclusive, ``random.Random(seed)``, so deterministic): the number
    count is drawn uniformly from ``num_count``, each number uniformly from ``num_range``
    (repeats allowed) and the target uniformly from ``target_range``; draws whose target is
    unreachable are rejected, so problems are uniform over the solvable (nums, target) pairs
    of each count. Four numbers reach far more targets than three, so most accepted problems
    have four (about 79% with the defaults). The rejection is done in one step with the same
    distribution: accept the numbers with probability (#reachable targets / #targets), then
    pick one of the reachable targets. A problem equal (``problem_key``) to an earlier row or
    to one in ``exclude`` is redrawn. Raises ValueError if the space runs out.
    """
    lo_c, hi_c = _count_range(num_count)
    t_lo, t_hi = target_range
    rng = random.Random(seed)
    seen = set(exclude)
    rows: list[dict] = []
    max_draws = 200 * n + 10_000
    draws = 0
    while len(rows) < n:
        draws += 1
        if draws > max_draws:
            raise ValueError(
                f"found only {len(rows)} of {n} distinct solvable problems in {max_draws} "
                "draws; the space is too small (see all_problems)"
            )
        nums = [rng.randint(*num_range) for _ in range(rng.randint(lo_c, hi_c))]
        targets = solvable_targets(nums, target_range)
        if rng.random() >= len(targets) / (t_hi - t_lo + 1):
            continue
        target = rng.choice(targets)
        key = problem_key(nums, target)
        if key in seen:
            continue
        seen.add(key)
        rows.append({"nums": nums, "target": target, "solution": solve(nums, target)})
    return rows


def all_problems(
    *,
    num_count: int | tuple[int, int] = 3,
    num_range: tuple[int, int] = (1, 10),
    target_range: tuple[int, int] = (1, 50),
) -> list[Problem]:
    """Every distinct solvable problem of a (small) space, as sorted ``problem_key`` tuples."""
    lo_c, hi_c = _count_range(num_count)
    numbers = range(num_range[0], num_range[1] + 1)
    return [
        (nums, t)
        for count in range(lo_c, hi_c + 1)
        for nums in itertools.combinations_with_replacement(numbers, count)
        for t in solvable_targets(nums, target_range)
    ]


# --- prompts and grading ----------------------------------------------------------------


def _question(nums: Sequence[int], target: int) -> str:
    numbers = "[" + ", ".join(str(int(x)) for x in nums) + "]"
    return (
        f"Using the numbers {numbers}, create an equation that equals {int(target)}. You can "
        "use basic arithmetic operations (+, -, *, /) and each number can only be used once. "
        "Show your work in <think> </think> tags. And return the final answer in "
        "<answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>."
    )


def prompt(nums: Sequence[int], target: int, template: str = "base") -> str | list[dict[str, str]]:
    """The prompt for one problem.

    "base": TinyZero's base-model transcript, ending in "...step by step.\\n<think>".
    "chat": [system, user] messages for an instruct model's chat template.
    "nano": ``"Make {target} from {nums joined by spaces}.\\n<think>"``, exactly: the nano
        char-level model's tokenizer and pretraining corpus depend on this string.
    """
    if template == "base":
        return base_prompt(_question(nums, target))
    if template == "chat":
        return chat_prompt(_question(nums, target))
    if template == "nano":
        return f"Make {target} from {' '.join(map(str, nums))}.\n<think>"
    raise ValueError(f"unknown template {template!r}; expected 'base', 'chat' or 'nano'")


def grade(completion: object, nums: Sequence[int], target: int) -> Verdict:
    """Grade one completion. Correct iff the last answer block is an arithmetic expression
    (``calculate``'s whitelist) that uses each of ``nums`` exactly once and equals
    ``target`` exactly. Format (``is_well_formed``) is reported but not required. Never raises.
    """
    try:
        return _grade(completion_text(completion), nums, target)
    except Exception as e:  # noqa: BLE001 (a last line of defence for odd problem rows; bugs get tested)
        return Verdict(False, False, False, False, None, False, f"grader error: {type(e).__name__}")


def _grade(text: str, nums: Sequence[int], target: int) -> Verdict:
    answer = extract_answer(text)
    if answer is None:
        return failed("no answer block", text)
    result = calculate(answer)
    if not result.parsed:
        return failed(result.error or "not parsed", text, answer)
    problems = number_problems(result.numbers, nums)
    value = result.value
    correct = not problems and value is not None and value == target
    if problems:
        reason = "; ".join(problems)
    elif value is None:
        reason = result.error or "no value"
    elif correct:
        reason = "correct"
    else:
        reason = f"equals {value}, not {target}"
    return Verdict(
        has_answer=True,
        well_formed=is_well_formed(text),
        parsed=True,
        numbers_ok=not problems,
        value=value,
        correct=correct,
        reason=reason,
        answer=answer,
    )


# --- reward, data rules and the Task --------------------------------------------------


def answer_reward(completions, nums, target, **kwargs) -> list[float]:
    """Countdown: 1.0 correct, 0.1 answered but not correct, 0.0 no answer block."""
    check_lengths(completions, nums=nums, target=target)
    return [score(grade(c, n, t)) for c, n, t in zip(completions, nums, target)]


def validate(row: Row) -> str | None:
    nums, target = row["nums"], row["target"]
    if not isinstance(nums, (list, tuple)):
        return f"nums is not a list: {nums!r:.40}"
    if not nums:
        return "nums is empty"
    for i, x in enumerate(nums):
        if not is_int(x):
            return f"nums[{i}] is not an integer: {x!r:.40}"
        if x < 0:
            return f"nums[{i}] is negative: {x}"
    if not is_int(target):
        return f"target is not an integer: {target!r:.40}"
    if target <= 0:
        return f"target must be positive, got {target}"
    return None


def reference(row: Row) -> str | None:
    # Shipped rows carry a solution; a user's rows (e.g. Countdown-Tasks-3to4) do not.
    return row.get("solution") or solve(row["nums"], row["target"])  # type: ignore[arg-type]


def space(params: dict) -> list[Problem] | None:
    """Every distinct problem of a generator's space, when small enough to list; else None."""
    lo, hi = params["num_range"]
    counts = params["num_count"]
    if (hi - lo + 1) ** (counts if isinstance(counts, int) else counts[1]) > 10**6:
        return None
    return all_problems(**params)


def row_from_key(key: Problem, rng: random.Random) -> dict:
    nums, target = list(key[0]), key[1]
    rng.shuffle(nums)  # problem keys are sorted; a model should not rely on that
    return {"nums": nums, "target": target, "solution": solve(nums, target)}


def leak_keys(rows: Iterable[Row]) -> set[Problem]:
    return {problem_key(r["nums"], r["target"]) for r in rows}  # type: ignore[arg-type]


TASK = Task(
    name="countdown",
    columns=("nums", "target"),
    reward=answer_reward,
    _prompt=prompt,
    _grade=grade,
    _key=problem_key,
    _reference=reference,
    _validate=validate,
    generate=generate,
    space=space,
    row_from_key=row_from_key,
    leak_keys=leak_keys,
    exclusion="no train problem equals a test problem as (sorted nums, target)",
)


if __name__ == "__main__":
    for row in generate(5, seed=1):
        completion = f"...</think> <answer>{row['solution']}</answer>"
        print(row, grade(completion, row["nums"], row["target"]).reason)
