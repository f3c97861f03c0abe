"""tinyzero: a small, honest reproduction of DeepSeek R1-Zero's "aha moment".

GRPO with rule-based rewards on toy tasks (Countdown and multiplication), TinyZero style.
The modules, each one concern:

- ``grader``: completion text, ``<think>``/``<answer>`` tags, safe exact arithmetic, ``Verdict``.
- ``countdown``, ``multiplication``: problems, prompts and the ``grade`` that defines correct.
- ``rewards``: TRL reward functions built on ``grade``.
- ``tasks``: the ``TASKS`` registry that training and evaluation use.
- ``data``: loading the shipped splits (``data/prepare.py``) or a user's file as a Dataset.

Importing ``tinyzero`` imports none of them (and so no torch/transformers/datasets);
import the module you need, e.g. ``from tinyzero.tasks import TASKS``.
"""

__version__ = "0.1.0"

import os as _os
import platform as _platform

# The same bits on every x86-64 CPU. torch's CPU kernels are chosen by instruction set at the
# first op (AVX2 or AVX-512, ATEN_CPU_CAPABILITY), and MKL chooses its own (MKL_CBWR): two
# machines that choose differently round differently, and 6000 steps of pretraining turn
# that into another model (2026-12-02, an AVX-512 machine: rebuild loss 0.783 vs the shipped
# 0.730; with both pinned to AVX2, the bits of the AVX2 machine that built it). AVX2 is the
# level nearly every x86-64 CPU since 2013 has; on this model it costs ~2% (300 pretraining
# steps, 46.2 s vs 45.3 s). Read lazily, so this works while no torch op has run yet; a value
# set by the user wins. Not x86 (an ARM laptop): nothing is pinned, and a rebuild there is
# another draw of the base model.
IS_X86_64 = _platform.machine().lower() in ("x86_64", "amd64")
PINNED_NUMERICS = {"cpu_capability": "AVX2", "mkl_cbwr": "AVX2"}  # as a build reports them (pretrain.json)
if IS_X86_64:
    _os.environ.setdefault("ATEN_CPU_CAPABILITY", PINNED_NUMERICS["cpu_capability"].lower())
    _os.environ.setdefault("MKL_CBWR", PINNED_NUMERICS["mkl_cbwr"])

# OpenMP threads that finish early sleep instead of spinning: with one other busy process on a
# 2-core machine, spinning threads wait on each other (a GRPO update at two threads: 2.12 s
# spinning, 1.67 s sleeping, 1.63 s at one thread; idle 0.93 vs 0.96 s; benchmarks/
# thread_check.py, 2026-12-02). Read when torch loads its OpenMP library, so it takes effect
# only when tinyzero is imported before torch, as in every tinyzero command.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
