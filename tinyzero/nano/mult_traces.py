"""Reading written long multiplication back from model output: slips, checks, redos.

The line format is the one ``tinyzero.nano.mult_corpus`` writes::

    47*6=282 47*80=3760 282+3760=4052
    wait, let me check: 86*7=602 86*40=3440 602+3440=4042 vs 4052 no
    redo: 47*6=282 47*80=3760 282+3760=4042 vs 4042 yes

Model output is untrusted text: numbers are read by a bounded regex and the true value of a
step is computed here from its written operands (``Equation.value``), never by ``eval``.

- ``read(completion)``: the lines of a completion's thinking (``mult_corpus.Line``), how many
  lines could not be read, and the answer.
- ``trace_stats(completion, a, b)``: one trace's figures (below); ``summary`` the rates over
  many, logged as ``mult/*``.

What counts as what:

- a *slip* is a step whose written value is not the true value of its written operands (a
  sum of slipped partial products, added right, is not a new slip);
- a *wrong route* is a work, check or redo line whose result is not ``a * b``;
- a *check* is a "wait, let me check:" line; it *follows a slip* when the value it compares
  with is wrong (there is something to catch), and it *catches* it when it then says "no";
- a *redo ends right* when its result is ``a * b``;
- a trace is *malformed* when it has no well-formed answer (``grading.is_well_formed``) or a
  non-blank thinking line that is not a route.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tinyzero.nano.mult_corpus import CHECK, REDO, Equation, Line
from tinyzero.tasks.grading import completion_text, extract_answer, is_well_formed, thinking_text
from tinyzero.tasks.multiplication import parse_integer

# Bounded digit runs: a model can write a thousand digits, and int() of those is slow or refused.
_NUM = r"\d{1,12}"
_STEP = rf"{_NUM}[*+]{_NUM}={_NUM}"
_LINE = re.compile(
    rf"^(?P<prefix>{re.escape(CHECK)}|{re.escape(REDO)})?(?P<steps>{_STEP}(?: {_STEP})*)"
    rf"(?: vs (?P<compared>{_NUM}) (?P<verdict>yes|no))?$"
)
_STEP_PARTS = re.compile(rf"({_NUM})([*+])({_NUM})=({_NUM})")
_KIND = {None: "work", CHECK: "check", REDO: "redo"}


@dataclass(frozen=True)
class Reading:
    lines: tuple[Line, ...]
    unread_lines: int  # non-blank thinking lines that are not routes
    answer: int | None  # the answer block's integer (None: none, or not an integer)
    well_formed: bool

    @property
    def malformed(self) -> bool:
        return self.unread_lines > 0 or not self.well_formed or self.answer is None


def parse_line(text: str) -> Line | None:
    """One route line, or None when the text is not one."""
    m = _LINE.match(text.strip())
    if m is None:
        return None
    steps = tuple(Equation(int(x), op, int(y), int(w)) for x, op, y, w in _STEP_PARTS.findall(m["steps"]))
    compared = None if m["compared"] is None else int(m["compared"])
    return Line(_KIND[m["prefix"]], steps, compared, m["verdict"])


def read(completion: object) -> Reading:
    """A completion (the text after the prompt's ``<think>``, or a TRL message list) read back."""
    text = completion_text(completion)
    lines, unread = [], 0
    for raw in thinking_text(text).split("\n"):
        if not raw.strip():
            continue
        line = parse_line(raw)
        if line is None:
            unread += 1
        else:
            lines.append(line)
    answer = extract_answer(text)
    return Reading(tuple(lines), unread, None if answer is None else parse_integer(answer), is_well_formed(text))


def trace_stats(completion: object, a: int, b: int) -> dict[str, int]:
    """One trace's counts (see the module docstring for the definitions)."""
    r = read(completion)
    product = int(a) * int(b)
    steps = [eq for line in r.lines for eq in line.equations]
    checks = [line for line in r.lines if line.kind == "check"]
    redos = [line for line in r.lines if line.kind == "redo"]
    after_slip = [c for c in checks if c.compared is not None and c.compared != product]
    right = r.answer == product
    return {
        "right": int(right),
        "malformed": int(r.malformed),
        "lines": len(r.lines),
        "steps": len(steps),
        "slips": sum(eq.slipped for eq in steps),
        "wrong_routes": sum(line.value != product for line in r.lines),
        "checks": len(checks),
        "checks_after_slip": len(after_slip),
        "checks_caught": sum(c.verdict == "no" for c in after_slip),
        # A check is faithful when it says "yes" exactly when its result equals the value compared.
        "checks_faithful": sum(c.compared is not None and c.verdict == ("yes" if c.value == c.compared else "no") for c in checks),
        "redos": len(redos),
        "redos_right": sum(line.value == product for line in redos),
        "thinking_chars": len(thinking_text(completion_text(completion))),
    }


def summary(completions: Sequence[object], a: Sequence[int], b: Sequence[int]) -> dict[str, float]:
    """Rates over many traces, as the recipe logs them.

    - ``mult/accuracy``: traces whose answer is ``a * b`` (the grader's rule, read here again);
    - ``mult/slip_rate``: slipped steps per written step; ``mult/trace_slip_rate``: traces with one;
    - ``mult/check_rate``: traces with a check (the figure the base model keeps at most ~0.1);
    - ``mult/check_after_slip``: checks whose compared value is wrong, per check;
    - ``mult/check_catch_rate``: of those, the share that say "no";
    - ``mult/slip_checked_right``: traces with a check after a slip that end right, per such trace;
    - ``mult/redo_right``: redos whose result is right, per redo;
    - ``mult/check_faithful``: checks whose verdict matches their own numbers;
    - ``mult/thinking_chars``, ``mult/malformed``: mean thinking length, share malformed.
    """
    rows = [trace_stats(c, x, y) for c, x, y in zip(completions, a, b, strict=True)]
    if not rows:
        raise ValueError("summary: no completions")
    n = len(rows)
    total = {k: sum(r[k] for r in rows) for k in rows[0]}
    slipped_checked = [r for r in rows if r["checks_after_slip"]]
    return {
        "mult/accuracy": total["right"] / n,
        "mult/slip_rate": _ratio(total["slips"], total["steps"]),
        "mult/trace_slip_rate": sum(r["slips"] > 0 for r in rows) / n,
        "mult/check_rate": sum(r["checks"] > 0 for r in rows) / n,
        "mult/check_after_slip": _ratio(total["checks_after_slip"], total["checks"]),
        "mult/check_catch_rate": _ratio(total["checks_caught"], total["checks_after_slip"]),
        "mult/slip_checked_right": _ratio(sum(r["right"] for r in slipped_checked), len(slipped_checked)),
        "mult/redo_right": _ratio(total["redos_right"], total["redos"]),
        "mult/check_faithful": _ratio(total["checks_faithful"], total["checks"]),
        "mult/thinking_chars": total["thinking_chars"] / n,
        "mult/malformed": total["malformed"] / n,
    }


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0
