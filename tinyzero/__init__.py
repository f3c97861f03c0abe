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
