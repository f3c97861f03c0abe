"""Which checkpoint a run resumes from, and the refusal to mix two runs in one folder.

A fresh run into a folder that already holds checkpoints is an error (pass ``--resume`` or
another ``--output_dir``); ``--resume`` takes the newest *complete* checkpoint and removes
newer half-written ones; ``--resume_from_checkpoint PATH`` (TRL's key) takes that one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def _step(folder: Path) -> int | None:
    suffix = folder.name.split("-")[-1]
    return int(suffix) if folder.is_dir() and suffix.isdigit() else None


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint-N folder, newest first."""
    found = [(step, f) for f in Path(output_dir).glob("checkpoint-*") if (step := _step(f)) is not None]
    return sorted(found, reverse=True)


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest checkpoint-N folder whose trainer_state.json was fully written.

    Trainer writes that file after the weights, optimizer and RNG state, so a run killed in
    the middle of saving leaves a folder without it (or with a torn one): such folders are
    skipped here, where ``transformers.trainer_utils.get_last_checkpoint`` would pick them.
    """
    for _, folder in checkpoints(output_dir):
        try:
            json.loads((folder / "trainer_state.json").read_text())
            return folder
        except (OSError, ValueError):
            continue
    return None


def find_checkpoint(output_dir: str | Path, resume: bool, resume_from_checkpoint: str | None = None) -> str | None:
    """The checkpoint to resume from, or None for a fresh run (refusing to mix two runs)."""
    if resume_from_checkpoint:
        return resume_from_checkpoint
    out = Path(output_dir)
    last = last_complete_checkpoint(out)
    if resume:
        if last is None:
            print(f"[tinyzero] --resume: no complete checkpoint in {out} yet, starting from scratch")
        # A half-written checkpoint newer than `last` would be taken for the newest one later.
        last_step = _step(last) if last is not None else -1
        for step, folder in checkpoints(out):
            if step > last_step:
                print(f"[tinyzero] removing incomplete {folder}")
                shutil.rmtree(folder, ignore_errors=True)
        return str(last) if last else None
    if checkpoints(out):
        raise ValueError(
            f"{out} already holds a run with checkpoints. Pass --resume to continue it, or choose "
            "another --output_dir (or delete that one) to start over."
        )
    return None
