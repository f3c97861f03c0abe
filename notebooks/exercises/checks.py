"""Checkers for the exercises in this folder: ``check_<exercise>(your_function)``.

Each checker runs your function on hand-picked and random cases, compares it with tinyzero (or,
for the GRPO math, with the formulas TRL 1.16 uses), and raises ``AssertionError`` with a message
that says which case failed and, for common mistakes, what the mistake probably is. It prints
"All checks passed" otherwise. Reading this file spoils the exercises: try them first.
"""

from __future__ import annotations

import builtins
import random
from contextlib import contextmanager
from fractions import Fraction

from tinyzero.tasks import countdown, grading, multiplication
from tinyzero.tasks.grading import Verdict
from tinyzero.tasks.rewards import score


def _passed(name: str, n: int) -> None:
    print(f"All checks passed: {name} ({n} cases).")


def _fail(message: str) -> None:
    raise AssertionError(message)


@contextmanager
def _no_eval():
    """eval and exec raise while the student's grader runs (ast.parse does not use them)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("your grader called eval/exec: model output must never be executed; use ast")

    saved = builtins.eval, builtins.exec
    builtins.eval, builtins.exec = forbidden, forbidden
    try:
        yield
    finally:
        builtins.eval, builtins.exec = saved


# --- 01 Countdown grader ----------------------------------------------------------------

_COUNTDOWN_CASES = [
    # (expression, nums, target, hint shown when the answer is wrong)
    ("3 * 5 + 7", [3, 5, 7], 22, "a plain correct answer"),
    ("(3 * 5) + 7", [3, 5, 7], 22, "parentheses are allowed"),
    ("7 + 5 * 3", [3, 5, 7], 22, "the numbers may come in any order"),
    ("  3*5+7 ", [3, 5, 7], 22, "answers often have surrounding spaces: strip them before ast.parse"),
    ("3 + 5 + 7", [3, 5, 7], 22, "the value must equal the target"),
    ("3 * 7 + 5 - 3", [3, 5, 7], 22, "3 is used twice: each number exactly once"),
    ("3 * 7 + 1", [3, 5, 7], 22, "1 is not a given number, and 5 is not used"),
    ("22", [3, 5, 7], 22, "the target alone uses none of the numbers"),
    ("3 * 5 + 7 + 0", [3, 5, 7], 22, "0 is not a given number"),
    ("3 * 5 + 7 = 22", [3, 5, 7], 22, "an equation is not an expression: ast.parse raises SyntaxError"),
    ("3 * 5 + 7.0", [3, 5, 7], 22, "7.0 is a float literal: integers only"),
    ("5 ** 2 - 3", [3, 5, 2], 22, "** is not one of + - * /"),
    ("-3 + 5 * 5", [3, 5, 5], 22, "unary minus is not allowed (Countdown has only binary operations)"),
    ("sum([3, 5, 7]) + 7", [3, 5, 7], 22, "a function call is not arithmetic"),
    ("__import__('os').getcwd()", [3, 5, 7], 22, "code must be rejected, never run"),
    ("(lambda: 22)()", [3, 5, 7], 22, "code must be rejected, never run"),
    ("3 * x + 7", [3, 5, 7], 22, "a name is not a number"),
    ("7 / (5 - 5)", [7, 5, 5], 1, "division by zero must give False, not an exception"),
    ("1 / 49 * 49", [1, 49, 49], 1, "exact arithmetic: use fractions.Fraction, floats give 0.9999999999999999"),
    ("6 / (1 - 3 / 4)", [6, 1, 3, 4], 24, "fractions in between are fine"),
    ("5 + 5 + 2", [5, 2, 5], 12, "repeated numbers: compare multisets (collections.Counter)"),
    ("5 + 2 + 2 + 3", [5, 2, 5], 12, "2 is given once but used twice"),
    ("3 * 5 + 7)", [3, 5, 7], 22, "unbalanced parentheses: a SyntaxError, so False"),
    ("", [3, 5, 7], 22, "an empty answer"),
    ("3 5 7", [3, 5, 7], 22, "no operators: a SyntaxError"),
    ("[3, 5, 7]", [3, 5, 7], 22, "a list is not arithmetic"),
    ("True + 21", [1, 21], 22, "True is a bool, not an integer literal"),
]


def _random_countdown_cases(n: int, seed: int = 0):
    rng = random.Random(seed)
    cases = []
    for row in countdown.generate(n, num_count=(3, 4), num_range=(1, 20), target_range=(1, 60), seed=seed):
        expr, nums, target = row["solution"], row["nums"], row["target"]
        cases.append((expr, nums, target))
        mutated = list(expr)
        ops = [i for i, c in enumerate(mutated) if c in "+-*/"]
        mutated[rng.choice(ops)] = rng.choice("+-*/")
        cases.append(("".join(mutated), nums, target))
        cases.append((expr, nums, target + rng.choice([-1, 1])))
    return cases


def _tinyzero_countdown(expr: str, nums, target) -> bool:
    return countdown.grade(f"</think><answer>{expr}</answer>", nums, target).correct


def check_countdown_grader(countdown_correct) -> None:
    """Exercise 01: ``countdown_correct(expression, nums, target) -> bool``."""
    cases = [(e, n, t, h) for e, n, t, h in _COUNTDOWN_CASES] + [
        (e, n, t, "a random solved problem, or one with an operator or the target changed")
        for e, n, t in _random_countdown_cases(30)
    ]
    for expr, nums, target, hint in cases:
        expected = _tinyzero_countdown(expr, nums, target)
        with _no_eval():
            try:
                got = countdown_correct(expr, list(nums), target)
            except NotImplementedError:
                raise
            except AssertionError:
                raise
            except Exception as e:
                _fail(f"countdown_correct({expr!r}, {nums}, {target}) raised {type(e).__name__}: {e}\n"
                      f"A grader must never raise on model output. Hint: {hint}")
        if not isinstance(got, bool):
            _fail(f"countdown_correct({expr!r}, {nums}, {target}) returned {got!r}; return True or False")
        if got != expected:
            _fail(f"countdown_correct({expr!r}, {nums}, {target}) returned {got}, expected {expected}.\nHint: {hint}")
    _passed("countdown_correct agrees with tinyzero.tasks.countdown.grade", len(cases))


# --- 02 Group advantages ------------------------------------------------------------------

def reference_group_advantages(rewards, group_size: int, scale: bool = True):
    """TRL 1.16's advantages (scale_rewards="group" or "none"), with TRL's own nanstd."""
    from trl.trainer.utils import nanstd

    grouped = rewards.view(-1, group_size)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        advantages = advantages / (nanstd(grouped, dim=1, keepdim=True) + 1e-4)
    return advantages.reshape(-1)


def _advantage_mistake(torch, rewards, group_size, got) -> str:
    """Name a common mistake whose output matches ``got``, or ""."""
    grouped = rewards.view(-1, group_size)
    centered = grouped - grouped.mean(dim=1, keepdim=True)
    variants = {
        "you used the biased std (unbiased=False / correction=0); TRL uses torch.std's default (Bessel's correction)":
            centered / (grouped.std(dim=1, unbiased=False, keepdim=True) + 1e-4),
        "you normalised over the whole batch; each completion is compared with its own group only":
            (rewards - rewards.mean()) / (rewards.std() + 1e-4),
        "your groups are strided: the batch is prompt 0 x G, then prompt 1 x G (use view(-1, group_size))":
            ((rewards.view(group_size, -1) - rewards.view(group_size, -1).mean(0)) /
             (rewards.view(group_size, -1).std(0) + 1e-4)).reshape(-1),
        "you left out the + 1e-4 in the denominator (TRL adds it; it also keeps equal-reward groups finite)":
            centered / grouped.std(dim=1, keepdim=True),
        "you forgot to subtract the group mean": grouped.reshape(-1) / (grouped.std(dim=1, keepdim=True) + 1e-4).expand_as(grouped).reshape(-1),
        "you ignored scale: with scale=False return only reward minus group mean": centered.reshape(-1),
    }
    for message, variant in variants.items():
        if variant.numel() == got.numel() and torch.allclose(variant.reshape(-1), got.reshape(-1).to(variant.dtype), atol=1e-5):
            return message
    return ""


def _advantage_facts():
    """The statements of exercise 02, part 3, each with its truth computed from TRL's formula and why."""
    import torch

    def adv(rewards, scale=True):
        return reference_group_advantages(torch.tensor(rewards), len(rewards), scale)

    one, tenth, three = adv([1.0, 0, 0, 0]), adv([0.1, 0, 0, 0]), adv([1.0, 1.0, 1.0, 0])
    batch = torch.tensor([1.0, 0, 0, 0, 0.1, 0.1, 0.1, 0.1])
    return {
        "scaled: the best of [0.1, 0, 0, 0] gets the same advantage as the best of [1, 0, 0, 0], to 1%": (
            bool(torch.isclose(tenth[0], one[0], rtol=1e-2)),
            "dividing by the std makes the advantage scale-free: a group that differs only by the 0.1 "
            "format reward pushes as hard as one with a real success (why the nano recipe sets scale_rewards: none)"),
        "unscaled: the best of [0.1, 0, 0, 0] gets a tenth of the advantage of the best of [1, 0, 0, 0]": (
            bool(torch.isclose(adv([0.1, 0, 0, 0], False)[0], adv([1.0, 0, 0, 0], False)[0] / 10)),
            "without scaling the advantage is in reward units: r - mean is linear in the rewards"),
        "scaled: the lone success of [1, 0, 0, 0] gets a larger advantage than each success of [1, 1, 1, 0]": (
            bool(one[0] > three[0]),
            "rare successes get large advantages (1.5 against 0.5 here): a hard prompt's one hit is pushed hardest"),
        "a group whose rewards are all equal gets zero advantages, scaled or not": (
            bool((adv([0.1] * 4) == 0).all() and (adv([0.1] * 4, False) == 0).all()),
            "r - mean is 0 for every member; scaled, 0 / (0 + 1e-4) is still 0: such a group teaches nothing"),
        "adding an all-equal group to a batch changes the other groups' advantages": (
            not torch.equal(reference_group_advantages(batch, 4)[:4], adv([1.0, 0, 0, 0])),
            "each group is normalised on its own: the other groups never enter its mean or std"),
        "it is the division by the std that makes a group's advantages sum to zero": (
            False if torch.isclose(adv([1.0, 0.1, 0, 0], False).sum(), torch.tensor(0.0), atol=1e-6) else True,
            "subtracting the mean already does: sum(r - mean) = 0; the division only rescales"),
    }


def check_group_advantages(group_advantages, zero_std_fraction, answers: dict) -> None:
    """Exercise 02: ``group_advantages(rewards, group_size, scale=True) -> Tensor``,
    ``zero_std_fraction(rewards, group_size) -> float`` and the True/False ``answers``."""
    import torch

    gen = torch.Generator().manual_seed(0)
    cases = [
        (torch.tensor([1.0, 0.1, 0.1, 0.0]), 4, True),
        (torch.tensor([1.0, 0.1, 0.1, 0.0]), 4, False),
        (torch.tensor([0.1, 0.1, 0.1, 0.1, 1.0, 0.0, 0.0, 0.0]), 4, True),  # a group with equal rewards
        (torch.tensor([0.0, 1.0, 1.0, 0.0, 0.1, 0.0]), 2, True),
    ]
    for _ in range(20):
        g = int(torch.randint(2, 9, (1,), generator=gen))
        p = int(torch.randint(1, 6, (1,), generator=gen))
        values = torch.tensor([0.0, 0.1, 1.0])[torch.randint(0, 3, (p * g,), generator=gen)]
        cases.append((values, g, bool(torch.rand(1, generator=gen) < 0.7)))
    cases.append((torch.randn(24, generator=gen), 6, True))
    for rewards, g, scale in cases:
        expected = reference_group_advantages(rewards, g, scale)
        got = group_advantages(rewards.clone(), g, scale=scale)
        shown = f"group_advantages({[round(x, 3) for x in rewards.tolist()]}, group_size={g}, scale={scale})"
        if not isinstance(got, torch.Tensor):
            _fail(f"{shown} returned {type(got).__name__}; return a torch.Tensor")
        if got.shape != rewards.shape:
            _fail(f"{shown} has shape {tuple(got.shape)}; expected {tuple(rewards.shape)} (one advantage per completion)")
        if torch.isnan(got).any():
            _fail(f"{shown} contains NaN: a group with identical rewards has std 0; TRL adds 1e-4 to the std")
        if not torch.allclose(got.to(expected.dtype), expected, atol=1e-5):
            mistake = _advantage_mistake(torch, rewards, g, got)
            _fail(f"{shown}\n returned {[round(x, 4) for x in got.tolist()]}\n expected {[round(x, 4) for x in expected.tolist()]}"
                  + (f"\nLikely: {mistake}" if mistake else ""))
    # A batch with degenerate groups: all-equal rewards, scaled and unscaled.
    degenerate = torch.tensor([0.0] * 4 + [1.0, 0.1, 0.0, 0.0] + [0.1] * 4 + [1.0] * 4)
    for scale in (True, False):
        got = group_advantages(degenerate.clone(), 4, scale=scale).view(-1, 4)
        if not (got[[0, 2, 3]] == 0).all():
            _fail(f"scale={scale}: the groups [0, 0, 0, 0], [0.1]*4 and [1]*4 must get advantages exactly 0; "
                  f"got {[[round(x, 4) for x in g] for g in got[[0, 2, 3]].tolist()]}")
    cases_zero = [(degenerate, 4), (torch.tensor([1.0, 0.1, 0.1, 0.0]), 4), (torch.tensor([0.1] * 6), 3),
                  (torch.tensor([0.0, 0.0, 1.0, 1.0, 0.1, 0.1]), 2)]
    for rewards, g in cases_zero:
        expected = float((rewards.view(-1, g).std(dim=1) == 0).float().mean())
        got = zero_std_fraction(rewards.clone(), g)
        shown = f"zero_std_fraction({rewards.tolist()}, group_size={g})"
        if isinstance(got, torch.Tensor):
            got = got.item()
        if not isinstance(got, float) or abs(got - expected) > 1e-6:
            _fail(f"{shown} returned {got!r}, expected {expected}: the share of groups whose rewards are all "
                  "equal (TRL's frac_reward_zero_std), as a float")
    facts = _advantage_facts()
    if not isinstance(answers, dict) or set(answers) != set(facts):
        _fail("answers must be the dict of the exercise cell, one True/False per statement, keys unchanged")
    for statement, (truth, why) in facts.items():
        if not isinstance(answers[statement], bool):
            _fail(f"answer True or False to: {statement!r} (got {answers[statement]!r})")
        if answers[statement] != truth:
            _fail(f"{statement!r} is {truth}: {why}. Try it with your group_advantages.")
    _passed("group_advantages matches TRL's formula, zero_std_fraction and the answers too",
            len(cases) + 2 + len(cases_zero) + len(facts))


# --- 03 Clipped surrogate -------------------------------------------------------------------

def reference_clipped_surrogate(logps, old_logps, advantages, eps_low=0.2, eps_high=0.2):
    """TRL 1.16 ``_compute_loss`` for the grpo/dr_grpo/dapo losses, before aggregation and KL."""
    import torch

    coef_1 = torch.exp(logps - old_logps)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    a = advantages.unsqueeze(1)
    return -torch.min(coef_1 * a, coef_2 * a)


REGIONS = ("ratio < 1 - eps", "inside", "ratio > 1 + eps")


def reference_gradient_signs(eps: float = 0.2) -> dict:
    """The sign of d(loss)/d(logp) of TRL's per-token loss, for A = +1 and A = -1, in each ratio region."""
    import torch

    signs = {}
    for a in (1.0, -1.0):
        for region, ratio in zip(REGIONS, (1 - 2 * eps, 1.0, 1 + 2 * eps)):
            logp = torch.tensor([[float(torch.log(torch.tensor(ratio)))]], requires_grad=True)
            loss = reference_clipped_surrogate(logp, torch.zeros(1, 1), torch.tensor([a]), eps, eps)
            (grad,) = torch.autograd.grad(loss.sum(), logp)
            signs[("A > 0" if a > 0 else "A < 0", region)] = int(torch.sign(grad).item())
    return signs


def _check_gradient_signs(gradient_signs) -> int:
    expected_signs = reference_gradient_signs()
    if not isinstance(gradient_signs, dict) or set(gradient_signs) != set(expected_signs):
        _fail("gradient_signs must be the dict of the exercise cell, keys unchanged, one of -1, 0, +1 each")
    for key, sign in expected_signs.items():
        if gradient_signs[key] not in (-1, 0, 1):
            _fail(f"gradient_signs[{key}] must be -1, 0 or +1, got {gradient_signs[key]!r}")
        if gradient_signs[key] != sign:
            why = ("the clipped term is the smaller one there and it is a constant: no gradient" if sign == 0 else
                   "the unclipped term rho * A is the min there, so the gradient is -A * rho * dlogp: "
                   + ("negative, gradient descent raises the log-prob" if sign < 0 else "positive, descent lowers it"))
            _fail(f"gradient_signs[{key}] is {sign:+d}, not {gradient_signs[key]:+d}: {why}. Draw -min(rho A, clip(rho) A) "
                  "against rho for A = +1 and A = -1 (notebook 02 plots it after this exercise).")
    return len(expected_signs)


def check_clipped_surrogate(clipped_surrogate_loss, gradient_signs: dict) -> None:
    """Exercise 03: ``clipped_surrogate_loss(logps, old_logps, advantages, eps_low, eps_high) -> (B, T)``
    and ``gradient_signs``: the sign of the loss's gradient w.r.t. logps on each branch."""
    import torch

    gen = torch.Generator().manual_seed(0)
    # On-policy first: ratio exactly 1, where the loss must be -A and the gradient -A per token.
    logps = -torch.rand(3, 5, generator=gen) * 3
    advantages = torch.tensor([1.0, -0.5, 0.0])
    lp = logps.clone().requires_grad_(True)
    got = clipped_surrogate_loss(lp, logps.clone(), advantages, 0.2, 0.2)
    if not isinstance(got, torch.Tensor) or got.shape != logps.shape:
        _fail(f"expected a tensor of shape {tuple(logps.shape)} (one loss per token), got "
              f"{getattr(got, 'shape', type(got).__name__)}")
    if not torch.allclose(got, -advantages.unsqueeze(1).expand_as(got), atol=1e-6):
        _fail("with logps == old_logps the ratio is 1 and the per-token loss must be -A (minus the advantage).\n"
              f"advantages {advantages.tolist()}, your first column {got[:, 0].tolist()}.\n"
              "Check the sign (a LOSS to minimise) and that the ratio is exp(logps - old_logps).")
    if not got.requires_grad:
        _fail("the loss does not depend on logps through autograd: do not detach logps (old_logps is the constant)")
    (grad,) = torch.autograd.grad(got.sum(), lp)
    if not torch.allclose(grad, -advantages.unsqueeze(1).expand_as(grad), atol=1e-6):
        _fail("at ratio 1 the gradient of the loss w.r.t. logps must be -A (the policy gradient); "
              f"got {grad[:, 0].tolist()} for advantages {advantages.tolist()}")

    n = 0
    for eps_low, eps_high in [(0.2, 0.2), (0.2, 0.28), (0.1, 0.3)]:
        for _ in range(10):
            b, t = int(torch.randint(1, 6, (1,), generator=gen)), int(torch.randint(1, 9, (1,), generator=gen))
            old = -torch.rand(b, t, generator=gen) * 4
            new = old + torch.randn(b, t, generator=gen) * 0.5  # many ratios outside the clip range
            adv = torch.randn(b, generator=gen)
            expected_lp = new.clone().requires_grad_(True)
            expected = reference_clipped_surrogate(expected_lp, old, adv, eps_low, eps_high)
            (expected_grad,) = torch.autograd.grad(expected.sum(), expected_lp)
            lp = new.clone().requires_grad_(True)
            got = clipped_surrogate_loss(lp, old.clone(), adv.clone(), eps_low, eps_high)
            n += 1
            if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
                ratio = torch.exp(new - old)
                worst = (got - expected).abs().argmax() if got.shape == expected.shape else None
                detail = ""
                if worst is not None:
                    i, j = divmod(int(worst), t)
                    detail = (f" At token ({i}, {j}): ratio {ratio[i, j]:.3f}, advantage {adv[i]:.3f}, "
                              f"yours {got[i, j]:.4f}, expected {expected[i, j]:.4f}.")
                maxed = -torch.max(torch.exp(new - old) * adv.unsqueeze(1),
                                   torch.clamp(torch.exp(new - old), 1 - eps_low, 1 + eps_high) * adv.unsqueeze(1))
                hint = ""
                if got.shape == maxed.shape and torch.allclose(got, maxed, atol=1e-5):
                    hint = " Likely: you took the max; PPO takes the min of the two objectives (the pessimistic one) before negating."
                elif eps_low != eps_high:
                    hint = " Check that the lower bound uses eps_low and the upper bound eps_high."
                _fail(f"eps_low={eps_low}, eps_high={eps_high}: wrong per-token loss.{detail}{hint}")
            (grad,) = torch.autograd.grad(got.sum(), lp)
            if not torch.allclose(grad, expected_grad, atol=1e-5):
                _fail(f"eps_low={eps_low}, eps_high={eps_high}: values are right but the gradient is not. "
                      "Where the clip is active the gradient must be exactly zero: clamp the ratio (torch.clamp), "
                      "do not clamp the advantage or detach the ratio.")
    n += _check_gradient_signs(gradient_signs)
    _passed("clipped_surrogate_loss matches TRL's per-token loss and its gradient, and the signs are right", n + 1)


# --- 04 k3 KL -----------------------------------------------------------------------------------

def reference_k3(logps, ref_logps):
    """TRL 1.16's per-token KL (before use_bias_correction_kl): exp(ref - logp) - (ref - logp) - 1."""
    import torch

    return torch.exp(ref_logps - logps) - (ref_logps - logps) - 1


ESTIMATORS = {  # x = log pi_ref(token) - log pi(token), the token sampled from pi
    "k1": lambda x: -x,
    "k2": lambda x: 0.5 * x**2,
    "k3": lambda x: x.exp() - x - 1,
}


def reference_estimator_properties(trials: int = 50) -> dict:
    """For k1, k2, k3: unbiased for KL(pi || pi_ref) and never negative, found on random categoricals
    by exact expectation (a property holds only if it holds on every trial)."""
    import torch

    gen = torch.Generator().manual_seed(1)
    props = {name: {"unbiased": True, "never negative": True} for name in ESTIMATORS}
    for _ in range(trials):
        v = int(torch.randint(2, 12, (1,), generator=gen))
        p = torch.softmax(torch.randn(v, generator=gen) * 1.5, 0).double()
        q = torch.softmax(torch.randn(v, generator=gen) * 1.5, 0).double()
        exact = (p * (p / q).log()).sum()
        for name, estimator in ESTIMATORS.items():
            values = estimator(q.log() - p.log())
            props[name]["unbiased"] &= bool(torch.isclose((p * values).sum(), exact, atol=1e-9))
            props[name]["never negative"] &= bool((values >= -1e-12).all())
    return props


def _check_properties(properties) -> int:
    expected_props = reference_estimator_properties()
    if not isinstance(properties, dict) or set(properties) != set(expected_props) or any(
        not isinstance(properties[k], dict) or set(properties[k]) != set(expected_props[k]) for k in expected_props
    ):
        _fail("properties must be the dict of the exercise cell, keys unchanged, True or False each")
    for name, props in expected_props.items():
        for prop, truth in props.items():
            if properties[name][prop] is not truth:
                _fail(f"{name} is {'' if truth else 'not '}{prop} (you said {properties[name][prop]!r}). Compute "
                      "sum_x p(x) * estimator(x) on a small categorical, as this check does, and compare with KL(p || q).")
    return 2 * len(expected_props)


def check_k3_kl(k3_kl, properties: dict) -> None:
    """Exercise 04: ``k3_kl(logps, ref_logps) -> Tensor`` (same shape), and ``properties``: for
    k1, k2 and k3, whether each is unbiased and whether it is never negative."""
    import torch

    gen = torch.Generator().manual_seed(0)
    same = -torch.rand(2, 4, generator=gen)
    got = k3_kl(same, same.clone())
    if not isinstance(got, torch.Tensor) or got.shape != same.shape:
        _fail(f"expected a tensor of shape {tuple(same.shape)} (one estimate per token)")
    if not torch.allclose(got, torch.zeros_like(got), atol=1e-7):
        _fail(f"when the policy equals the reference every estimate must be 0; got {got.flatten().tolist()[:4]}...")

    # Unbiasedness, exactly: E_{x ~ p}[k3] = sum_x p(x) k3(log p(x), log q(x)) must equal KL(p || q).
    n = 0
    for _ in range(20):
        v = int(torch.randint(2, 12, (1,), generator=gen))
        p = torch.softmax(torch.randn(v, generator=gen) * 1.5, 0).double()
        q = torch.softmax(torch.randn(v, generator=gen) * 1.5, 0).double()
        exact = (p * (p / q).log()).sum()
        estimates = k3_kl(p.log(), q.log())
        n += 1
        if (estimates < -1e-9).any():
            _fail("k3 is never negative (e^x - x - 1 >= 0), yours is: is that k1 = log(pi / pi_ref)? "
                  "k1 is unbiased but can be negative and has high variance.")
        mean = (p * estimates).sum()
        if not torch.isclose(mean, exact, atol=1e-6):
            reverse = (p * ((p / q) - (p / q).log() - 1)).sum()
            k2 = (p * 0.5 * (q / p).log() ** 2).sum()
            hint = ""
            if torch.isclose(mean, reverse, atol=1e-6):
                hint = (" Likely: the ratio is upside down. With tokens sampled from the policy, use "
                        "x = ref_logps - logps, i.e. r = pi_ref / pi.")
            elif torch.isclose(mean, k2, atol=1e-6):
                hint = " Likely: k2 = x^2 / 2, never negative but biased (its mean is not the KL)."
            _fail(f"the expected value of your estimator under the policy is {mean:.5f}, but KL(pi || pi_ref) is "
                  f"{exact:.5f}: the estimator must be unbiased.{hint}")

    # Same values and gradient as TRL on random log-probs.
    logps = -torch.rand(4, 6, generator=gen) * 5
    ref = logps + torch.randn(4, 6, generator=gen)
    a, b = logps.clone().requires_grad_(True), logps.clone().requires_grad_(True)
    expected, got = reference_k3(a, ref), k3_kl(b, ref.clone())
    if not torch.allclose(got, expected, atol=1e-5):
        _fail("values differ from exp(ref - logp) - (ref - logp) - 1 on random inputs")
    (ga,) = torch.autograd.grad(expected.sum(), a)
    (gb,) = torch.autograd.grad(got.sum(), b)
    if not torch.allclose(ga, gb, atol=1e-5):
        _fail("the gradient w.r.t. logps differs from TRL's: do not detach logps")
    n += _check_properties(properties)
    _passed("k3_kl is TRL's estimator: zero at equality, non-negative, unbiased; the properties are right", n + 2)


# --- 05 A new reward --------------------------------------------------------------------------

def reference_concise_reward(completions, nums, target, max_thinking: int = 50, **kwargs):
    out = []
    for c, n, t in zip(completions, nums, target):
        if not countdown.grade(c, n, t).correct:
            out.append(0.0)
        else:
            thinking = grading.thinking_text(grading.completion_text(c))
            out.append(1.0 if len(thinking) <= max_thinking else 0.5)
    return out


def check_concise_reward(concise_reward) -> None:
    """Exercise 05: ``concise_reward(completions, nums, target, max_thinking=50, **kwargs) -> list[float]``."""
    long = "3+5+7=15 no. " * 6
    completions = [
        "3*5=15 15+7=22</think>\n<answer>3*5+7</answer>",  # correct, short
        f"{long}3*5=15 15+7=22</think>\n<answer>3*5+7</answer>",  # correct, long
        "3+5+7=15</think>\n<answer>3+5+7</answer>",  # wrong
        "no answer at all",
        "</think><answer>3*7+5-3</answer>",  # cheating
        "<answer>3*5+7</answer>",  # correct, no thinking
        "<think>" + "x" * 50 + "</think><answer>3*5+7</answer>",  # exactly at the limit
        "<think>" + "x" * 51 + "</think><answer>3*5+7</answer>",  # one over
    ]
    n = len(completions)
    columns = {"nums": [[3, 5, 7]] * n, "target": [22] * n}
    extra = {"prompt": ["Make 22 from 3 5 7.\n<think>"] * n, "task": ["countdown"] * n, "solution": ["(3 * 5) + 7"] * n}
    expected = reference_concise_reward(completions, **columns)
    try:
        got = concise_reward(completions, **columns, **extra)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            _fail(f"TRL passes EVERY dataset column as a keyword argument ({sorted(extra)} here too); "
                  f"add **kwargs to your signature. ({e})")
        raise
    if not isinstance(got, list) or len(got) != n:
        _fail(f"a reward function returns a list with one float per completion ({n}); got {type(got).__name__} "
              f"of length {len(got) if hasattr(got, '__len__') else '?'}")
    if not all(isinstance(x, float) for x in got):
        _fail(f"return floats (TRL builds a float tensor from them); got {[type(x).__name__ for x in got]}")
    for c, g, e in zip(completions, got, expected):
        if g != e:
            _fail(f"for {c[:60]!r}... you gave {g}, expected {e}.\n"
                  "Correct means countdown.grade(...).correct; the thinking is grading.thinking_text(text).")
    messages = [[{"role": "assistant", "content": c}] for c in completions]
    if concise_reward(messages, **columns) != expected:
        _fail("with a chat template TRL passes message lists, not strings: use grading.completion_text(c) "
              "(countdown.grade already accepts both)")
    short = reference_concise_reward(completions, **columns, max_thinking=10)
    if concise_reward(completions, **columns, max_thinking=10) != short:
        _fail("max_thinking=10 was ignored: use the max_thinking argument, not a constant")
    _passed("concise_reward follows TRL's reward contract", 3 * n)


# --- 06 A new task ----------------------------------------------------------------------------------

def reference_addition_grade(completion, a: int, b: int) -> Verdict:
    text = grading.completion_text(completion)
    answer = grading.extract_answer(text)
    if answer is None:
        return grading.failed("no answer block", text)
    value = multiplication.parse_integer(answer)
    if value is None:
        return grading.failed("not an integer", text, answer)
    correct = value == int(a) + int(b)
    return Verdict(True, grading.is_well_formed(text), True, True, Fraction(value), correct,
                   "correct" if correct else f"equals {value}, not {int(a) + int(b)}", answer)


_ADDITION_CASES = [
    ("12+30=42</think>\n<answer>42</answer>", 12, 30),
    ("</think>\n<answer> 42 </answer>", 12, 30),
    ("</think>\n<answer>41</answer>", 12, 30),
    ("</think>\n<answer>12 + 30</answer>", 12, 30),
    ("</think>\n<answer>forty-two</answer>", 12, 30),
    ("no answer, 42", 12, 30),
    ("</think>\n<answer>42", 12, 30),
    ("</think><answer>40</answer> wait <answer>42</answer>", 12, 30),
    ("</think>\n<answer>1,000</answer>", 600, 400),
    ("</think>\n<answer>10,00</answer>", 600, 400),
    ("</think>\n<answer>-5</answer>", 0, -5),
    ("</think>\n<answer>42.0</answer>", 12, 30),
    (None, 1, 2),
    (12345, 1, 2),
    ([{"role": "assistant", "content": "</think><answer>3</answer>"}], 1, 2),
]


def check_addition_task(task) -> None:
    """Exercise 06: the ``Task`` you registered for addition (its grade is your function)."""
    from tinyzero.tasks import Task

    if not isinstance(task, Task):
        _fail(f"pass the tinyzero.tasks.Task you built, not {type(task).__name__}")
    if task.columns != ("a", "b"):
        _fail(f"the addition task's columns are ('a', 'b'), got {task.columns}")
    n = 0
    for completion, a, b in _ADDITION_CASES:
        row = {"a": a, "b": b}
        expected = reference_addition_grade(completion, a, b)
        try:
            got = task.grade(completion, row)
        except NotImplementedError:
            raise
        except Exception as e:
            _fail(f"grade({completion!r}, a={a}, b={b}) raised {type(e).__name__}: {e}. A grader never raises on "
                  "model output (None, numbers, message lists included).")
        n += 1
        if not isinstance(got, Verdict):
            _fail(f"grade must return a tinyzero.tasks.grading.Verdict, got {type(got).__name__}")
        for field in ("has_answer", "parsed", "correct", "value", "well_formed"):
            if getattr(got, field) != getattr(expected, field):
                _fail(f"grade({completion!r}, a={a}, b={b}).{field} is {getattr(got, field)!r}, expected "
                      f"{getattr(expected, field)!r}. (Last answer block; a plain integer as "
                      "multiplication.parse_integer reads it; correct iff it equals a + b.)")
    completions = [c for c, _, _ in _ADDITION_CASES]
    a_col, b_col = [a for _, a, _ in _ADDITION_CASES], [b for _, _, b in _ADDITION_CASES]
    got = task.reward(completions, a=a_col, b=b_col, prompt=[""] * len(completions), task=["addition"] * len(completions))
    expected = [score(reference_addition_grade(c, a, b)) for c, a, b in _ADDITION_CASES]
    if got != expected:
        _fail(f"task.reward gave {got}\nexpected         {expected}")
    print(f"{'completion':50} reward")
    for c, r in zip(completions, got):
        print(f"{str(c)[:48]!r:50} {r}")
    _passed("the addition task grades and rewards like a tinyzero task", n + 1)


# --- 07 Loss aggregation ------------------------------------------------------------------------

LOSS_TYPES = ("grpo", "dapo", "dr_grpo")


def reference_aggregate(per_token_loss, mask, loss_type: str, max_completion_length: int):
    """TRL 1.16 ``GRPOTrainer.compute_loss``'s aggregation on one process, one update per sampled
    batch (steps_per_generation = gradient_accumulation_steps = 1, where ``dapo``'s
    num_items_in_batch is this batch's token count, so ``dapo`` equals ``bnpo``)."""
    mask = mask.float()
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "dapo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
    raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}")


def reference_token_weights(mask, loss_type: str, max_completion_length: int):
    """d(loss)/d(per_token_loss): how much each token counts in the aggregated loss."""
    import torch

    per_token = torch.zeros(mask.shape, requires_grad=True)
    (weights,) = torch.autograd.grad(reference_aggregate(per_token, mask, loss_type, max_completion_length), per_token)
    return weights


def hand_made_batch():
    """One group of four completions (16 tokens at most): a right and a wrong answer of 4 tokens,
    a wrong answer that rambles for 16 and a right one of 8. Returns (mask, advantages, names)."""
    import torch

    lengths = [4, 4, 16, 8]
    mask = torch.tensor([[1] * n + [0] * (16 - n) for n in lengths])
    advantages = torch.tensor([1.0, -1.0, -1.0, 1.0])
    return mask, advantages, ["short right", "short wrong", "long wrong", "medium right"]


def _aggregation_facts(max_completion_length: int = 16) -> dict:
    """Exercise 07's questions, each answered from TRL's token weights on hand-made batches."""
    import torch

    mask, _, _ = hand_made_batch()
    weights = {t: reference_token_weights(mask, t, max_completion_length) for t in LOSS_TYPES}
    longer = mask.clone()
    longer[3] = 1  # the medium right answer, now 16 tokens long
    weights_longer = {t: reference_token_weights(longer, t, max_completion_length) for t in LOSS_TYPES}
    favours = [t for t in LOSS_TYPES if weights[t][2, 0] < weights[t][1, 0]]
    others = [t for t in LOSS_TYPES if not torch.isclose(weights_longer[t][0, 0], weights[t][0, 0])]
    return {
        "pushes each token of the long wrong answer down less than each token of the short wrong answer": favours,
        "a token's weight changes when another completion of the batch gets longer": others,
    }


def check_loss_aggregation(aggregate, token_weights, answers: dict) -> None:
    """Exercise 07: ``aggregate(per_token_loss, mask, loss_type, max_completion_length) -> scalar``,
    ``token_weights(mask, loss_type, max_completion_length) -> (B, T)`` and the ``answers``."""
    import torch

    gen = torch.Generator().manual_seed(0)
    n = 0
    for _ in range(12):
        b, t = int(torch.randint(1, 7, (1,), generator=gen)), int(torch.randint(1, 12, (1,), generator=gen))
        lengths = torch.randint(0, t + 1, (b,), generator=gen)
        mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).long()
        per_token = torch.randn(b, t, generator=gen)
        for loss_type in LOSS_TYPES:
            n += 1
            expected = reference_aggregate(per_token, mask, loss_type, t + 3)
            got = aggregate(per_token.clone(), mask.clone(), loss_type, t + 3)
            shown = f"aggregate(loss_type={loss_type!r}, lengths={lengths.tolist()}, max_completion_length={t + 3})"
            if not isinstance(got, torch.Tensor) or got.dim() != 0:
                _fail(f"{shown} must return a scalar tensor, got {getattr(got, 'shape', type(got).__name__)}")
            if not torch.isclose(got, expected, atol=1e-5):
                hint = {
                    "grpo": "the mean over completions of each completion's mean over its own tokens",
                    "dapo": "the sum over all completion tokens divided by their number",
                    "dr_grpo": "the sum over all completion tokens divided by B * max_completion_length, a constant",
                }[loss_type]
                if (lengths == 0).any():
                    hint += "; an empty completion (mask all 0) must not divide by zero: clamp the count at 1"
                _fail(f"{shown} = {got.item():.5f}, TRL's is {expected.item():.5f}: {loss_type} is {hint}. "
                      "Padding tokens (mask 0) never count.")
            weights = token_weights(mask.clone(), loss_type, t + 3)
            if not isinstance(weights, torch.Tensor) or weights.shape != mask.shape or not torch.allclose(
                weights.float(), reference_token_weights(mask, loss_type, t + 3), atol=1e-6
            ):
                _fail(f"token_weights({loss_type!r}, lengths={lengths.tolist()}) is not d(loss)/d(per_token_loss) "
                      "(shape (B, T), 0 on padding). Hint: run aggregate on a zero tensor that requires grad.")
    facts = _aggregation_facts()
    if not isinstance(answers, dict) or set(answers) != set(facts):
        _fail("answers must be the dict of the exercise cell, keys unchanged, a list of loss types each")
    for question, truth in facts.items():
        given = answers[question]
        if not isinstance(given, list | tuple | set) or not set(given) <= set(LOSS_TYPES):
            _fail(f"answer {question!r} with a list of loss types from {LOSS_TYPES} (possibly empty), got {given!r}")
        if set(given) != set(truth):
            _fail(f"{question!r}: you said {sorted(given)}; print token_weights on hand_made_batch() (and on it "
                  "with the medium right answer made 16 tokens long) for each loss_type and look again.")
    mask, advantages, names = hand_made_batch()
    print(f"{'completion':13} {'len':>3} {'A':>3} | weight of each token x 1000:  " + "  ".join(f"{t:>7}" for t in LOSS_TYPES))
    weights = {t: token_weights(mask, t, 16) for t in LOSS_TYPES}
    for i, name in enumerate(names):
        print(f"{name:13} {int(mask[i].sum()):3d} {advantages[i]:+3.0f} | {'':30}"
              + "  ".join(f"{1000 * weights[t][i, 0].item():7.2f}" for t in LOSS_TYPES))
    _passed("aggregate matches TRL's grpo, dapo and dr_grpo; token_weights and the answers too", n + len(facts))
