"""Tests for tinyzero.grader: completion text, tags, safe arithmetic. Run: pytest tests/test_grader.py"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero.tasks.grading import (
    MAX_EXPR_CHARS,
    calculate,
    completion_text,
    extract_answer,
    is_well_formed,
    number_problems,
    thinking_text,
)
from tinyzero.tasks.prompts import base_prompt, chat_prompt

# --- completion_text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "hi"}], "hi"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a"),
        ([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}], "a\nb"),
        ([{"role": "assistant", "content": [{"type": "text", "text": "parts"}]}], "parts"),
        ({"role": "assistant", "content": "one message"}, "one message"),
        ([{"content": "no role"}], "no role"),
        (None, ""),
        (42, ""),
        ([None, 3, "x"], ""),
        ([{"role": "assistant", "content": None}], ""),
        ([{"role": "assistant", "content": [None, {"text": 5}]}], ""),
        (b"<answer>1</answer>", ""),
    ],
)
def test_completion_text(completion, expected):
    assert completion_text(completion) == expected


# --- tags -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>1 + 2</answer>", "1 + 2"),
        ("x <answer> 1 </answer> y", " 1 "),
        ("<answer>1</answer> then <answer>2</answer>", "2"),  # last block wins: earlier = drafts
        ("<answer>1</answer><answer>2</answer><answer>3", "2"),  # unclosed final block ignored
        ("<answer>a<answer>b</answer>", "b"),  # a later open restarts the block
        ("<answer>1</answer> junk </answer>", "1"),  # stray close ignored
        ("<answer></answer>", ""),
        ("no tags", None),
        ("<answer>unclosed", None),
        ("</answer>reversed<answer>", None),
        ("<ANSWER>1</ANSWER>", None),  # tags are exact
        ("", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def extract_answer_reference(text: str) -> str | None:
    """The documented rule, written as the obvious tag-by-tag scan."""
    import re

    open_end, last = -1, None
    for m in re.finditer(r"</?answer>", text):
        if m.group() == "<answer>":
            open_end = m.end()
        elif open_end >= 0:
            last, open_end = text[open_end : m.start()], -1
    return last


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["<answer>", "</answer>", "x", "1", " ", "<", ">", "answer"]), max_size=20))
def test_extract_answer_matches_reference(parts):
    text = "".join(parts)
    assert extract_answer(text) == extract_answer_reference(text)


def test_extract_answer_not_text():
    assert extract_answer(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("reasoning here</think><answer>1</answer>", "reasoning here"),
        ("<think>chat style</think>\n<answer>1</answer>", "chat style"),
        ("  <think> spaced </think>", "spaced"),
        ("no close yet <answer>1</answer>", "no close yet"),
        ("just thinking", "just thinking"),
        ("a</think>b</think>", "a"),
        ("", ""),
    ],
)
def test_thinking_text(text, expected):
    assert thinking_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Let me see. 1 + 2 = 3.</think>\n<answer>(1 + 2) * 3</answer>",
        "<think>chat style</think><answer>9</answer>",
        "  \n<think>x</think>  <answer> 9 </answer>\n\n",
        "</think><answer>9</answer>",  # empty reasoning is still the right layout
    ],
)
def test_well_formed(text):
    assert is_well_formed(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<answer>9</answer>",  # no </think>
        "thinking only</think>",
        "a</think>b</think><answer>9</answer>",  # two </think>
        "a</think><answer>9</answer><answer>8</answer>",  # two answers
        "a</think>so: <answer>9</answer>",  # text between think and answer
        "a</think><answer>9</answer> trailing",
        "a</think><answer>   </answer>",  # blank answer
        "a</think><answer>9",  # unclosed
        "a</think><answer>9</think></answer>",
        "<think><think>a</think><answer>9</answer>",  # second <think>
        "a<think></think><answer>9</answer>",
        "<answer>9</answer></think>",  # answer before </think>
        "a</think></answer><answer>",
    ],
)
def test_not_well_formed(text):
    assert not is_well_formed(text)


def is_well_formed_reference(text: str) -> bool:
    """The documented rule, written with counts."""
    body = text.lstrip()
    body = body[len("<think>") :] if body.startswith("<think>") else body
    if "<think>" in body or any(body.count(t) != 1 for t in ("</think>", "<answer>", "</answer>")):
        return False
    i, j, k = body.index("</think>"), body.index("<answer>"), body.index("</answer>")
    return i < j < k and not body[i + 8 : j].strip() and not body[k + 9 :].strip() and bool(body[j + 8 : k].strip())


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "x", " ", "\n", "<"]), max_size=9))
def test_is_well_formed_matches_reference(parts):
    text = "".join(parts)
    assert is_well_formed(text) == is_well_formed_reference(text)


def test_tag_functions_reject_non_text():
    assert thinking_text(None) == ""  # type: ignore[arg-type]
    assert is_well_formed(None) is False  # type: ignore[arg-type]


# --- calculate --------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, value, numbers",
    [
        ("1 + 2", 3, (1, 2)),
        ("(1 + 2) * 3 / 9", 1, (1, 2, 3, 9)),
        ("1 / 49 * 49", 1, (1, 49, 49)),  # exact: floats would give 0.9999999999999999
        ("1 / 3 + 1 / 6", Fraction(1, 2), (1, 3, 1, 6)),
        ("2 - 5", -3, (2, 5)),  # negative values are fine; only unary minus is not
        ("((((7))))", 7, (7,)),
        ("((1 + 2) * (3 + (4 - 5)))", 6, (1, 2, 3, 4, 5)),
        ("  \n 1 +\n 2 \t", 3, (1, 2)),  # layout whitespace, even newlines, is fine
        ("0", 0, (0,)),
        ("99999999 * 99999999", 99999999**2, (99999999, 99999999)),
    ],
)
def test_evaluate_ok(expr, value, numbers):
    result = calculate(expr)
    assert result.ok and result.parsed and result.error is None
    assert result.value == value and isinstance(result.value, Fraction)
    assert result.numbers == numbers


@pytest.mark.parametrize(
    "expr, error",
    [
        ("2.0 + 1", "not an integer literal: 2.0"),
        ("1e2", "not an integer literal: 1e2"),
        ("1_000", "not an integer literal: 1_000"),
        ("0x10", "not an integer literal: 0x10"),
        ("0b1", "not an integer literal: 0b1"),
        ("3j", "not an integer literal: 3j"),
        ("True + 1", "not an integer literal: True"),
        ("'1'", "not an integer literal: '1'"),
        ("-3 + 5", "unary operator not allowed: USub"),
        ("+3", "unary operator not allowed: UAdd"),
        ("~3", "unary operator not allowed: Invert"),
        ("2 ** 3", "operator not allowed: Pow"),
        ("9**9**9", "operator not allowed: Pow"),
        ("7 // 2", "operator not allowed: FloorDiv"),
        ("7 % 2", "operator not allowed: Mod"),
        ("1 << 99", "operator not allowed: LShift"),
        ("__import__('os').system('true')", "not arithmetic: Call"),
        ("(lambda: 1)()", "not arithmetic: Call"),
        ("x + 1", "not arithmetic: Name"),
        ("(1).real", "not arithmetic: Attribute"),
        ("[1, 2][0]", "not arithmetic: Subscript"),
        ("1 if 1 else 2", "not arithmetic: IfExp"),
        ("1 < 2", "not arithmetic: Compare"),
        ("(1, 2)", "not arithmetic: Tuple"),
        ("(x := 5)", "not arithmetic: NamedExpr"),
        ("f'{1}'", "not arithmetic: JoinedStr"),
        ("1 + 2 = 3", "not an expression: contains '='"),
        ("1 +", "not an expression: invalid syntax"),
        ("007", None),  # leading zeros: a SyntaxError in Python 3
        ("", "empty answer"),
        ("   \n ", "empty answer"),
        ("1\x00", None),
        ("import os", None),
        ("1; 2", None),
        ("'\\d'", None),  # an invalid escape makes the tokenizer warn: must stay silent
        ("\ud800", None),  # a lone surrogate cannot even be encoded for the parser
        ("\ufeff1 + 2", None),
        ("１ + ２", None),  # full-width digits are not ASCII digits
    ],
)
def test_evaluate_rejects(expr, error, recwarn):
    result = calculate(expr)
    assert not result.parsed and result.value is None and result.numbers == ()
    assert result.error
    if error is not None:
        assert result.error == error
    assert not recwarn.list, [str(w.message) for w in recwarn.list]


def test_division_by_zero_is_a_result_not_an_exception():
    for expr in ("1 / 0", "5 / (3 - 3)", "1 / (1 / 2 - 1 / 2)"):
        result = calculate(expr)
        assert result.parsed and result.value is None and result.error == "division by zero"
    assert calculate("1 / (3 - 3)").numbers == (1, 3, 3)


@pytest.mark.parametrize(
    "expr, error_start",
    [
        ("1 + " * 100 + "1", "answer longer than"),
        ("1" * (MAX_EXPR_CHARS + 1), "answer longer than"),
        ("x" * 1_000_000, "answer longer than"),
        ("(" * 10_000 + "1" + ")" * 10_000, "answer longer than"),
        ("(" * 40 + "1" + ")" * 40, "more than 32 nested parentheses"),
        ("(" * 100 + "1", "more than 32 nested parentheses"),  # unbalanced: caught by the scan too
        ("1+" * 40 + "1", "more than 32 numbers"),
        ("99999999*" * 33 + "9", "more than 32 numbers"),
        ("99999999*" * 30 + "9", "value exceeds 512 bits"),
        ("1" * 200, "number exceeds 512 bits"),
    ],
)
def test_evaluate_caps(expr, error_start):
    result = calculate(expr)
    assert result.value is None and result.error.startswith(error_start), result


def test_evaluate_non_text():
    assert calculate(None).error == "not text"  # type: ignore[arg-type]
    assert calculate(12).error == "not text"  # type: ignore[arg-type]


def test_number_problems():
    assert number_problems([1, 2, 3], [3, 2, 1]) == []
    assert number_problems([7, 7, 3], [7, 3, 4]) == ["number 7 used twice", "number 4 not used"]
    assert number_problems([5, 1, 2], [1, 2]) == ["number 5 not given"]
    assert number_problems([7, 7, 7], [7, 7]) == ["number 7 used 3 times (given 2 times)"]
    assert number_problems([7], [7, 7]) == ["number 7 used 1 of 2 times"]


def test_prompt_framing():
    prompt = base_prompt("Q?")
    assert prompt.endswith("\nUser: Q?\nAssistant: Let me solve this step by step.\n<think>")
    messages = chat_prompt("Q?")
    assert [m["role"] for m in messages] == ["system", "user"] and messages[1]["content"] == "Q?"


# --- properties -----------------------------------------------------------------------------

ARITHMETIC = st.text(alphabet="0123456789+-*/() .e_xj", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), ARITHMETIC))
def test_evaluate_never_raises(expr):
    result = calculate(expr)
    assert (result.value is None) == (result.error is not None)
    if result.ok:
        assert result.parsed and all(isinstance(n, int) and n >= 0 for n in result.numbers)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_tag_functions_never_raise(text):
    completion_text(text)
    answer = extract_answer(text)
    assert answer is None or "</answer>" not in answer
    thinking_text(text)
    if is_well_formed(text):
        assert extract_answer(text) is not None


def test_huge_completions():
    # Tag soup and megabyte inputs (linear time: a backtracking regex would hang the suite here;
    # benchmarks/perf/fuzz_grader.py measures the rates).
    assert extract_answer("<answer>" * 200_000) is None
    assert extract_answer("</think>" * 100_000 + "<answer>1") is None
    assert extract_answer("a" * 1_000_000 + "<answer>7</answer>") == "7"
    assert thinking_text("a" * 1_000_000 + "</think>") == "a" * 1_000_000
    assert not is_well_formed("<think>" * 100_000)
