"""Tests for tinyzero.multiplication. Run: pytest tests/test_multiplication.py"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero.tasks.multiplication import (
    all_problems,
    generate,
    grade,
    parse_integer,
    prompt,
)


def test_generate_rows():
    rows = generate(50, seed=1)
    assert rows == generate(50, seed=1) and rows != generate(50, seed=2)
    assert len({(r["a"], r["b"]) for r in rows}) == 50
    for r in rows:
        assert set(r) == {"a", "b", "product"}
        assert 10 <= r["a"] <= 99 and 10 <= r["b"] <= 99 and r["product"] == r["a"] * r["b"]
    wide = generate(20, digits_a=3, digits_b=1, seed=0)
    assert all(100 <= r["a"] <= 999 and 0 <= r["b"] <= 9 for r in wide)


def test_generate_exclude_and_exhaustion():
    rows = generate(10, digits_a=1, digits_b=1, seed=0, exclude={(1, 1)})
    assert (1, 1) not in {(r["a"], r["b"]) for r in rows}
    assert len(generate(99, digits_a=1, digits_b=1, seed=0, exclude={(1, 1)})) == 99
    with pytest.raises(ValueError, match="only 99"):
        generate(100, digits_a=1, digits_b=1, seed=0, exclude={(1, 1)})
    assert len(all_problems()) == 90 * 90


def test_prompt_templates():
    base = prompt(12, 34)
    assert "Calculate 12 * 34." in base and base.endswith("Let me solve this step by step.\n<think>")
    chat = prompt(12, 34, "chat")
    assert [m["role"] for m in chat] == ["system", "user"] and "12 * 34" in chat[1]["content"]
    assert prompt(12, 34, "nano") == "Multiply 12 by 34.\n<think>"  # exact, see the docstring
    with pytest.raises(ValueError):
        prompt(1, 2, "nope")


@pytest.mark.parametrize(
    "answer, value",
    [
        ("408", 408),
        ("  408\n", 408),
        ("1,234", 1234),
        ("1,234,567", 1234567),
        ("-5", -5),
        ("0408", 408),
        ("408.0", None),
        ("4.08e2", None),
        ("12,34", None),  # commas only as thousands separators
        ("1,2345", None),
        (",123", None),
        ("12 * 34", None),
        ("four hundred", None),
        ("408 apples", None),
        ("", None),
        ("+408", None),
        ("٤٠٨", None),  # other scripts' digits are not ASCII digits
        ("4_08", None),
        ("9" * 65, None),  # length cap
    ],
)
def test_parse_integer(answer, value):
    assert parse_integer(answer) == value


@pytest.mark.parametrize(
    "completion, correct, reason",
    [
        ("12*34 = 408</think><answer>408</answer>", True, "correct"),
        ("<answer> 408 </answer>", True, "correct"),
        ("<answer>\n408\n</answer>", True, "correct"),
        ("<answer>407</answer>", False, "equals 407, not 408"),
        ("<answer>408.0</answer>", False, "not an integer: '408.0'"),
        ("<answer>12 * 34</answer>", False, "not an integer: '12 * 34'"),
        ("<answer>__import__('os')</answer>", False, "not an integer: \"__import__('os')\""),
        ("<answer></answer>", False, "not an integer: ''"),
        ("<answer>400</answer> wait <answer>408</answer>", True, "correct"),  # last block wins
        ("<answer>408</answer> wait <answer>400</answer>", False, "equals 400, not 408"),
        ("<answer>408", False, "no answer block"),
        ("408", False, "no answer block"),
        ("<answer>" + "9" * 1_000_000 + "</answer>", False, None),
        ([{"role": "assistant", "content": "<think>x</think><answer>408</answer>"}], True, "correct"),
        (None, False, "no answer block"),
    ],
)
def test_grade_table(completion, correct, reason):
    verdict = grade(completion, 12, 34)
    assert verdict.correct is correct
    if reason is not None:
        assert verdict.reason == reason


def test_verdict_fields():
    v = grade("x</think><answer>1,584</answer>", 66, 24)
    assert (v.has_answer, v.well_formed, v.parsed, v.numbers_ok, v.value, v.correct) == (
        True, True, True, True, Fraction(1584), True,
    )
    v = grade("<answer>oops</answer>", 66, 24)
    assert (v.has_answer, v.parsed, v.numbers_ok, v.value, v.correct) == (True, False, False, None, False)


@pytest.mark.parametrize("a, b", [(None, 2), ("x", 2), ([1], 2)])
def test_grade_never_raises_on_odd_problems(a, b):
    assert grade("<answer>2</answer>", a, b).correct is False


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_exact_product_is_correct(a, b):
    assert grade(f"</think><answer>{a * b}</answer>", a, b).correct
    assert grade(f"</think><answer>{a * b:,}</answer>", a, b).correct
    assert not grade(f"</think><answer>{a * b + 1}</answer>", a, b).correct


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_grade_never_raises(text):
    for completion in (text, f"<answer>{text}</answer>", [{"role": "assistant", "content": text}]):
        assert isinstance(grade(completion, 12, 34).reason, str)
