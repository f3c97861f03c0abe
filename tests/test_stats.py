"""Unit tests for the per-completion statistics and the metrics file (tinyzero.metrics)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tinyzero import callbacks, runfiles, stats
from tinyzero.tasks import TASKS

GOOD = "5*4=20\n20+3=23 yes</think>\n<answer>(5*4)+3</answer>"


def test_thinking_length_counts_characters_inside_think():
    assert stats.thinking_length(GOOD) == len("5*4=20\n20+3=23 yes")
    assert stats.thinking_length("<think>abc</think><answer>1</answer>") == 3
    assert stats.thinking_length("<answer>1</answer>") == 0


def test_attempts_counts_thinking_lines_with_equals():
    assert stats.attempts(GOOD) == 2
    assert stats.attempts("3+5=8 no\nhmm\n8*4=32 no\n</think><answer>x=1</answer>") == 2
    assert stats.attempts("no equals here</think>") == 0
    # a self-check recomputes an attempt; it is not a new one
    assert stats.attempts("3*5=15 15+4=19 vs 19 yes\nwait, let me check: 3*5=15 15+4=19 vs 19 yes") == 1


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Wait, that is wrong", True),
        ("let me check: 3+4=7", True),
        ("Let me  verify", True),
        ("double-check it", True),
        ("RECHECK", True),
        ("awaiting the answer", False),  # whole words only
        ("let me see", False),
        ("checked twice", False),
    ],
)
def test_self_check_phrases(text, expected):
    assert stats.has_self_check(text) is expected


def test_truncated_needs_full_length_and_no_eos():
    assert stats.is_truncated([5] * 8, 8, [1])
    assert not stats.is_truncated([5] * 7 + [1], 8, [1])  # ended exactly at the limit
    assert not stats.is_truncated([5, 1], 8, [1])
    assert not stats.is_truncated([5] * 3, 8, [1])  # short (a decoded-only record)


def test_analyze_and_summarize():
    rows = [stats.analyze(GOOD), stats.analyze("wait</think>no answer", truncated=True)]
    assert rows[0]["well_formed"] and not rows[1]["well_formed"]
    s = stats.summarize(rows, [True, False])
    assert s["accuracy"] == 0.5
    assert s["format_rate"] == 0.5
    assert s["truncation_rate"] == 0.5
    assert s["self_check_rate"] == 0.5
    assert s["attempts"] == 1.0
    assert set(s) == set(stats.SUMMARY_KEYS)
    with pytest.raises(ValueError):
        stats.summarize(rows, [True])


def test_analyze_accepts_conversational_completions():
    assert stats.analyze([{"role": "assistant", "content": GOOD}]) == stats.analyze(GOOD)


def test_train_metrics_reward_logs_and_rewards_nothing():
    fn = callbacks.train_metrics_reward(TASKS["countdown"], max_completion_length=10, eos_token_ids=[1])
    logged = {}
    completions = [GOOD, "nonsense"]
    rewards = fn(
        completions,
        completion_ids=[[3, 1], [7] * 10],
        log_metric=lambda k, v: logged.__setitem__(k, v),
        nums=[[3, 5, 4], [3, 5, 4]],
        target=[23, 23],
        trainer_state=None,
    )
    assert fn.__name__ == "train_metrics"
    assert rewards == [0.0, 0.0]
    assert logged["train/accuracy"] == 0.5
    assert logged["train/truncation_rate"] == 0.5
    assert set(logged) == {f"train/{k}" for k in stats.SUMMARY_KEYS}


def _state(step, history):
    return SimpleNamespace(is_world_process_zero=True, global_step=step, log_history=history)


def test_metrics_file_rewrites_from_checkpoint_history(tmp_path):
    """On resume the file is rebuilt from the checkpoint's log_history: no lost or extra rows."""
    args = SimpleNamespace(output_dir=str(tmp_path))
    cb = callbacks.MetricsFileCallback()
    # A killed run logged steps 0..3 (and a torn line); its checkpoint has steps 0..2.
    (tmp_path / runfiles.METRICS_FILE).write_text(
        "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(4)) + '{"step": 4, "lo'
    )
    (tmp_path / runfiles.SAMPLES_FILE).write_text(
        "".join(json.dumps({"step": s, "completion": "x"}) + "\n" for s in (0, 2, 4))
    )
    history = [{"step": s, "loss": 1.0} for s in range(3)]
    cb.on_train_begin(args, _state(2, history), None)
    cb.on_log(args, _state(3, history), None, logs={"loss": 0.5, "bad": float("nan")})
    cb.on_log(args, _state(3, history), None, logs={"train_runtime": 1.0})  # the end summary: not a step row
    rows = runfiles.read_jsonl(tmp_path / runfiles.METRICS_FILE)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[-1] == {"step": 3, "loss": 0.5, "bad": None}
    assert [r["step"] for r in runfiles.read_jsonl(tmp_path / runfiles.SAMPLES_FILE)] == [0, 2]


def test_format_log_is_one_short_line():
    line = callbacks.format_log(7, {"reward": 0.1234, "eval/accuracy": 0.25, "eval/thinking_length": 41.6, "loss": 3})
    assert line == "step    7 | reward 0.123 | EVAL acc 0.25 | EVAL think 42"
