"""The nano base model's "pretraining corpus": Countdown search traces of mixed quality.

A web-pretrained base model has seen people try things, make slips, give up, and now and
then say "wait, let me check". This module writes a seeded corpus that stands in for that,
in the nano template (``tinyzero.countdown.prompt(..., template="nano")``)::

    Make 23 from 3 5 4.
    <think>try 3 5 4: 4+3=7 5*7=35 vs 23 no
    try 3 5 4: 5*4=20 20+3=23 vs 23 yes</think>
    <answer>(5*4)+3</answer>

Each trace is a random search, NOT a solution written by a solver:

- an *attempt* is a random expression over the three numbers, written as a chain of two
  equations (combine two numbers, then the result with the third); the answer is the second
  equation with the intermediate result replaced by the first in parentheses; arithmetic
  slips happen at a small rate; values a person would not bother with (above
  ``max_value``) are not tried;
- every attempt ends in a check against the target, "yes" or "no", that is faithful to the
  value written (a slip can hide a hit, or fake one);
- after a "no" the writer goes on with a probability that is drawn per trace (its
  *persistence*), so traces have 1 to many attempts, most of them failing; after a "yes"
  it stops; either way the answer is whatever the last attempt wrote;
- a few traces are a bare guess with no thinking, and a few attempts are followed by a
  "wait, let me check" recomputation.

There is no reward and no filtering to correct answers: most traces end in a wrong
answer. The base model learns the FORM of search and a reliable check of its own hits, but
nothing in the corpus tells it that searching longer pays. That is what GRPO must find.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction

OPS = "+-*/"


@dataclass(frozen=True)
class CorpusConfig:
    """Knobs of the trace writer. Defaults are the ones the nano recipe pretrains on."""

    persistence_min: float = 0.15  # P(continue after a "no"), drawn per trace uniformly
    persistence_max: float = 0.85
    max_attempts: int = 12
    max_value: int = 200  # attempts whose values go above this are not tried
    slip_rate: float = 0.05  # an arithmetic result written off by a little
    self_check_rate: float = 0.04  # "wait, let me check" after an attempt
    direct_guess_rate: float = 0.1  # no thinking at all, just a guessed answer
    worksheet_rate: float = 0.5  # documents that are worksheets of checked attempts, not traces
    worksheet_lines: int = 6  # lines per worksheet: 2 to this many
    worksheet_yes: float = 0.5  # share of worksheet lines that reach their target


@dataclass(frozen=True)
class Attempt:
    first: tuple[int, str, int, int]  # a, op, b, r: "a op b = r"
    second: tuple[int, str, int, int]  # x, op, y, v: one of x, y is r, the other the third number
    expr: str  # what the answer tag holds, e.g. "(5*4)+3"

    @property
    def value(self) -> int:
        return self.second[3]


def _apply(x: int, op: str, y: int) -> int | None:
    """Integer arithmetic that stays non-negative and exact (what the writer attempts)."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y if x >= y else None
    if op == "*":
        return x * y
    if y != 0 and x % y == 0:
        return x // y
    return None


def random_attempt(nums: list[int], rng: random.Random, max_value: int = 200) -> Attempt:
    """A random well-defined two-step chain using each of the three numbers once."""
    while True:
        a, b, c = rng.sample(nums, 3)
        o1, o2 = rng.choice(OPS), rng.choice(OPS)
        r = _apply(a, o1, b)
        if r is None or r > max_value:
            continue
        r_first = rng.random() < 0.5
        x, y = (r, c) if r_first else (c, r)
        v = _apply(x, o2, y)
        if v is None or v > max_value:
            continue
        inner = f"({a}{o1}{b})"
        expr = f"{inner}{o2}{c}" if r_first else f"{c}{o2}{inner}"
        return Attempt((a, o1, b, r), (x, o2, y, v), expr)


def _slip(value: int, rng: random.Random) -> int:
    wrong = value + rng.choice([-1, 1]) * rng.randint(1, 3)
    return wrong if wrong >= 0 else value + rng.randint(1, 3)


def work(att: Attempt, slip: bool = False, rng: random.Random | None = None) -> tuple[str, int]:
    """The two equations of an attempt, e.g. "5*4=20 20+3=23", and the final value written."""
    a, o1, b, r = att.first
    x, o2, y, v = att.second
    if slip and rng is not None:
        v = _slip(v, rng)
    return f"{a}{o1}{b}={r} {x}{o2}{y}={v}", v


def attempt_line(
    att: Attempt, nums: list[int], target: int, rng: random.Random, cfg: CorpusConfig
) -> tuple[str, bool]:
    """Write one attempt and its check. Returns the line and whether it said "yes".

    The line restates the numbers first ("try 3 5 4: ..."): a tiny model copies from the
    line above far more reliably than from the prompt, and a later attempt that forgets the
    numbers is worth less than the first, which teaches RL to stop searching.
    """
    text, value = work(att, rng.random() < cfg.slip_rate, rng)
    hit = value == target
    return f"try {' '.join(map(str, nums))}: {text} vs {target} {'yes' if hit else 'no'}", hit


def trace(nums: list[int], target: int, rng: random.Random, cfg: CorpusConfig = CorpusConfig()) -> str:
    """One completion (the text after the prompt's ``<think>``), ending in ``</answer>``."""
    if rng.random() < cfg.direct_guess_rate:
        return f"</think>\n<answer>{random_attempt(nums, rng, cfg.max_value).expr}</answer>"
    persistence = rng.uniform(cfg.persistence_min, cfg.persistence_max)
    lines: list[str] = []
    for _ in range(cfg.max_attempts):
        att = random_attempt(nums, rng, cfg.max_value)
        line, hit = attempt_line(att, nums, target, rng, cfg)
        lines.append(line)
        if rng.random() < cfg.self_check_rate:
            # A careful recomputation: always shown work, never a slip.
            true_hit = att.value == target
            lines.append(f"wait, let me check: {work(att)[0]} vs {target} {'yes' if true_hit else 'no'}")
            hit = true_hit
        if hit or rng.random() > persistence:
            break
    return "\n".join(lines) + f"</think>\n<answer>{att.expr}</answer>"


def worksheet(problems: list[dict], rng: random.Random, cfg: CorpusConfig = CorpusConfig()) -> str:
    """A page of checked attempts, each on a problem of ``problems``: no prompt, no answer.

    Written like trace lines (``try 3 5 4: 5*4=20 20+3=23 vs 23 yes``), but half of them
    reach their target, where in a trace only ~6% do. A web-trained model has read countless
    comparisons; a tiny one that sees "yes" after 6% of checks learns to always say "no"
    and never learns to compare. The attempt is written before the target appears on the
    line, so a worksheet cannot teach aiming at the target, only checking; and a "yes" line
    is a real hit on a problem of ``problems`` (pass the train split: no test problem is
    ever solved here).
    """
    lines = []
    for _ in range(rng.randint(2, cfg.worksheet_lines)):
        row = problems[rng.randrange(len(problems))]
        nums, target = list(row["nums"]), row["target"]
        want_hit = rng.random() < cfg.worksheet_yes
        for _ in range(200):  # a random attempt hits ~6% of the time: draw until it is the kind wanted
            att = random_attempt(nums, rng, cfg.max_value)
            if (att.value == target) == want_hit:
                break
        else:
            continue  # a problem that two-step integer chains cannot reach: skip the line
        text, value = work(att)
        lines.append(f"try {' '.join(map(str, nums))}: {text} vs {target} {'yes' if value == target else 'no'}")
    return "\n".join(lines)


# --- Reading traces back -------------------------------------------------------------------
# The same line format, parsed from model output (untrusted text: the value of an attempt
# is computed by the grader's safe evaluator, never by eval).
_LINE = re.compile(
    r"^(?:try [\d ]{1,20}: )?(?P<check>wait, let me check: )?(?P<a>\d{1,4})(?P<o1>[-+*/])(?P<b>\d{1,4})=(?P<r>\d{1,6}) "
    r"(?P<x>\d{1,6})(?P<o2>[-+*/])(?P<y>\d{1,6})=(?P<written>\d{1,7}) vs (?P<target>\d{1,6}) (?P<verdict>yes|no)$"
)


@dataclass(frozen=True)
class AttemptRecord:
    expr: str
    written: int  # the value the model wrote
    value: Fraction | None  # the true value of expr (None: not arithmetic under the whitelist)
    verdict: str  # "yes" or "no"
    self_check: bool

    @property
    def arithmetic_ok(self) -> bool:
        """The value written is the true value of the chain."""
        return self.value is not None and self.value == self.written


def tries(atts: list[AttemptRecord]) -> list[AttemptRecord]:
    """The attempts proper: a self-check recomputes an attempt and is not a new one."""
    return [a for a in atts if not a.self_check]


def parse_attempts(thinking: str) -> list[AttemptRecord]:
    """The attempt lines of a nano trace's thinking; lines of any other shape are skipped."""
    from tinyzero.grader import evaluate_expression  # noqa: PLC0415

    out = []
    for line in thinking.split("\n"):
        m = _LINE.match(line.strip())
        if m:
            # The expression the chain stands for: the intermediate result replaced by the
            # first equation (when the model copied it; otherwise the chain is not one expression).
            inner = f"({m['a']}{m['o1']}{m['b']})"
            if m["x"] == m["r"]:
                expr = f"{inner}{m['o2']}{m['y']}"
            elif m["y"] == m["r"]:
                expr = f"{m['x']}{m['o2']}{inner}"
            else:
                expr = f"{m['x']}{m['o2']}{m['y']}"
            ev = evaluate_expression(expr)
            out.append(AttemptRecord(expr, int(m["written"]), ev.value, m["verdict"], bool(m["check"])))
    return out


def trace_stats(thinking: str, target: int) -> dict[str, float]:
    """Per-trace figures for the base-model report: attempts, hits, hits checked "yes", ..."""
    atts = parse_attempts(thinking)
    hits = [a for a in atts if a.value == target]
    attempts = tries(atts)
    return {
        # The decision RL can change most easily: after a "no", try again or give up?
        "noes": sum(a.verdict == "no" for a in attempts),
        "noes_continued": sum(a.verdict == "no" for a in attempts[:-1]),
        "attempts": len(attempts),
        "self_checks": len(atts) - len(attempts),
        "arithmetic_ok": sum(a.arithmetic_ok for a in atts),
        "attempt_lines": len(atts),
        "hits": len(hits),
        "hits_said_yes": sum(a.verdict == "yes" for a in hits),
    }


def search_summary(thinkings: list[str], targets: list[int]) -> dict[str, float]:
    """The base-model report's search figures over many traces (see ``trace_stats``).

    (Attempts per trace are ``tinyzero.metrics.attempts``, reported by eval as ``attempts``.)
    hit_yes_rate is the one RL depends on: how often an attempt that really reaches the
    target is checked "yes". Below ~50%, searching longer earns little. continue_after_no is
    what RL should raise once it does: how often a "no" is followed by another attempt.
    """
    stats = [trace_stats(t, target) for t, target in zip(thinkings, targets, strict=True)]
    total = {k: sum(s[k] for s in stats) for k in stats[0]} if stats else {}
    lines = total.get("attempt_lines", 0)
    return {
        "search/arithmetic_ok": total.get("arithmetic_ok", 0) / lines if lines else 0.0,
        "search/hits": total.get("hits", 0),
        "search/hit_yes_rate": total.get("hits_said_yes", 0) / total["hits"] if total.get("hits") else 0.0,
        "search/continue_after_no": total["noes_continued"] / total["noes"] if total.get("noes") else 0.0,
    }
