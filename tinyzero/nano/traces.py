"""Reading nano search traces back from model output: attempts, checks and hits.

The line format is the one ``tinyzero.nano.corpus`` writes (``3+5=8 8*4=32 vs 19 high``).
Model output is untrusted text: the true value of an attempt is computed by the grader's
safe evaluator (``tinyzero.tasks.grading.calculate``), never by ``eval``.

- ``parse_attempts``: the attempt lines of one trace, each with what was written, its true
  value and its check.
- ``trace_stats`` / ``search_summary``: the search figures of the base-model report and the
  held-out eval (``eval/search/*``): a true hit checked "yes", a miss followed by another
  attempt, arithmetic written correctly, hits, checks faithful to the value written.
- ``with_faithful_checks``: a reward wrapper that docks a completion whose checks contradict
  the values it wrote (``check_penalty`` in a recipe). It uses the same ``faithful`` test as
  the eval's ``search/check_faithful``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from tinyzero.nano import corpus
from tinyzero.tasks.grading import calculate, completion_text, thinking_text

# The same line format, parsed from model output (untrusted text: the value of an attempt
# is computed by the grader's safe evaluator, never by eval).
_LINE = re.compile(
    r"^(?P<check>wait, let me check: )?(?P<a>\d{1,4})(?P<o1>[-+*/])(?P<b>\d{1,4})=(?P<r>\d{1,6}) "
    r"(?P<x>\d{1,6})(?P<o2>[-+*/])(?P<y>\d{1,6})=(?P<written>\d{1,7}) vs (?P<target>\d{1,6}) (?P<verdict>yes|low|high)$"
)


@dataclass(frozen=True)
class AttemptRecord:
    expr: str
    written: int  # the value the model wrote
    value: Fraction | None  # the true value of expr (None: not arithmetic under the whitelist)
    verdict: str  # "yes", or a miss: "low", "high"
    self_check: bool
    target: int = -1  # the target as the line wrote it (-1: not read)

    @property
    def arithmetic_ok(self) -> bool:
        """The value written is the true value of the chain."""
        return self.value is not None and self.value == self.written

    def faithful(self, target: int) -> bool:
        """The check says what the written value is against the problem's target, as the corpus
        writes it: the right target copied, "yes" on it, else "low" or "high". A slip in the
        arithmetic is not a wrong check (the corpus's checks are faithful to the value written),
        a "no" on a written hit is."""
        return self.target == target and self.verdict == corpus.verdict(self.written, target)


def tries(atts: list[AttemptRecord]) -> list[AttemptRecord]:
    """The attempts proper: a self-check recomputes an attempt and is not a new one."""
    return [a for a in atts if not a.self_check]


def parse_attempts(thinking: str) -> list[AttemptRecord]:
    """The attempt lines of a nano trace's thinking; lines of any other shape are skipped."""
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
            ev = calculate(expr)
            out.append(AttemptRecord(expr, int(m["written"]), ev.value, m["verdict"], bool(m["check"]), int(m["target"])))
    return out


def trace_stats(thinking: str, target: int) -> dict[str, float]:
    """Per-trace figures for the base-model report: attempts, hits, hits checked "yes", ..."""
    atts = parse_attempts(thinking)
    hits = [a for a in atts if a.value == target]
    attempts = tries(atts)
    # A self-check recomputes the attempt before it. It is useful when that attempt slipped
    # (its written value is wrong) and the recomputation writes the true value.
    after_slip = [c for prev, c in zip(atts, atts[1:]) if c.self_check and not prev.self_check and not prev.arithmetic_ok]
    return {
        # The decision RL can change most easily: after a miss, try again or give up?
        "noes": sum(a.verdict != "yes" for a in attempts),
        "noes_continued": sum(a.verdict != "yes" for a in attempts[:-1]),
        "attempts": len(attempts),
        "self_checks": len(atts) - len(attempts),
        "arithmetic_ok": sum(a.arithmetic_ok for a in atts),
        "attempt_lines": len(atts),
        "hits": len(hits),
        "hits_said_yes": sum(a.verdict == "yes" for a in hits),
        # An attempt already made earlier in the trace: a search that repeats itself learns nothing new.
        "repeats": len(attempts) - len({a.expr for a in attempts}),
        "self_checks_after_slip": len(after_slip),
        "self_checks_fixed": sum(c.arithmetic_ok for c in after_slip),
        "checks_faithful": sum(a.faithful(target) for a in atts),
    }


def search_summary(thinkings: list[str], targets: list[int]) -> dict[str, float]:
    """The base-model report's search figures over many traces (see ``trace_stats``).

    (Attempts per trace are ``tinyzero.stats.attempts``, reported by eval as ``attempts``.)
    hit_yes_rate is the one RL depends on: how often an attempt that really reaches the
    target is checked "yes". Below ~50%, searching longer earns little. continue_after_no is
    what RL should raise once it does: how often a miss is followed by another attempt.
    self_check_after_slip: the share of self-checks that follow a slipped attempt (the rest
    re-check a correct one: repetition); self_check_fix_rate: of those, how many write the
    true value (a check that catches the slip).
    """
    stats = [trace_stats(t, target) for t, target in zip(thinkings, targets, strict=True)]
    total = {k: sum(s[k] for s in stats) for k in stats[0]} if stats else {}
    lines = total.get("attempt_lines", 0)
    return {
        "search/arithmetic_ok": total.get("arithmetic_ok", 0) / lines if lines else 0.0,
        "search/hits": total.get("hits", 0),
        "search/hit_yes_rate": total.get("hits_said_yes", 0) / total["hits"] if total.get("hits") else 0.0,
        "search/continue_after_no": total["noes_continued"] / total["noes"] if total.get("noes") else 0.0,
        "search/self_check_after_slip": _ratio(total, "self_checks_after_slip", "self_checks"),
        "search/self_check_fix_rate": _ratio(total, "self_checks_fixed", "self_checks_after_slip"),
        "search/repeat_rate": _ratio(total, "repeats", "attempts"),
        "search/check_faithful": _ratio(total, "checks_faithful", "attempt_lines"),
    }


def _ratio(total: dict, num: str, den: str) -> float:
    return total.get(num, 0) / total[den] if total.get(den) else 0.0


def check_penalty(penalty: float) -> None:
    """What a recipe's or a command's ``check_penalty`` may be (a factor's share: 0 to 1)."""
    if not 0.0 <= penalty <= 1.0:
        raise ValueError(f"--check_penalty {penalty}: must lie in [0, 1]")


def wrong_lines(completion: object, target: int, slips: bool = False) -> int:
    """How many attempt lines of a completion's thinking check a value against the target
    wrongly (``AttemptRecord.faithful``), and with ``slips`` also how many write a wrong value."""
    atts = parse_attempts(thinking_text(completion_text(completion)))
    return sum(not a.faithful(target) or (slips and not a.arithmetic_ok) for a in atts)


def with_faithful_checks(reward: Callable[..., list[float]], penalty: float, slips: bool = False) -> Callable[..., list[float]]:
    """``reward`` times ``1 - penalty`` for a completion with any unfaithful check (with
    ``slips``: or any slip in its arithmetic).

    Why: on some runs GRPO drifts into checking a written hit "no" and searching on (hit -> yes
    falling from near 1 to about a third on one grid run: benchmarks/results/RESULTS.md). A run that later
    repeats the hit and answers is paid in full, so nothing holds the check up. The check is
    rule-based, like the answer's grade: the trace's own lines, by the grader's calculator. A
    factor, not a term, keeps the task's order (correct > answered > no answer) intact.
    Off in the recipe: at P 0.5 it held that run in one grid and not in another, with slips
    docked too (benchmarks/results/check_penalty*/).
    """
    check_penalty(penalty)

    def faithful_checks_reward(completions: Sequence, target: Sequence, **kwargs) -> list[float]:
        base = reward(completions, target=target, **kwargs)
        return [r * (1.0 - penalty) if wrong_lines(c, t, slips) else r for r, c, t in zip(base, completions, target, strict=True)]

    return faithful_checks_reward
