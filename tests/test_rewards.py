"""Tests for tinyzero.rewards (TRL's reward contract) and the tinyzero.tasks registry.

Run: pytest tests/test_rewards.py
"""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero.tasks import TASKS, detect_task
from tinyzero.tasks.countdown import answer_reward
from tinyzero.tasks.grading import Verdict
from tinyzero.tasks.multiplication import multiplication_reward
from tinyzero.tasks.rewards import format_reward, score

GOOD = "44 + 19 + 35 = 98.</think>\n<answer>44 + 19 + 35</answer>"


def test_answer_reward_tinyzero_scheme():
    completions = [
        GOOD,  # correct and well formed
        "<answer>(44 + 19) + 35</answer>",  # correct without the think layout: still 1.0
        "</think><answer>44 + 19 - 35</answer>",  # wrong value
        "</think><answer>44 + 44 + 10</answer>",  # breaks the number rule
        "</think><answer>import os</answer>",  # not arithmetic
        "</think><answer>44 / 0</answer>",
        "</think><answer>",  # unclosed: no answer block
        "I give up",
    ]
    n = len(completions)
    rewards = answer_reward(completions, nums=[[44, 19, 35]] * n, target=[98] * n)
    assert rewards == [1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.0, 0.0]
    assert all(type(r) is float for r in rewards)


def test_rewards_accept_message_lists_and_extra_columns():
    conversational = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "no"}]]
    extra = {"prompt": ["p", "p"], "task": ["countdown"] * 2, "solution": ["s", "s"], "trainer_state": None}
    assert answer_reward(conversational, nums=[[44, 19, 35]] * 2, target=[98, 98], **extra) == [1.0, 0.0]
    assert format_reward(conversational, **extra) == [1.0, 0.0]


def test_multiplication_reward():
    completions = ["x</think><answer>408</answer>", "<answer>409</answer>", "408", None]
    assert multiplication_reward(completions, a=[12] * 4, b=[34] * 4) == [1.0, 0.1, 0.0, 0.0]


def test_format_reward():
    completions = [GOOD, "<think>a</think><answer>1</answer>", "<answer>1</answer>", "a</think>b", "", None]
    assert format_reward(completions) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 completions but 1 values of 'target'"):
        answer_reward(["a", "b"], nums=[[1], [1]], target=[1])


@pytest.mark.parametrize("fn", [answer_reward, format_reward, multiplication_reward])
def test_trl_contract(fn):
    params = list(inspect.signature(fn).parameters.values())
    assert params[0].name == "completions"
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
    assert fn([], **{p.name: [] for p in params[1:-1]}) == []


def test_rewards_have_no_side_effects(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    answer_reward([GOOD] * 50, nums=[[44, 19, 35]] * 50, target=[98] * 50)
    format_reward([GOOD] * 50)
    multiplication_reward(["<answer>1</answer>"] * 50, a=[1] * 50, b=[1] * 50)
    assert capsys.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []


def test_score():
    base = dict(well_formed=False, parsed=False, numbers_ok=False, value=None, reason="r")
    assert score(Verdict(has_answer=True, correct=True, **base)) == 1.0
    assert score(Verdict(has_answer=True, correct=False, **base)) == 0.1
    assert score(Verdict(has_answer=False, correct=False, **base)) == 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=200), st.none(), st.integers()), max_size=5))
def test_rewards_never_raise(completions):
    n = len(completions)
    assert set(answer_reward(completions, nums=[[1, 2, 3]] * n, target=[6] * n)) <= {0.0, 0.1, 1.0}
    assert set(multiplication_reward(completions, a=[2] * n, b=[3] * n)) <= {0.0, 0.1, 1.0}
    assert set(format_reward(completions)) <= {0.0, 1.0}


# --- the registry ---------------------------------------------------------------------------


def test_registry_api():
    assert sorted(TASKS) == ["countdown", "multiplication"]
    cd, mul = TASKS["countdown"], TASKS["multiplication"]
    assert (cd.name, cd.columns, cd.reward) == ("countdown", ("nums", "target"), answer_reward)
    assert (mul.name, mul.columns, mul.reward) == ("multiplication", ("a", "b"), multiplication_reward)

    row = {"nums": [44, 19, 35], "target": 98, "solution": "44 + 19 + 35", "task": "countdown"}
    assert cd.prompt(row, "nano") == "Make 98 from 44 19 35.\n<think>"
    assert cd.prompt(row).endswith("<think>")
    assert cd.grade(GOOD, row).correct
    assert cd.key(row) == ((19, 35, 44), 98)
    assert cd.reference(row) == "44 + 19 + 35"
    assert cd.grade(f"<answer>{cd.reference({'nums': [3, 3, 8, 8], 'target': 24})}</answer>",
                    {"nums": [3, 3, 8, 8], "target": 24}).correct

    mrow = {"a": 12, "b": 34, "product": 408}
    assert mul.prompt(mrow, "nano") == "Multiply 12 by 34.\n<think>"
    assert mul.grade("<answer>408</answer>", mrow).correct
    assert mul.reference(mrow) == "408" and mul.key(mrow) == (12, 34)


def test_registry_reward_agrees_with_grade():
    row = {"nums": [1, 2, 3], "target": 6}
    completions = ["<answer>1 + 2 + 3</answer>", "<answer>1 * 2 * 3</answer>", "<answer>1</answer>", "x"]
    task = TASKS["countdown"]
    expected = [score(task.grade(c, row)) for c in completions]
    assert task.reward(completions, **{c: [row[c]] * 4 for c in task.columns}) == expected


@pytest.mark.parametrize(
    "task, row, problem",
    [
        ("countdown", {"nums": [1, 2], "target": 3}, None),
        ("countdown", {"target": 3}, "missing column 'nums'"),
        ("countdown", {"nums": "1 2", "target": 3}, "nums is not a list: '1 2'"),
        ("countdown", {"nums": [], "target": 3}, "nums is empty"),
        ("countdown", {"nums": [1, 2.5], "target": 3}, "nums[1] is not an integer: 2.5"),
        ("countdown", {"nums": [1, True], "target": 3}, "nums[1] is not an integer: True"),
        ("countdown", {"nums": [1, -2], "target": 3}, "nums[1] is negative: -2"),
        ("countdown", {"nums": [1, 2], "target": 0}, "target must be positive, got 0"),
        ("countdown", {"nums": [1, 2], "target": -3}, "target must be positive, got -3"),
        ("countdown", {"nums": [1, 2], "target": "3"}, "target is not an integer: '3'"),
        ("multiplication", {"a": 1, "b": 2}, None),
        ("multiplication", {"a": 1}, "missing column 'b'"),
        ("multiplication", {"a": 1.5, "b": 2}, "a is not an integer: 1.5"),
        ("multiplication", {"a": 1, "b": 2, "product": 3}, "product 3 is not a * b"),
    ],
)
def test_validate(task, row, problem):
    assert TASKS[task].validate(row) == problem


def test_detect_task():
    assert detect_task(["target", "nums"]) == "countdown"
    assert detect_task({"a", "b", "product"}) == "multiplication"
    assert detect_task(["question", "answer"]) is None
