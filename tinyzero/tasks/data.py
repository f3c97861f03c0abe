"""Load task data as a ``datasets.Dataset``: the shipped splits or a user's own file.

``load_task_data("countdown", "train")`` reads ``data/countdown/train.jsonl`` (written by
``python data/prepare.py``) after checking its sha256 against the manifest beside it.
``load_task_data("path/to/file.parquet")`` (or ``.jsonl``) reads a user's file, e.g. a copy of
the public Countdown-Tasks-3to4 (columns ``target``, ``nums``); the task is told from the
columns unless ``task=`` says it.

Every row is validated by its task (``tinyzero.tasks.Task.validate``): a bad file or row
raises ``DataError`` naming the file, the row (1-based) and what is wrong. Solvability of a
user's Countdown problems is not checked. Two columns are added: ``task`` (the task name, so
rewards and evaluation can dispatch) and ``prompt`` (from the task's ``template``).

Files are read in memory (json / pyarrow) and handed to ``datasets``; nothing is written to
the Hugging Face cache. ``TINYZERO_DATA_DIR`` overrides where the shipped data lives.

Try it::

    python -m tinyzero.tasks.data countdown test
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from datasets import Dataset

from tinyzero.paths import REPO
from tinyzero.tasks import TASKS, detect_task
from tinyzero.tasks.prompts import TEMPLATES

SPLITS = ("train", "test")


class DataError(ValueError):
    """A data file or row that tinyzero cannot use; the message says which and why."""


def data_dir() -> Path:
    """Where the shipped datasets live: the repository's ``data/`` folder."""
    override = os.environ.get("TINYZERO_DATA_DIR")
    return Path(override) if override else REPO / "data"


def shipped_datasets() -> list[str]:
    root = data_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/train.manifest.json"))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_task_data(
    name_or_path: str | Path,
    split: str = "train",
    *,
    template: str = "base",
    task: str | None = None,
) -> Dataset:
    """A validated Dataset with the task's columns plus ``task`` and ``prompt``.

    ``name_or_path``: a shipped dataset name (``shipped_datasets()``), or a path to a
    ``.jsonl`` / ``.parquet`` file (then ``split`` is ignored). ``template``: "base", "chat"
    or "nano" (see the task's ``prompt``). ``task``: the task of a user file whose columns
    do not tell it; for a shipped dataset the manifest says it, and a different ``task`` is
    an error (a command never grades one task's data with another's grader).
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
    source = Path(name_or_path)
    if source.suffix in (".jsonl", ".parquet") or source.is_file():
        path, manifest = source, None
    else:
        path, manifest = _shipped(str(name_or_path), split)
    rows = _read_rows(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    if manifest is not None:
        if task not in (None, manifest["task"]):
            raise DataError(f"{path}: holds {manifest['task']} problems, not {task}")
        task = manifest["task"]
    if task is None:
        task = detect_task(list(rows[0][1]))
        if task is None:
            cols = sorted(rows[0][1])
            raise DataError(f"{path}: cannot tell the task from columns {cols}; pass task=")
    if task not in TASKS:
        raise DataError(f"{path}: unknown task {task!r}; expected one of {sorted(TASKS)}")
    spec = TASKS[task]
    out = []
    for i, row in rows:
        problem = spec.validate(row)
        if problem is not None:
            raise DataError(f"{path}: row {i}: {problem}")
        out.append({**row, "task": task, "prompt": spec.prompt(row, template)})
    return Dataset.from_list(out)


def _shipped(name: str, split: str) -> tuple[Path, dict]:
    folder = data_dir() / name
    if not (folder / "train.manifest.json").is_file():
        raise DataError(
            f"no shipped dataset {name!r} in {data_dir()} (have: {shipped_datasets()}); "
            "run `python data/prepare.py`, or pass a path to a .jsonl/.parquet file"
        )
    if split not in SPLITS:
        raise DataError(f"{folder}: unknown split {split!r}; expected one of {SPLITS}")
    path, manifest_path = folder / f"{split}.jsonl", folder / f"{split}.manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        expected = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{manifest_path}: unreadable manifest ({e})") from e
    if not path.is_file():
        raise DataError(f"{path}: missing; run `python data/prepare.py`")
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path}: sha256 {actual[:12]}... does not match its manifest ({expected[:12]}...); "
            "the file was changed: re-run `python data/prepare.py`"
        )
    return path, manifest


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    """(row number, row) pairs; a jsonl row's number is its line number."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # noqa: PLC0415 (a dependency of datasets, only for parquet files)

        try:
            return list(enumerate(pq.read_table(path).to_pylist(), start=1))
        except Exception as e:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from e
    rows = []
    with open(path, encoding="utf-8") as f:
        try:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}: row {i}: invalid JSON ({e.msg})") from e
                if not isinstance(row, dict):
                    raise DataError(f"{path}: row {i}: not a JSON object")
                rows.append((i, row))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e.reason})") from e
    return rows


if __name__ == "__main__":
    ds = load_task_data(*sys.argv[1:3])
    print(ds)
    print(ds[0])
