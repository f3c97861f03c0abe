"""The exercises in notebooks/exercises/: solutions pass their checks, blanks fail only there.

Every exercise is a pair ``NN_name.ipynb`` (a function body to fill) and
``NN_name_solution.ipynb``; both end with a check cell (tagged ``check``) that calls a checker
from ``notebooks/exercises/checks.py``. Here:

- each solution runs top to bottom and its check prints "All checks passed";
- each blank runs every cell before the check without error, and the check cell fails with
  AssertionError or NotImplementedError (so an untouched exercise cannot "pass");
- blank and solution differ only in the cell tagged ``exercise`` (and the word in the title);
- each checker rejects typical wrong answers with a message that names the mistake.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
from test_notebooks import execute_notebook, kernel_name  # noqa: E402, F401 (kernel_name is a fixture)

REPO = Path(__file__).resolve().parent.parent
EXERCISE_DIR = REPO / "notebooks" / "exercises"
SOLUTIONS = sorted(EXERCISE_DIR.glob("[0-9][0-9]_*_solution.ipynb"))
BLANKS = sorted(p for p in EXERCISE_DIR.glob("[0-9][0-9]_*.ipynb") if not p.stem.endswith("_solution"))


def solution_of(blank: Path) -> Path:
    return blank.with_name(f"{blank.stem}_solution.ipynb")


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def check_cell_index(nb) -> int:
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    return code[-1]


def test_at_least_five_complete_pairs():
    assert len(BLANKS) >= 5, [p.name for p in BLANKS]
    assert sorted(solution_of(p) for p in BLANKS) == SOLUTIONS, "every exercise needs exactly one solution and back"


@pytest.mark.parametrize("path", BLANKS + SOLUTIONS, ids=lambda p: p.name)
def test_notebook_ends_with_a_check_cell(path):
    nb = nbformat.read(path, as_version=4)
    cell = nb.cells[check_cell_index(nb)]
    assert "check" in tags(cell), f"{path.name}: the last code cell must be tagged 'check'"
    assert "from checks import check_" in cell.source, f"{path.name}: the check cell must use a checker from checks.py"
    assert sum("exercise" in tags(c) for c in nb.cells) == 1, f"{path.name}: exactly one cell tagged 'exercise'"


@pytest.mark.parametrize("blank", BLANKS, ids=lambda p: p.name)
def test_blank_and_solution_differ_only_in_the_exercise_cell(blank):
    a, b = nbformat.read(blank, as_version=4), nbformat.read(solution_of(blank), as_version=4)
    assert len(a.cells) == len(b.cells)
    for i, (x, y) in enumerate(zip(a.cells, b.cells)):
        if "exercise" in tags(x):
            assert "raise NotImplementedError" in x.source and "raise NotImplementedError" not in y.source
        elif i == 0:
            assert x.source.replace("(exercise)", "(solution)") == y.source
        else:
            assert x.source == y.source, f"cell {i} differs between {blank.name} and its solution"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_passes_its_check(path, kernel_name):
    nb = execute_notebook(path, kernel_name)  # raises on any failing cell
    out = "".join(o.get("text", "") for o in nb.cells[check_cell_index(nb)].outputs)
    assert "All checks passed" in out, out


@pytest.mark.parametrize("path", BLANKS, ids=lambda p: p.name)
def test_blank_fails_at_the_check_and_only_there(path, kernel_name):
    nb = execute_notebook(path, kernel_name, allow_errors=True)
    check = check_cell_index(nb)
    for i, cell in enumerate(nb.cells[:check]):
        if cell.cell_type == "code":
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{path.name}: cell {i} fails before the check: {errors[0].ename}: {errors[0].evalue}"
    errors = [o for o in nb.cells[check].outputs if o.output_type == "error"]
    assert errors, f"{path.name}: the untouched exercise passed its check"
    assert errors[0].ename in ("AssertionError", "NotImplementedError"), f"{errors[0].ename}: {errors[0].evalue}"


# --- The checkers catch typical mistakes (fast: no kernel) ---------------------------------------


@pytest.fixture(scope="module")
def checks():
    sys.path.insert(0, str(EXERCISE_DIR))
    try:
        yield importlib.import_module("checks")
    finally:
        sys.path.remove(str(EXERCISE_DIR))


def _countdown(expression, nums, target, *, strip=True, exact=True, allow_bool=False, use_eval=False):
    """A Countdown grader with switchable mistakes."""
    if use_eval:
        return eval(expression) == target  # noqa: S307 (the mistake being tested)
    try:
        tree = ast.parse(expression.strip() if strip else expression, mode="eval")
    except SyntaxError:
        return False
    ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
    used = []

    def value(node):
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.Constant) and (isinstance(node.value, int) if allow_bool else type(node.value) is int):
            used.append(node.value)
            return Fraction(node.value) if exact else float(node.value)
        raise ValueError

    try:
        result = value(tree.body)
    except (ValueError, ZeroDivisionError):
        return False
    return Counter(used) == Counter(nums) and result == target


def _advantages(torch, biased=False, batch_level=False, eps=1e-4):
    def fn(rewards, group_size, scale=True):
        grouped = rewards.view(-1, group_size) if not batch_level else rewards.view(1, -1)
        adv = grouped - grouped.mean(dim=1, keepdim=True)
        if scale:
            adv = adv / (grouped.std(dim=1, keepdim=True, unbiased=not biased) + eps)
        return adv.reshape(-1)

    return fn


def _surrogate(torch, use_max=False, symmetric=False, detach=False):
    def fn(logps, old_logps, advantages, eps_low=0.2, eps_high=0.2):
        ratio = torch.exp(logps - old_logps)
        if detach:
            ratio = ratio.detach()
        clipped = torch.clamp(ratio, 1 - eps_low, 1 + (eps_low if symmetric else eps_high))
        a = advantages.unsqueeze(1)
        pick = torch.max if use_max else torch.min
        return -pick(ratio * a, clipped * a)

    return fn


def test_checkers_accept_correct_answers(checks):
    import torch

    checks.check_countdown_grader(_countdown)
    checks.check_group_advantages(_advantages(torch))
    checks.check_clipped_surrogate(_surrogate(torch))
    checks.check_k3_kl(lambda lp, ref: torch.exp(ref - lp) - (ref - lp) - 1)
    checks.check_concise_reward(checks.reference_concise_reward)


@pytest.mark.parametrize(
    "mistake, message",
    [
        (dict(strip=False), "strip"),
        (dict(exact=False), "Fraction"),
        (dict(allow_bool=True), "bool"),
        (dict(use_eval=True), "eval"),
    ],
)
def test_countdown_checker_names_the_mistake(checks, mistake, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_countdown_grader(lambda e, n, t: _countdown(e, n, t, **mistake))


@pytest.mark.parametrize(
    "mistake, message",
    [(dict(biased=True), "biased std"), (dict(batch_level=True), "whole batch"), (dict(eps=0.0), "1e-4")],
)
def test_advantage_checker_names_the_mistake(checks, mistake, message):
    import torch

    with pytest.raises(AssertionError, match=message):
        checks.check_group_advantages(_advantages(torch, **mistake))


@pytest.mark.parametrize(
    "mistake, message",
    [(dict(use_max=True), "ratio is 1|max"), (dict(symmetric=True), "eps_high"), (dict(detach=True), "autograd")],
)
def test_surrogate_checker_names_the_mistake(checks, mistake, message):
    import torch

    with pytest.raises(AssertionError, match=message):
        checks.check_clipped_surrogate(_surrogate(torch, **mistake))


@pytest.mark.parametrize(
    "estimator, message",
    [
        (lambda lp, ref: lp - ref, "never negative"),  # k1
        (lambda lp, ref: (lp - ref).exp() - (lp - ref) - 1, "upside down"),
        (lambda lp, ref: 0.5 * (lp - ref) ** 2, "unbiased"),  # k2
    ],
)
def test_k3_checker_names_the_mistake(checks, estimator, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_k3_kl(estimator)


def test_reward_checker_names_the_mistakes(checks):
    from tinyzero.tasks import countdown
    from tinyzero.tasks import grading

    def no_kwargs(completions, nums, target, max_thinking=50):
        return checks.reference_concise_reward(completions, nums, target, max_thinking)

    def strings_only(completions, nums, target, max_thinking=50, **kwargs):
        return [
            0.0 if not countdown.grade(c, n, t).correct else 1.0 if len(grading.thinking_text(c)) <= max_thinking else 0.5
            for c, n, t in zip(completions, nums, target)
        ]

    with pytest.raises(AssertionError, match="kwargs"):
        checks.check_concise_reward(no_kwargs)
    with pytest.raises(AssertionError, match="message lists"):
        checks.check_concise_reward(strings_only)


def test_addition_checker_rejects_a_grader_that_raises(checks):
    from tinyzero.tasks import Task

    def fragile(completion, a, b):
        completion.strip()  # AttributeError on None, numbers and message lists
        return checks.reference_addition_grade(completion, a, b)

    task = Task(
        name="addition",
        columns=("a", "b"),
        reward=lambda c, a, b, **k: [0.0] * len(c),
        _prompt=None,
        _grade=fragile,
        _key=None,
        _reference=None,
        _validate=None,
        generate=None,
        space=None,
        row_from_key=None,
        leak_keys=None,
        exclusion="",
    )
    with pytest.raises(AssertionError, match="never raises"):
        checks.check_addition_task(task)
