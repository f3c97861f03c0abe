"""The main command's console: one progress bar, a line per held-out eval, nothing else per step.

Run: pytest tests/test_console.py
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from tinyzero import callbacks, runfiles


def _state(step: int, max_steps: int = 100):
    return SimpleNamespace(is_world_process_zero=True, global_step=step, max_steps=max_steps, log_history=[])


def test_the_console_prints_evals_only_and_keeps_the_latest_figures_on_the_bar(capsys):
    cb = callbacks.CompactProgressCallback()
    args = SimpleNamespace()
    # step 0's eval is logged before the bar exists (HeldOutEvalCallback.on_train_begin)
    cb.on_log(args, _state(0), None, logs={"eval/accuracy": 0.064, "eval/thinking_length": 31.4, "time/eval": 3.2})
    assert capsys.readouterr().out == "held-out eval, step 0/100: accuracy 0.064 | thinking 31 chars | took 3 s\n"

    cb.on_train_begin(args, _state(0), None)
    cb.on_log(args, _state(1), None, logs={"loss": 0.1, "reward": 0.1937, "train/accuracy": 0.105, "train/thinking_length": 29.7})
    cb.on_log(args, _state(2), None, logs={"loss": 0.2})  # a step that does not sample: no figures, no line
    bar = cb.training_bar
    assert bar.postfix == "reward 0.194 | acc 0.105 | think 30"
    cb.on_log(args, _state(25), None, logs={"loss": 0.1, "eval/accuracy": 0.15, "eval/format_rate": 0.99})
    cb.on_log(args, _state(100), None, logs={"train_runtime": 170.0})  # the end-of-training dict: not a step row
    cb.on_train_end(args, _state(100), None)
    captured = capsys.readouterr()
    printed = [ln for ln in (captured.out + captured.err).replace("\r", "\n").splitlines() if "%|" not in ln and ln.strip()]
    assert printed == ["held-out eval, step 25/100: accuracy 0.150 | well-formed 0.99"]
    assert "train_runtime" not in captured.out + captured.err
    assert not re.search(r"step +2\b", captured.out + captured.err)


def test_the_closing_summary_names_the_plot(tmp_path):
    history = [{"step": 0, "eval/accuracy": 0.1, "eval/thinking_length": 20.0},
               {"step": 3, "eval/accuracy": 0.2, "eval/thinking_length": 40.0}]
    text = runfiles.format_summary(runfiles.summarize_run(history, 3, tmp_path, 12.0))
    assert f"{tmp_path}/plots/overview.png" in text
    assert "0.100 (step 0) -> 0.200 (step 3)" in text
