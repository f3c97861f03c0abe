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
def test_solution_passes_its_check(path, kernel_name):  # noqa: F811 (the fixture imported above)
    nb = execute_notebook(path, kernel_name)  # raises on any failing cell
    out = "".join(o.get("text", "") for o in nb.cells[check_cell_index(nb)].outputs)
    assert "All checks passed" in out, out


@pytest.mark.parametrize("path", BLANKS, ids=lambda p: p.name)
def test_blank_fails_at_the_check_and_only_there(path, kernel_name):  # noqa: F811 (the fixture imported above)
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


def _zero_std_fraction(rewards, group_size):
    return (rewards.view(-1, group_size).std(dim=1) == 0).float().mean().item()


def _advantage_answers(checks):
    return {statement: truth for statement, (truth, _) in checks._advantage_facts().items()}


def _k3(torch):
    return lambda lp, ref: torch.exp(ref - lp) - (ref - lp) - 1


def _aggregate(torch, per_sequence_dapo=False, no_clamp=False):
    def fn(per_token_loss, mask, loss_type, max_completion_length):
        mask = mask.float()
        lengths = mask.sum(-1) if no_clamp else mask.sum(-1).clamp(min=1)
        if loss_type == "grpo" or (loss_type == "dapo" and per_sequence_dapo):
            return ((per_token_loss * mask).sum(-1) / lengths).mean()
        if loss_type == "dapo":
            return (per_token_loss * mask).sum() / mask.sum().clamp(min=1)
        return (per_token_loss * mask).sum() / (per_token_loss.shape[0] * max_completion_length)

    return fn


def _token_weights(torch, aggregate):
    def fn(mask, loss_type, max_completion_length):
        x = torch.zeros(mask.shape, requires_grad=True)
        return torch.autograd.grad(aggregate(x, mask, loss_type, max_completion_length), x)[0]

    return fn


def test_checkers_accept_correct_answers(checks):
    import torch

    checks.check_countdown_grader(_countdown)
    checks.check_group_advantages(_advantages(torch), _zero_std_fraction, _advantage_answers(checks))
    checks.check_clipped_surrogate(_surrogate(torch), checks.reference_gradient_signs())
    checks.check_k3_kl(_k3(torch), checks.reference_estimator_properties())
    checks.check_concise_reward(checks.reference_concise_reward)
    aggregate = _aggregate(torch)
    checks.check_loss_aggregation(aggregate, _token_weights(torch, aggregate), checks._aggregation_facts())


def test_the_answer_keys_are_what_the_formulas_give(checks):
    """The truths the checkers grade against are computed; here they are pinned to the algebra, so a
    change in the reference formulas that flips an answer fails loudly."""
    assert checks.reference_gradient_signs() == {
        ("A > 0", "ratio < 1 - eps"): -1, ("A > 0", "inside"): -1, ("A > 0", "ratio > 1 + eps"): 0,
        ("A < 0", "ratio < 1 - eps"): 0, ("A < 0", "inside"): 1, ("A < 0", "ratio > 1 + eps"): 1,
    }  # fmt: skip
    assert checks.reference_estimator_properties() == {
        "k1": {"unbiased": True, "never negative": False},
        "k2": {"unbiased": False, "never negative": True},
        "k3": {"unbiased": True, "never negative": True},
    }
    assert list(_advantage_answers(checks).values()) == [True, True, True, True, False, False]
    assert list(checks._aggregation_facts().values()) == [["grpo"], ["dapo"]]


def test_wrong_answers_fail_with_the_reason(checks):
    import torch

    answers = _advantage_answers(checks)
    flipped = {**answers, next(iter(answers)): not next(iter(answers.values()))}
    with pytest.raises(AssertionError, match="scale-free"):
        checks.check_group_advantages(_advantages(torch), _zero_std_fraction, flipped)
    with pytest.raises(AssertionError, match="frac_reward_zero_std"):
        checks.check_group_advantages(_advantages(torch), lambda r, g: 0.0, answers)
    signs = {**checks.reference_gradient_signs(), ("A > 0", "ratio > 1 + eps"): -1}
    with pytest.raises(AssertionError, match="constant: no gradient"):
        checks.check_clipped_surrogate(_surrogate(torch), signs)
    props = checks.reference_estimator_properties()
    props["k2"]["unbiased"] = True
    with pytest.raises(AssertionError, match="k2 is not unbiased"):
        checks.check_k3_kl(_k3(torch), props)
    aggregate = _aggregate(torch)
    with pytest.raises(AssertionError, match="look again"):
        checks.check_loss_aggregation(aggregate, _token_weights(torch, aggregate),
                                      {**checks._aggregation_facts(), "pushes each token of the long wrong answer "
                                       "down less than each token of the short wrong answer": ["dapo"]})


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
        checks.check_group_advantages(_advantages(torch, **mistake), _zero_std_fraction, _advantage_answers(checks))


@pytest.mark.parametrize(
    "mistake, message",
    [(dict(use_max=True), "ratio is 1|max"), (dict(symmetric=True), "eps_high"), (dict(detach=True), "autograd")],
)
def test_surrogate_checker_names_the_mistake(checks, mistake, message):
    import torch

    with pytest.raises(AssertionError, match=message):
        checks.check_clipped_surrogate(_surrogate(torch, **mistake), checks.reference_gradient_signs())


@pytest.mark.parametrize(
    "estimator, message",
    [
        (lambda lp, ref: lp - ref, "never negative"),  # k1
        (lambda lp, ref: (lp - ref).exp() - (lp - ref) - 1, "upside down"),
        (lambda lp, ref: 0.5 * (lp - ref) ** 2, "k2 = x\\^2 / 2, never negative but biased"),
    ],
)
def test_k3_checker_names_the_mistake(checks, estimator, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_k3_kl(estimator, checks.reference_estimator_properties())


@pytest.mark.parametrize(
    "mistake, message",
    [(dict(per_sequence_dapo=True), "dapo is the sum over all completion tokens"), (dict(no_clamp=True), "clamp")],
)
def test_aggregation_checker_names_the_mistake(checks, mistake, message):
    import torch

    aggregate = _aggregate(torch, **mistake)
    with pytest.raises(AssertionError, match=message):
        checks.check_loss_aggregation(aggregate, _token_weights(torch, _aggregate(torch)), checks._aggregation_facts())


def test_aggregation_reference_is_trls(checks):
    """The reference aggregations are TRL 1.16's compute_loss, read off a GRPOTrainer's own code:
    the lines it runs for each loss_type are the reference's formulas."""
    import inspect

    from trl import GRPOTrainer

    source = inspect.getsource(GRPOTrainer.compute_loss) + inspect.getsource(GRPOTrainer._compute_loss)
    assert "((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()" in source  # grpo
    assert "(per_token_loss * mask).sum() / (per_token_loss.size(0) * self.max_completion_length)" in source  # dr_grpo
    assert 'normalizer = inputs["num_items_in_batch"].clamp(min=1.0)' in source  # dapo: the batch's token count



def test_reward_checker_names_the_mistakes(checks):
    from tinyzero.tasks import countdown, grading

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


# --- The taught order: notebook 02 sets each exercise before the cell that answers it ------------

# exercise -> the first code in notebook 02 that is its answer
ANSWERED_IN_02 = {
    "02_group_advantages": "def group_advantages(",
    "03_clipped_surrogate": "def clipped_surrogate(",
    "04_k3_kl": "def k3_kl(",
    "07_loss_aggregation": "def grpo_loss(",
}


@pytest.mark.parametrize("exercise, answer", ANSWERED_IN_02.items(), ids=list(ANSWERED_IN_02))
def test_notebook_02_sets_the_exercise_before_its_answer(exercise, answer):
    nb = nbformat.read(REPO / "notebooks" / "02_grpo_by_hand.ipynb", as_version=4)
    stops = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "**Stop: exercise" in c.source
             and f"`exercises/{exercise}.ipynb`" in c.source]
    answers = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and answer in c.source]
    assert len(stops) == 1, f"notebook 02 needs one stop sign for {exercise}"
    assert answers, f"notebook 02 no longer has {answer!r}: update ANSWERED_IN_02"
    assert stops[0] < answers[0], f"the stop sign for {exercise} comes after the cell that answers it"
    assert (EXERCISE_DIR / f"{exercise}.ipynb") in BLANKS
    # The section before the stop sign does not give the answer's formula away either.
    before = "".join(c.source for c in nb.cells[: stops[0]] if c.cell_type == "code")
    assert answer not in before
