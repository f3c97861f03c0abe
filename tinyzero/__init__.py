"""tinyzero: a small, honest reproduction of DeepSeek R1-Zero's "aha moment".

GRPO with rule-based rewards on toy tasks (Countdown and multiplication), TinyZero style,
on Hugging Face TRL. The package, one concern per place::

    tinyzero/
      tasks/             the tasks, with no torch
        grading.py         tags, safe ast-based arithmetic (never eval), Verdict
        prompts.py         the R1-Zero base / chat framing
        rewards.py         TinyZero's 1.0 / 0.1 / 0.0 score, format_reward, control rewards
        countdown.py       Countdown: generator, solver, prompts, grade(), TASK
        multiplication.py  multiplication: the same parts
        base.py            the Task interface; tasks/__init__.py: the TASKS registry
        data.py            shipped splits or a user's parquet/JSONL, validated row by row
      nano/              tinyzero's own ~1M-parameter base model
        tokenizer.py       characters + number tokens
        corpus.py          the pretraining corpus writer: search traces of mixed quality
        traces.py          reading those traces back from model output (eval/search/*)
        build.py           PretrainConfig, the Qwen2 config, pretraining, the cache by config hash
      trainer.py         the one seam to TRL: TRL's GRPO/RLOO trainers with tinyzero's sampler,
                         sampling threads, length buckets and timing (every TRL internal it uses)
      qwen.py            the Qwen2.5 tokenizer built offline, and a tiny random stand-in of the 1.5B
      models.py          loads "nano", a local folder or a hub id
      generation.py      generate() and the one evaluate_model()
      fastgen.py         a lean CPU sampler for small Qwen2 models (falls back to HF otherwise)
      buckets.py         the update scored in length buckets (same loss)
      stats.py           per-completion statistics, pass@k
      callbacks.py       held-out eval, metrics.jsonl, the console line
      runfiles.py        a run's files: metrics.jsonl, samples.jsonl, summary.json
      checkpoints.py     which checkpoint a run resumes from
      cli.py, paths.py   the one argument parser; where recipes/ and runs/ are
      train.py pretrain.py eval.py sample.py plot.py distill.py   the commands (python -m tinyzero.X)

``train.build_trainer`` builds the trainer the main command trains. Importing ``tinyzero``
imports none of the modules (and so no torch/transformers/datasets); import the one you need,
e.g. ``from tinyzero.tasks import TASKS``.
"""

__version__ = "0.1.0"

import os as _os
import platform as _platform

# The same bits on every x86-64 CPU. torch's CPU kernels are chosen by instruction set at the
# first op (AVX2 or AVX-512, ATEN_CPU_CAPABILITY), and MKL chooses its own (MKL_CBWR): two
# machines that choose differently round differently, and thousands of pretraining steps turn
# that into another base model. AVX2 is the level nearly every x86-64 CPU has, and costs this
# model little (the measurement: benchmarks/results/RESULTS.md). Read lazily, so this works
# while no torch op has run yet; a value set by the user wins. Not x86 (an ARM laptop):
# nothing is pinned, and a rebuild there is another draw of the base model.
IS_X86_64 = _platform.machine().lower() in ("x86_64", "amd64")
PINNED_NUMERICS = {"cpu_capability": "AVX2", "mkl_cbwr": "AVX2"}  # as a build reports them (pretrain.json)
if IS_X86_64:
    _os.environ.setdefault("ATEN_CPU_CAPABILITY", PINNED_NUMERICS["cpu_capability"].lower())
    _os.environ.setdefault("MKL_CBWR", PINNED_NUMERICS["mkl_cbwr"])

# OpenMP threads that finish early sleep instead of spinning: beside another busy process on a
# small machine, spinning threads wait on each other and an update at two threads gets slower
# than at one; sleeping ones cost nothing when the machine is idle (benchmarks/results/thread_check.md).
# Read when torch loads its OpenMP library, so it takes effect only when tinyzero is imported
# before torch, as in every tinyzero command.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
