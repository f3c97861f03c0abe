"""A pretraining corpus for the nano model on multiplication: written long multiplication of
mixed quality, in the nano template (``tinyzero.tasks.multiplication.prompt(..., "nano")``)::

    Multiply 47 by 86.
    <think>47*6=282 47*80=3760 282+3760=4042</think>
    <answer>4042</answer>

and, from the few writers who check by another route (the operands swapped)::

    Multiply 47 by 86.
    <think>47*6=282 47*80=3760 282+3760=4052
    wait, let me check: 86*7=602 86*40=3440 602+3440=4042 vs 4052 no
    redo: 47*6=282 47*80=3760 282+3760=4042 vs 4042 yes</think>
    <answer>4042</answer>

The task's size (``DIGITS_A`` x ``DIGITS_B`` = 2 x 2 digits) is chosen for the nano tokenizer,
which makes every number below 1000 one token and cuts longer digit runs into groups of three
from the left. A partial product of a 2-digit number by one digit is at most 891: one token,
a lookup among 810 facts that every training split contains, and "47*80=3760" is that token
plus "0". The sum is where a ~1M-parameter model has to work: "282+3760=4042" adds numbers
whose digit groups do not line up ("376"+"0", "404"+"2"), so it gets a share right and slips
often, which gives a check something to catch. Smaller (a 1-digit multiplier) would be a
single lookup with no sum (and only 810 problems); a 3-digit factor makes its partial products
3-digit-by-1-digit lookups among 8100 facts, mostly unseen; with a 3-digit multiplier the
swapped check would use them.

How a trace is written:

- the work line: one partial product per digit of the multiplier, ones first, then the sum
  of the partial products as written (a chain of additions when there are more than two);
- every written value slips at ``slip_rate``: one digit off by one, as a dropped or an extra
  carry. A later step uses the values as written, slips included;
- a few writers (``check_rate``) then check by another route, the operands swapped, and
  compare the check's result with the value they wrote ("vs 4052 no"). The comparison is
  faithful to what is written: the check recomputes by its own route (and may slip itself),
  and says "yes" exactly when the two written values are equal;
- on a "no" the writer redoes the first route and compares with the check's value, up to
  ``max_redos`` times; the answer is the last route's value, right or wrong;
- a few traces are a bare answer from memory (``direct_guess_rate``), which slips more often.

Beside the traces, drill pages (``drill_rate`` of the documents) list the steps of train
problems, correct, with no prompt and no answer: the times table and the sums that a
web-trained model has read many times and a tiny one needs to see.

There is no filtering to correct answers and no text that says checking pays: a checking
writer slips as often as any other, and nothing marks which writers check until they do.
``tinyzero.nano.mult_traces`` reads the same format back from model output.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

DIGITS_A = 2  # the first factor's digits (see the module docstring for why these sizes)
DIGITS_B = 2  # the multiplier's digits
CHECK = "wait, let me check: "  # one nano token; tinyzero.stats counts it as a self-check
REDO = "redo: "
PREFIX = {"work": "", "check": CHECK, "redo": REDO}
KINDS = tuple(PREFIX)
OPS = "*+"


@dataclass(frozen=True)
class MultCorpusConfig:
    """Knobs of the long-multiplication writer."""

    slip_rate: float = 0.05  # each written value of a route, one digit off by one
    check_rate: float = 0.05  # writers who check by the swapped route (the base model's check rate follows it)
    max_redos: int = 2  # redos of the first route after a check that disagrees
    direct_guess_rate: float = 0.05  # a bare answer, no working
    guess_slip_rate: float = 0.5  # a bare answer from memory slips more often than a written step
    drill_rate: float = 0.3  # documents that are drill pages, not traces
    drill_lines: int = 8  # steps per drill page: 2 to this many

    def __post_init__(self):
        for name in ("slip_rate", "check_rate", "direct_guess_rate", "guess_slip_rate", "drill_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} {value}: must lie in [0, 1]")
        if self.max_redos < 0:
            raise ValueError(f"max_redos {self.max_redos}: must be 0 or more")
        if self.drill_lines < 2:
            raise ValueError(f"drill_lines {self.drill_lines}: must be 2 or more")


@dataclass(frozen=True)
class Equation:
    """One written step, ``x op y = written``."""

    x: int
    op: str  # "*" or "+"
    y: int
    written: int

    @property
    def value(self) -> int:
        """The true value of ``x op y``."""
        return self.x * self.y if self.op == "*" else self.x + self.y

    @property
    def slipped(self) -> bool:
        return self.written != self.value

    def text(self) -> str:
        return f"{self.x}{self.op}{self.y}={self.written}"


@dataclass(frozen=True)
class Line:
    """One route through the product: the work, a check or a redo, and (check and redo) the
    value it was compared with and the verdict written."""

    kind: str  # "work", "check" or "redo"
    equations: tuple[Equation, ...]
    compared: int | None = None
    verdict: str | None = None  # "yes" or "no"

    @property
    def value(self) -> int:
        """The route's result as written: its last step."""
        return self.equations[-1].written

    def text(self) -> str:
        body = PREFIX[self.kind] + " ".join(eq.text() for eq in self.equations)
        return body if self.compared is None else f"{body} vs {self.compared} {self.verdict}"


@dataclass(frozen=True)
class Trace:
    """What one writer wrote for ``a`` x ``b``: its lines and its answer."""

    a: int
    b: int
    lines: tuple[Line, ...]
    answer: int

    def text(self) -> str:
        """The completion: the text after the prompt's ``<think>``."""
        return "\n".join(line.text() for line in self.lines) + f"</think>\n<answer>{self.answer}</answer>"


def slip(value: int, rng: random.Random) -> int:
    """``value`` with one digit off by one (a dropped or an extra carry), never negative."""
    place = 10 ** rng.randrange(len(str(value)))
    sign = rng.choice((-1, 1))
    wrong = value + sign * place
    return wrong if wrong >= 0 else value + place


def _write(x: int, op: str, y: int, rng: random.Random, slip_rate: float) -> Equation:
    true = x * y if op == "*" else x + y
    return Equation(x, op, y, slip(true, rng) if rng.random() < slip_rate else true)


def route(x: int, y: int, rng: random.Random, slip_rate: float) -> tuple[Equation, ...]:
    """Long multiplication of ``x`` by ``y`` as written: ``x`` times each digit of ``y`` at its
    place, ones first, then the running sum of the partial products as written."""
    digits = str(y)
    partials = [
        _write(x, "*", int(d) * 10**place, rng, slip_rate) for place, d in enumerate(reversed(digits))
    ]
    steps = list(partials)
    total = partials[0].written
    for p in partials[1:]:
        step = _write(total, "+", p.written, rng, slip_rate)
        steps.append(step)
        total = step.written
    return tuple(steps)


def verdict(value: int, compared: int) -> str:
    return "yes" if value == compared else "no"


def trace(a: int, b: int, rng: random.Random, cfg: MultCorpusConfig = MultCorpusConfig()) -> Trace:
    """One writer's trace for ``a`` x ``b`` (seeded by ``rng``)."""
    if rng.random() < cfg.direct_guess_rate:
        guess = a * b
        return Trace(a, b, (), slip(guess, rng) if rng.random() < cfg.guess_slip_rate else guess)
    work = Line("work", route(a, b, rng, cfg.slip_rate))
    lines = [work]
    if rng.random() < cfg.check_rate:
        steps = route(b, a, rng, cfg.slip_rate)
        check = Line("check", steps, work.value, verdict(steps[-1].written, work.value))
        lines.append(check)
        last = check
        for _ in range(cfg.max_redos):
            if last.verdict == "yes":
                break
            steps = route(a, b, rng, cfg.slip_rate)
            last = Line("redo", steps, check.value, verdict(steps[-1].written, check.value))
            lines.append(last)
    # The answer is the last result of the first route: the work, or the last redo.
    answer = [line for line in lines if line.kind != "check"][-1].value
    return Trace(a, b, tuple(lines), answer)


def drill_page(rows: Sequence[dict], rng: random.Random, cfg: MultCorpusConfig = MultCorpusConfig()) -> str:
    """Correct steps of problems of ``rows`` (pass the train split: a test problem's sum is its
    answer), one per line, with no prompt and no answer."""
    lines = []
    for _ in range(rng.randint(2, cfg.drill_lines)):
        row = rows[rng.randrange(len(rows))]
        x, y = (row["a"], row["b"]) if rng.random() < 0.5 else (row["b"], row["a"])
        lines.append(rng.choice(route(x, y, rng, 0.0)).text())
    return "\n".join(lines)


def documents(rows: Sequence[dict], n: int, seed: int, cfg: MultCorpusConfig = MultCorpusConfig()) -> list[str]:
    """The corpus: ``n`` documents, each ending in the nano eos; a prompt and a trace, or a drill
    page (``drill_rate``). ``rows`` are problems ``{"a", "b"}`` (the train split only). The same
    arguments give the same documents."""
    from tinyzero.nano.tokenizer import EOS  # noqa: PLC0415 (transformers is heavy)
    from tinyzero.tasks.multiplication import prompt  # noqa: PLC0415

    if not rows:
        raise ValueError("documents: no problems to write traces for")
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        if rng.random() < cfg.drill_rate:
            docs.append(drill_page(rows, rng, cfg) + EOS)
            continue
        row = rows[rng.randrange(len(rows))]
        docs.append(prompt(row["a"], row["b"], "nano") + trace(row["a"], row["b"], rng, cfg).text() + EOS)
    return docs


# The nano task's data split, as ``data/prepare.py`` will write it once its ``DATASETS`` lists
# "multiplication_nano" with this entry; until then ``write_split`` writes the same bytes. The
# files are not in the repository yet: tests/test_data.py names every shipped dataset.
SPLIT_NAME = "multiplication_nano"
SPLIT = {
    "task": "multiplication",
    "params": {"digits_a": DIGITS_A, "digits_b": DIGITS_B},
    "rows": {"test": 500, "train": 20000},
}


def build_split() -> dict[str, tuple[bytes, dict]]:
    """{split: (jsonl bytes, manifest)} of the nano split, by ``data/prepare.py``'s own ``build``
    (seeded: the same bytes every time), without touching the disk."""
    import importlib.util  # noqa: PLC0415

    from tinyzero.paths import REPO  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("_tinyzero_data_prepare", REPO / "data" / "prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    prepare.DATASETS.setdefault(SPLIT_NAME, SPLIT)
    if prepare.DATASETS[SPLIT_NAME] != SPLIT:
        raise ValueError(f"data/prepare.py lists {SPLIT_NAME} as {prepare.DATASETS[SPLIT_NAME]}, not {SPLIT}")
    return prepare.build(SPLIT_NAME)


def write_split(root=None) -> None:
    """Write ``data/multiplication_nano/{train,test}.jsonl`` and manifests (``python -m
    tinyzero.nano.mult_corpus``), as ``python data/prepare.py`` writes a dataset."""
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from tinyzero.paths import REPO  # noqa: PLC0415

    folder = Path(root or REPO / "data") / SPLIT_NAME
    folder.mkdir(parents=True, exist_ok=True)
    for split, (blob, manifest) in build_split().items():
        (folder / f"{split}.jsonl").write_bytes(blob)
        (folder / f"{split}.manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        print(f"wrote {folder / split}.jsonl: {manifest['rows']} rows")


if __name__ == "__main__":
    write_split()
