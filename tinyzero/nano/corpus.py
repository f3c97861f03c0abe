"""The nano base model's "pretraining corpus": Countdown search traces of mixed quality.

A web-pretrained base model has seen people try things, make slips, give up, and now and
then say "wait, let me check". This module writes a seeded corpus that stands in for that,
in the nano template (``tinyzero.tasks.countdown.prompt(..., template="nano")``)::

    Make 19 from 3 5 4.
    <think>3+5=8 8*4=32 vs 19 high
    3*5=15 15+4=19 vs 19 yes</think>
    <answer>(3*5)+4</answer>

Each trace is a random search, NOT a solution written by a solver:

- an *attempt* combines the numbers in the order the prompt lists them, with two operations
  from ``SEARCH_OPS`` (``chains`` lists the 9 possible), written as two equations; the answer
  is the second equation with the intermediate result replaced by the first in parentheses;
  arithmetic slips happen at a small rate. The recipe's writer takes the 9 chains in a random
  order and never repeats one (``search_order``);
- every attempt ends in a check against the target: "yes", or for a miss "low" or "high"
  (which way it missed). The check is faithful to the value written (a slip can hide a hit,
  or fake one);
- after a miss the writer goes on with a probability set by its kind: most writers give up
  quickly, a few (``diligent_rate``) work on, up to ``max_attempts``. After a "yes" it stops;
  either way the answer is whatever the last attempt wrote;
- a few traces are a bare guess with no thinking, and a few attempts are followed by a
  "wait, let me check" recomputation.

Beside the traces, two kinds of document teach skills without the choice to search:
*worksheets* (checked lines with no prompt, half of them hits: the check) and *practice pages*
(a problem's statement and a diligent writer's long search, outside ``<think>`` and with no
answer: the later attempts of a long search, which the rare diligent trace alone teaches badly).

There is no reward and no filtering to correct answers: most traces end in a wrong
answer. The base model learns the FORM of search and a reliable check of its own hits, but
nothing in the corpus tells it that searching longer pays. That is what GRPO must find.
``tinyzero.nano.traces`` reads the same line format back from model output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

OPS = "+-*/"  # what an answer may use (the grader's whitelist)
SEARCH_ORDERS = ("random", "distinct", "cycle")  # CorpusConfig.search_order: see attempts()
SEARCH_OPS = "+*-"  # what the writer tries; "-" always takes the smaller from the larger
PAIRINGS = ("prompt", "all")  # CorpusConfig.pairings: see chains()


@dataclass(frozen=True)
class CorpusConfig:
    """Knobs of the trace writer. Defaults are the ones the nano recipe pretrains on."""

    # Two kinds of writer: most give up quickly, some work through the options. P(go on
    # after a miss) is persistence_high for a diligent writer (diligent_rate of traces), else
    # persistence_low. Nothing in a trace says which kind wrote it until it goes on or stops.
    diligent_rate: float = 0.3
    persistence_low: float = 0.1
    persistence_high: float = 0.95
    max_attempts: int = 12  # the writer gives up after this many attempts
    slip_rate: float = 0.05  # an arithmetic result written off by a little
    self_check_rate: float = 0.04  # "wait, let me check" after an attempt
    direct_guess_rate: float = 0.05  # no thinking at all, just a guessed answer
    worksheet_rate: float = 0.4  # documents that are worksheets of checked attempts, not traces
    worksheet_lines: int = 6  # lines per worksheet: 2 to this many
    worksheet_yes: float = 0.5  # share of worksheet lines that reach their target
    practice_rate: float = 0.2  # documents that are practice pages: a long search without <think>
    # Whether a practice page ends the document (eos after its last attempt line). Base model
    # 7b89b24ed8f7 ends a quarter of its <think> searches that way, with no answer, even right
    # after a "yes". False: the page is trained on as a cut from a longer text, with nothing
    # after it. Tried and not kept: the grid's accuracy fell (benchmarks/results/RESULTS.md).
    practice_eos: bool = True
    # How the writer picks its next attempt: "random" (with replacement: the first corpora of
    # version 9), "distinct" (the 9 chains in a random order, none twice) or "cycle" (from a
    # random chain, on through the operations in a fixed cycle).
    search_order: str = "distinct"
    # Which numbers an attempt combines first: "prompt" (the first two, as the prompt lists them:
    # 9 chains, the recipe's) or "all" (any two of the three: 27 chains). With "prompt" many more
    # held-out problems have no chain that reaches the target (benchmarks' search_bound.py counts them).
    pairings: str = "prompt"

    def __post_init__(self):
        if self.search_order not in SEARCH_ORDERS:
            raise ValueError(f"search_order {self.search_order!r}: choose from {list(SEARCH_ORDERS)}")
        if self.pairings not in PAIRINGS:
            raise ValueError(f"pairings {self.pairings!r}: choose from {list(PAIRINGS)}")


@dataclass(frozen=True)
class Attempt:
    first: tuple[int, str, int, int]  # a, op, b, r: "a op b = r"
    second: tuple[int, str, int, int]  # x, op, y, v: one of x, y is r, the other the third number
    expr: str  # what the answer tag holds, e.g. "(5*4)+3"

    @property
    def value(self) -> int:
        return self.second[3]


def _combine(x: int, op: str, y: int) -> tuple[int, int, int]:
    """(left, right, value) of ``x op y`` as the writer puts it: a difference is always
    written larger minus smaller, so every value stays a non-negative integer."""
    if op == "+":
        return x, y, x + y
    if op == "*":
        return x, y, x * y
    if op == "-":
        hi, lo = max(x, y), min(x, y)
        return hi, lo, hi - lo
    raise ValueError(f"the writer does not try {op!r}")


def _chain(x: int, o1: str, y: int, o2: str, z: int) -> Attempt:
    a, b, r = _combine(x, o1, y)
    left, right, v = _combine(r, o2, z)
    inner = f"({a}{o1}{b})"
    expr = f"{inner}{o2}{right}" if left == r else f"{left}{o2}{inner}"
    return Attempt((a, o1, b, r), (left, o2, right, v), expr)


def _orders(nums: list[int], pairings: str) -> list[tuple[int, int, int]]:
    a, b, c = nums
    if pairings not in PAIRINGS:
        raise ValueError(f"pairings {pairings!r}: choose from {list(PAIRINGS)}")
    # + and * commute and "-" takes the smaller from the larger, so a pair's order adds nothing
    return [(a, b, c)] if pairings == "prompt" else [(a, b, c), (a, c, b), (b, c, a)]


def chains(nums: list[int], pairings: str = "prompt") -> list[Attempt]:
    """Every attempt the writer can make: ``(a o1 b) o2 c`` over ``SEARCH_OPS``, with the numbers
    in the order the prompt lists them (9 chains for three numbers), or with ``pairings="all"``
    any two of them first (27 chains)."""
    return [_chain(x, o1, y, o2, z) for x, y, z in _orders(nums, pairings) for o1 in SEARCH_OPS for o2 in SEARCH_OPS]


def random_attempt(nums: list[int], rng: random.Random, pairings: str = "prompt") -> Attempt:
    """One of the writer's chains, the two operations picked at random (and with
    ``pairings="all"`` the pair first; "prompt" draws what it always drew)."""
    orders = _orders(nums, pairings)
    x, y, z = orders[rng.randrange(len(orders))] if len(orders) > 1 else orders[0]
    return _chain(x, rng.choice(SEARCH_OPS), y, rng.choice(SEARCH_OPS), z)


def attempts(nums: list[int], rng: random.Random, cfg: CorpusConfig):
    """The writer's attempts, drawn as it goes (``search_order``).

    A search that repeats itself earns nothing from the repeat, and a 1M-parameter model does
    not learn to avoid repeats from "distinct" searches (its repeat rate by position was the
    same as on random ones: benchmarks/results/RESULTS.md). "cycle" asks less: ``chains`` lists the 9 in the
    order ++ +* +- *+ ** *- -+ -* --, the writer starts at a random one and goes on to the
    next, so each attempt follows from the one before it, and 9 attempts cover every chain.
    (Drawn lazily: with "random", the random stream is the one corpus version 9 always used.)
    """
    if cfg.search_order == "random":
        while True:
            yield random_attempt(nums, rng, cfg.pairings)
    options = chains(nums, cfg.pairings)
    if cfg.search_order == "distinct":
        rng.shuffle(options)
        yield from options
    elif cfg.search_order == "cycle":
        start = rng.randrange(len(options))
        yield from options[start:] + options[:start]


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


def verdict(value: int, target: int) -> str:
    """The check's word: "yes" on the target, else "low" or "high" (a miss, and which way)."""
    return "yes" if value == target else "low" if value < target else "high"


def check_line(att: Attempt, target: int, slip: bool = False, rng: random.Random | None = None) -> tuple[str, bool]:
    """One attempt and its check, e.g. "5*4=20 20+3=23 vs 23 yes", and whether it said "yes".

    A miss says which way it missed ("4+3=7 7*5=35 vs 23 high"): comparing magnitudes is easy
    for a tiny model, and equality is then what is neither low nor high. The check is
    faithful to the value written: a slip can hide a hit, or fake one.
    """
    text, value = work(att, slip, rng)
    word = verdict(value, target)
    return f"{text} vs {target} {word}", word == "yes"


def trace(nums: list[int], target: int, rng: random.Random, cfg: CorpusConfig = CorpusConfig()) -> str:
    """One completion (the text after the prompt's ``<think>``), ending in ``</answer>``."""
    if rng.random() < cfg.direct_guess_rate:
        return f"</think>\n<answer>{random_attempt(nums, rng, cfg.pairings).expr}</answer>"
    persistence = cfg.persistence_high if rng.random() < cfg.diligent_rate else cfg.persistence_low
    lines, last = search(nums, target, rng, cfg, persistence)
    return "\n".join(lines) + f"</think>\n<answer>{last.expr}</answer>"


def search(
    nums: list[int], target: int, rng: random.Random, cfg: CorpusConfig, persistence: float | None
) -> tuple[list[str], Attempt]:
    """The checked attempt lines of one search and its last attempt. It stops at a hit, after
    ``max_attempts``, or (``persistence`` given) after a miss with probability 1 - persistence;
    without one (a practice page) no number is drawn for it, so the random stream stays put."""
    lines: list[str] = []
    for _, att in zip(range(cfg.max_attempts), attempts(nums, rng, cfg)):
        line, hit = check_line(att, target, rng.random() < cfg.slip_rate, rng)
        lines.append(line)
        if rng.random() < cfg.self_check_rate:
            # A careful recomputation: always shown work, never a slip.
            line, hit = check_line(att, target)
            lines.append(f"wait, let me check: {line}")
        if hit or (persistence is not None and rng.random() > persistence):
            break
    return lines, att


def practice_page(nums: list[int], target: int, rng: random.Random, cfg: CorpusConfig = CorpusConfig()) -> str:
    """A problem's statement and a long search on it, as a diligent writer does it: no
    ``<think>``, no answer, the text after ``"Make 19 from 3 5 4.\n"``.

    Attempts run until a hit or ``max_attempts``, with the trace's slips and self-checks. A
    web-trained model has read long worked searches; a tiny one that only ever sees long
    searches as the rare diligent trace writes its later attempts badly (search_probe.txt:
    0.85 exact at the first attempt, 0.45 at the seventh). These pages teach the later
    attempts, and being outside ``<think>`` they leave the traces' choice to search alone.
    """
    return "\n".join(search(nums, target, rng, cfg, persistence=None)[0])


def worksheet(problems: list[dict], rng: random.Random, cfg: CorpusConfig = CorpusConfig()) -> str:
    """A page of checked attempts, each on a problem of ``problems``: no prompt, no answer.

    Written like trace lines (``5*4=20 20+3=23 vs 23 yes``), but half of them reach their
    target, where in a trace few do. A web-trained model has read countless comparisons; a
    tiny one that sees "yes" rarely learns to always say "no" and never learns to compare.
    A "yes" line is a real hit on a problem of ``problems`` (pass the train split: no test
    problem is ever solved here), and a line shows no prompt, so it teaches checking only.
    """
    lines = []
    for _ in range(rng.randint(2, cfg.worksheet_lines)):
        row = problems[rng.randrange(len(problems))]
        nums, target = list(row["nums"]), row["target"]
        options = chains(nums, cfg.pairings)
        hits = [att for att in options if att.value == target]
        misses = [att for att in options if att.value != target]
        pool = hits if (rng.random() < cfg.worksheet_yes and hits) else misses
        lines.append(check_line(rng.choice(pool), target)[0])
    return "\n".join(lines)
