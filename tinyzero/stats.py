"""Per-completion statistics: pure functions of the text, shared by training, eval and notebooks.

    thinking_length    characters of reasoning inside ``<think>`` (``grading.thinking_text``)
    completion_length  characters of the whole completion
    attempts           lines of the thinking that contain "=" and no self-check phrase
                       (one tried calculation each)
    self_check         says "wait", "let me check", "let me verify", "double-check" or
                       "recheck" (case-insensitive, whole words)
    well_formed        ``<think>...</think><answer>...</answer>`` (``grading.is_well_formed``)
    truncated          hit max_completion_length without an end-of-sequence token

``summarize`` turns a batch of them (and the grades) into the figures logged as ``eval/*``
and ``train/*`` (``SUMMARY_KEYS``); ``pass_at_k`` is the unbiased estimator of Chen et al.
(2021): with n samples of which c are correct, pass@k = 1 - C(n - c, k) / C(n, k).
No torch here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tinyzero.tasks.grading import completion_text, is_well_formed, thinking_text

# The statistics logged under eval/ and train/, in display order.
SUMMARY_KEYS = (
    "accuracy",
    "thinking_length",
    "completion_length",
    "format_rate",
    "truncation_rate",
    "self_check_rate",
    "attempts",
)

_SELF_CHECK = re.compile(r"\b(?:wait|let\s+me\s+check|let\s+me\s+verify|double-check|recheck)\b", re.IGNORECASE)


def thinking_length(text: str) -> int:
    """Characters of reasoning inside the think section."""
    return len(thinking_text(text))


def attempts(text: str) -> int:
    """Lines of the thinking that contain "=", self-checks not counted: one tried calculation each.

    The one definition of "attempts" in tinyzero (training metrics, eval and the base-model
    report alike). It needs no knowledge of the trace format, so it works for any model.
    """
    return sum("=" in line and not _SELF_CHECK.search(line) for line in thinking_text(text).splitlines())


def has_self_check(text: str) -> bool:
    """Whether the completion re-examines itself ("wait", "let me check", ...)."""
    return bool(_SELF_CHECK.search(text))


def is_truncated(completion_ids: Sequence[int], max_completion_length: int, eos_token_ids: Iterable[int]) -> bool:
    """Cut off by the length limit: as long as allowed and with no end-of-sequence token."""
    eos = set(eos_token_ids)
    return len(completion_ids) >= max_completion_length and not any(t in eos for t in completion_ids)


def analyze(completion: Any, truncated: bool = False) -> dict[str, Any]:
    """All per-completion statistics of one completion (a string or TRL message list)."""
    text = completion_text(completion)
    return {
        "thinking_length": thinking_length(text),
        "completion_length": len(text),
        "attempts": attempts(text),
        "self_check": has_self_check(text),
        "well_formed": is_well_formed(text),
        "truncated": bool(truncated),
    }


def summarize(stats: Sequence[dict[str, Any]], correct: Sequence[bool]) -> dict[str, float]:
    """Means over a batch of ``analyze`` results and grades, keyed by ``SUMMARY_KEYS``."""
    n = len(stats)
    if n == 0 or len(correct) != n:
        raise ValueError(f"need one grade per completion, got {len(correct)} for {n}")

    def mean(key: str) -> float:
        return sum(float(s[key]) for s in stats) / n

    return {
        "accuracy": sum(map(bool, correct)) / n,
        "thinking_length": mean("thinking_length"),
        "completion_length": mean("completion_length"),
        "format_rate": mean("well_formed"),
        "truncation_rate": mean("truncated"),
        "self_check_rate": mean("self_check"),
        "attempts": mean("attempts"),
    }


def rows_from_columns(columns: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-completion rows from the column lists TRL passes to reward functions as kwargs."""
    cols = {k: v for k, v in columns.items() if isinstance(v, (list, tuple)) and len(v) == n}
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
