"""Tests for tinyzero.countdown: solver, generator, prompts, grading. Run: pytest tests/test_countdown.py"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero.tasks import countdown
from tinyzero.tasks.countdown import (
    all_problems,
    generate,
    grade,
    problem_key,
    prompt,
    solvable_targets,
    solve,
)


def brute_force_values(nums: list[int]) -> set[Fraction]:
    """An independent reference: repeatedly replace two numbers by a combination of them."""
    out: set[Fraction] = set()

    def rec(values: list[Fraction]) -> None:
        if len(values) == 1:
            out.add(values[0])
            return
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    rest = [v for k, v in enumerate(values) if k not in (i, j)]
                    for r in [a + b, a - b, a * b] + ([a / b] if b else []):
                        rec(rest + [r])

    rec([Fraction(n) for n in nums])
    return out


# --- solver ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nums, target",
    [([3, 3, 8, 8], 24), ([1, 5, 5, 5], 24), ([44, 19, 35], 98), ([7], 7), ([2, 3], 6), ([2, 2], 0), ([0, 5], 0)],
)
def test_solve_finds_hard_solutions(nums, target):
    expr = solve(nums, target)
    assert expr is not None
    assert grade(f"<answer>{expr}</answer>", nums, target).correct


@pytest.mark.parametrize("nums, target", [([1, 1, 1], 100), ([7], 8), ([], 1), ([2, 2], 5)])
def test_solve_none_when_unsolvable(nums, target):
    assert solve(nums, target) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 30) | st.sampled_from([1, 2, 3, 7, 50, 99]), min_size=1, max_size=4),
    st.integers(-50, 120),
)
def test_solver_matches_brute_force(nums, target):
    values = brute_force_values(nums)
    expr = solve(nums, target)
    assert (expr is not None) == (Fraction(target) in values)
    if expr is not None:
        assert grade(f"<answer>{expr}</answer>", nums, target).correct
    expected = sorted(int(v) for v in values if v.denominator == 1 and -50 <= v <= 120)
    assert solvable_targets(nums, (-50, 120)) == expected


def test_solve_searches_the_whole_space_of_four_numbers():
    for nums in ([97, 89, 83, 79], [1, 2, 3, 4], [50, 25, 75, 10]):
        countdown._tables.cache_clear()
        assert solve(nums, 1_000_003) is None  # unreachable: the whole space is searched
    assert solve([97, 89, 83, 79], 97 * 89 - 83 - 79) is not None


# --- generator ------------------------------------------------------------------------------


def test_generate_rows_are_solvable_distinct_and_seeded():
    rows = generate(40, seed=3)
    assert rows == generate(40, seed=3)
    assert rows != generate(40, seed=4)
    keys = [problem_key(r["nums"], r["target"]) for r in rows]
    assert len(set(keys)) == len(keys)
    for r in rows:
        assert set(r) == {"nums", "target", "solution"}
        assert 3 <= len(r["nums"]) <= 4 and all(1 <= n <= 99 for n in r["nums"])
        assert 1 <= r["target"] <= 100
        assert grade(f"<answer>{r['solution']}</answer>", r["nums"], r["target"]).correct


def test_generate_parameters_and_exclude():
    rows = generate(30, num_count=3, num_range=(1, 10), target_range=(1, 50), seed=0)
    assert all(len(r["nums"]) == 3 and max(r["nums"]) <= 10 and r["target"] <= 50 for r in rows)
    excluded = {problem_key(r["nums"], r["target"]) for r in rows[:10]}
    again = generate(30, num_count=3, num_range=(1, 10), target_range=(1, 50), seed=0, exclude=excluded)
    assert not excluded & {problem_key(r["nums"], r["target"]) for r in again}


def test_generate_raises_when_space_runs_out():
    # Two 1s reach exactly the targets 1 and 2.
    assert len(generate(2, num_count=2, num_range=(1, 1), target_range=(1, 10), seed=0)) == 2
    with pytest.raises(ValueError, match="distinct solvable problems"):
        generate(3, num_count=2, num_range=(1, 1), target_range=(1, 10), seed=0)


def test_all_problems_small_space():
    problems = all_problems(num_count=2, num_range=(1, 2), target_range=(1, 10))
    # {1,1}: 1 2 ; {1,2}: 1 2 3 ; {2,2}: 1 4
    assert problems == [((1, 1), 1), ((1, 1), 2), ((1, 2), 1), ((1, 2), 2), ((1, 2), 3), ((2, 2), 1), ((2, 2), 4)]


# --- prompts --------------------------------------------------------------------------------


def test_prompt_templates():
    base = prompt([44, 19, 35], 98)
    assert "Using the numbers [44, 19, 35], create an equation that equals 98." in base
    assert base.startswith("A conversation between User and Assistant.")
    assert base.endswith("Assistant: Let me solve this step by step.\n<think>")
    chat = prompt([44, 19, 35], 98, "chat")
    assert [m["role"] for m in chat] == ["system", "user"]
    assert "[44, 19, 35]" in chat[1]["content"] and "<answer>" in chat[1]["content"]
    # Exact: the nano tokenizer and pretraining corpus depend on this string.
    assert prompt([3, 5, 7], 22, "nano") == "Make 22 from 3 5 7.\n<think>"
    with pytest.raises(ValueError, match="unknown template"):
        prompt([1], 1, "other")


# --- grading --------------------------------------------------------------------------------

NUMS, TARGET = [44, 19, 35], 98  # 44 + 19 + 35


@pytest.mark.parametrize(
    "completion, correct, reason",
    [
        ("ok</think>\n<answer>44 + 19 + 35</answer>", True, "correct"),
        ("<answer>  \n 35 +\n (19 + 44)  </answer>", True, "correct"),  # layout whitespace
        ("<answer>((44) + ((19) + (35)))</answer>", True, "correct"),  # nested parentheses
        ("<answer>(44 + 19 + 35) * 1</answer>", False, "number 1 not given"),
        ("<answer>44 + 44 + 35</answer>", False, "number 44 used twice; number 19 not used"),
        ("<answer>44 + 19</answer>", False, "number 35 not used"),
        ("<answer>44 + 19 + 36</answer>", False, "number 36 not given; number 35 not used"),
        ("<answer>44 + 19 - 35</answer>", False, "equals 28, not 98"),
        # The number rule is reported before the division by zero it hides.
        ("<answer>44 / (19 - 19) + 35</answer>", False, "number 19 used twice"),
        ("<answer>44.0 + 19 + 35</answer>", False, "not an integer literal: 44.0"),
        ("<answer>44 + 19 + 35e0</answer>", False, "not an integer literal: 35e0"),
        ("<answer>__import__('os').system('echo hi')</answer>", False, "not arithmetic: Call"),
        ("<answer>(lambda: 98)()</answer>", False, "not arithmetic: Call"),
        ("<answer>target</answer>", False, "not arithmetic: Name"),
        ("<answer>(44).__add__(54)</answer>", False, "not arithmetic: Call"),
        ("<answer>44 + 19 + 35 = 98</answer>", False, "not an expression: contains '='"),
        ("<answer>-44 + 19 + 35</answer>", False, "unary operator not allowed: USub"),
        ("<answer>98</answer>", False, "number 98 not given; number 44 not used; number 19 not used; number 35 not used"),
        ("<answer></answer>", False, "empty answer"),
        ("<answer>44 + 19 + 35", False, "no answer block"),
        ("44 + 19 + 35", False, "no answer block"),
        ("", False, "no answer block"),
        ("<answer>1</answer> on second thought <answer>44 + 19 + 35</answer>", True, "correct"),
        ("<answer>44 + 19 + 35</answer> oops <answer>1</answer>", False, "number 1 not given; number 44 not used; number 19 not used; number 35 not used"),
        ("<answer>" + "(" * 10_000 + "1" + ")" * 10_000 + "</answer>", False, "answer longer than 300 characters"),
        ("<answer>" + "9" * 1_000_000 + "</answer>", False, "answer longer than 300 characters"),
        ([{"role": "assistant", "content": "<think>x</think><answer>44+19+35</answer>"}], True, "correct"),
        (None, False, "no answer block"),
        (12345, False, "no answer block"),
    ],
)
def test_grade_table(completion, correct, reason):
    verdict = grade(completion, NUMS, TARGET)
    assert verdict.correct is correct
    if reason is not None:
        assert verdict.reason == reason


def test_division_by_zero_is_graded():
    verdict = grade("<answer>(44 + 19 + 35) / (35 - 35)</answer>", [44, 19, 35, 35, 35], TARGET)
    assert verdict.parsed and verdict.numbers_ok and verdict.value is None
    assert verdict.reason == "division by zero" and not verdict.correct


def test_verdict_fields():
    v = grade("r</think><answer>44 + 19 + 35</answer>", NUMS, TARGET)
    assert (v.has_answer, v.well_formed, v.parsed, v.numbers_ok, v.value, v.correct) == (
        True, True, True, True, Fraction(98), True,
    )
    assert v.answer == "44 + 19 + 35"
    v = grade("<answer>44 + 19 + 19</answer>", NUMS, TARGET)
    assert (v.has_answer, v.well_formed, v.parsed, v.numbers_ok, v.value) == (True, False, True, False, Fraction(82))
    v = grade("nothing", NUMS, TARGET)
    assert (v.has_answer, v.parsed, v.value, v.answer) == (False, False, None, None)


def test_exact_fraction_answers():
    # 1 / 49 * 49 is 0.9999999999999999 in floats; the grader must call it exactly 1.
    assert grade("<answer>1 / 49 * 49</answer>", [1, 49, 49], 1).correct
    assert grade("<answer>8 / (3 - 8 / 3)</answer>", [3, 3, 8, 8], 24).correct


def test_duplicate_given_numbers():
    assert grade("<answer>7 * 7 - 1</answer>", [7, 1, 7], 48).correct
    assert grade("<answer>7 * 7 * 7 - 1</answer>", [7, 1, 7], 342).reason == "number 7 used 3 times (given 2 times)"


@pytest.mark.parametrize("nums, target", [(None, 5), ([1, "x"], 5), (5, 5), ([1, 2], None), ([1, 2], "3")])
def test_grade_never_raises_on_odd_problems(nums, target):
    verdict = grade("<answer>1 + 2</answer>", nums, target)
    assert verdict.correct is False


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([3, 4, (3, 4)]))
def test_generated_solutions_grade_correct(seed, num_count):
    for row in generate(2, num_count=num_count, seed=seed):
        verdict = grade(f"...</think><answer>{row['solution']}</answer>", row["nums"], row["target"])
        assert verdict.correct and verdict.well_formed


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.text(alphabet="0123456789+-*/() <>answer/", max_size=80)))
def test_grade_never_raises(text):
    for completion in (text, f"<answer>{text}</answer>", f"</think><answer>{text}</answer>",
                       [{"role": "assistant", "content": text}]):
        verdict = grade(completion, [1, 2, 3, 4], 10)
        assert isinstance(verdict.reason, str) and verdict.reason
        assert not verdict.correct or verdict.value == 10
