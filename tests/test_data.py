"""Tests for the shipped data (data/prepare.py) and tinyzero.data. Run: pytest tests/test_data.py"""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinyzero.tasks import TASKS
from tinyzero.tasks.data import (
    DataError,
    data_dir,
    load_task_data,
    sha256_file,
    shipped_datasets,
)

SHIPPED = ["countdown", "countdown_nano", "multiplication"]


def manifest(name: str, split: str) -> dict:
    return json.loads((data_dir() / name / f"{split}.manifest.json").read_text())


def test_shipped_datasets_present():
    assert shipped_datasets() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_splits_load_and_match_manifests(name):
    splits = {}
    for split in ("train", "test"):
        m = manifest(name, split)
        assert sha256_file(data_dir() / name / f"{split}.jsonl") == m["sha256"]
        ds = load_task_data(name, split)
        assert len(ds) == m["rows"] > 0
        assert set(ds["task"]) == {m["task"]}
        splits[split] = ds
    task = TASKS[m["task"]]
    rows = {split: ds.to_list() for split, ds in splits.items()}
    train_keys = {task.key(r) for r in rows["train"]}
    test_keys = [task.key(r) for r in rows["test"]]
    assert len(train_keys) == len(rows["train"]) and len(set(test_keys)) == len(test_keys)
    assert not train_keys & set(test_keys), "a test problem appears in train"
    if m["task"] == "multiplication":  # the commuted form counts as the same problem
        assert not train_keys & {(b, a) for a, b in test_keys}
    for r in rows["train"] + rows["test"]:
        assert task.grade(f"</think><answer>{task.reference(r)}</answer>", r).correct


def test_shipped_sizes():
    assert manifest("countdown", "train")["rows"] == 20000
    assert manifest("countdown", "test")["rows"] == 500
    assert manifest("multiplication", "test")["rows"] == 500
    # Smaller spaces than requested: train holds every problem outside test, and says so.
    for name in ("countdown_nano", "multiplication"):
        m = manifest(name, "train")
        assert m["rows"] < m["requested_rows"] and "only" in m["note"]
    rows = load_task_data("countdown_nano", "test").to_list()
    assert all(len(r["nums"]) == 3 and max(r["nums"]) <= 9 and r["target"] <= 100 for r in rows)


def test_prompt_column_follows_template():
    row = load_task_data("countdown_nano", "test", template="nano")[0]
    assert row["prompt"] == f"Make {row['target']} from {' '.join(map(str, row['nums']))}.\n<think>"
    chat = load_task_data("multiplication", "test", template="chat")[0]["prompt"]
    assert [m["role"] for m in chat] == ["system", "user"]
    with pytest.raises(ValueError, match="unknown template"):
        load_task_data("countdown", "test", template="fancy")


def test_unknown_name_and_split():
    with pytest.raises(DataError, match="no shipped dataset 'nope'"):
        load_task_data("nope")
    with pytest.raises(DataError, match="unknown split 'validation'"):
        load_task_data("countdown", "validation")


def test_tampered_shipped_file_is_detected(tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(data_dir() / "countdown_nano", copy / "countdown_nano")
    path = copy / "countdown_nano" / "test.jsonl"
    path.write_text(path.read_text().replace('"target":', '"target": ', 1))
    monkeypatch.setenv("TINYZERO_DATA_DIR", str(copy))
    assert len(load_task_data("countdown_nano", "train")) > 0
    with pytest.raises(DataError, match=r"test\.jsonl: sha256 .* does not match its manifest"):
        load_task_data("countdown_nano", "test")


# --- a user's own files ---------------------------------------------------------------------


def write_jsonl(path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_user_countdown_parquet_loads(tmp_path):
    # The shape of the public Countdown-Tasks-3to4: int64 target, list<int64> nums.
    path = tmp_path / "countdown_tasks.parquet"
    table = pa.table({"target": pa.array([98, 24], pa.int64()),
                      "nums": pa.array([[44, 19, 35], [3, 3, 8, 8]], pa.list_(pa.int64()))})
    pq.write_table(table, path)
    ds = load_task_data(str(path))
    assert ds.column_names == ["target", "nums", "task", "prompt"]
    assert ds["task"] == ["countdown", "countdown"] and ds[1]["nums"] == [3, 3, 8, 8]
    assert "Using the numbers [44, 19, 35]" in ds[0]["prompt"]
    assert TASKS["countdown"].grade("<answer>44+19+35</answer>", ds[0]).correct
    assert load_task_data(path, template="nano")[1]["prompt"] == "Make 24 from 3 3 8 8.\n<think>"


def test_user_jsonl_loads_and_task_can_be_forced(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"a": 12, "b": 34, "id": 1}, "", {"a": 5, "b": 6, "id": 2}])
    ds = load_task_data(path)
    assert len(ds) == 2 and ds["task"] == ["multiplication"] * 2 and ds["id"] == [1, 2]
    both = write_jsonl(tmp_path / "both.jsonl", [{"a": 1, "b": 2, "nums": [1, 2], "target": 3}])
    with pytest.raises(DataError, match="cannot tell the task"):
        load_task_data(both)
    assert load_task_data(both, task="countdown")["task"] == ["countdown"]


@pytest.mark.parametrize(
    "rows, row_number, problem",
    [
        ([{"nums": [1, 2], "target": 3}, "{not json", {"nums": [1], "target": 1}], 2, "invalid JSON"),
        ([{"nums": [1, 2], "target": 3}, "[1, 2]"], 2, "not a JSON object"),
        ([{"nums": [1, 2], "target": 3}, {"nums": [1, 2]}], 2, "missing column 'target'"),
        ([{"nums": [1, 2], "target": 3}, {"nums": [1, 2.5], "target": 3}], 2, r"nums\[1\] is not an integer: 2.5"),
        ([{"nums": [1, 2], "target": 3}, "", {"nums": [], "target": 3}], 3, "nums is empty"),
        ([{"nums": [1, 2], "target": 3}, {"nums": 12, "target": 3}], 2, "nums is not a list"),
        ([{"nums": [1, 2], "target": 3}, {"nums": [1, 2], "target": -3}], 2, "target must be positive"),
        ([{"nums": [1, 2], "target": 3}, {"nums": [1, 2], "target": 0}], 2, "target must be positive"),
        ([{"nums": [1, 2], "target": 3}, {"nums": [1, 2], "target": "3"}], 2, "target is not an integer"),
    ],
)
def test_broken_jsonl_names_file_row_and_problem(tmp_path, rows, row_number, problem):
    path = write_jsonl(tmp_path / "broken.jsonl", rows)
    with pytest.raises(DataError, match=rf"broken\.jsonl: row {row_number}: {problem}"):
        load_task_data(path, task="countdown")


def test_broken_parquet(tmp_path):
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"garbage\.parquet: not a readable parquet file"):
        load_task_data(str(garbage))
    floats = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"target": [5, 6], "nums": [[1.0, 4.0], [2.0, 3.5]]}), floats)
    with pytest.raises(DataError, match=r"floats\.parquet: row 1: nums\[0\] is not an integer: 1.0"):
        load_task_data(str(floats))
    negative = tmp_path / "negative.parquet"
    pq.write_table(pa.table({"target": [5, -6], "nums": [[1, 4], [2, 3]]}), negative)
    with pytest.raises(DataError, match=r"negative\.parquet: row 2: target must be positive, got -6"):
        load_task_data(str(negative))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_task_data(str(tmp_path / "absent.jsonl"))
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    with pytest.raises(DataError, match="no rows"):
        load_task_data(empty)
    unknown = write_jsonl(tmp_path / "q.jsonl", [{"question": "2+2", "answer": "4"}])
    with pytest.raises(DataError, match=r"q\.jsonl: cannot tell the task from columns \['answer', 'question'\]"):
        load_task_data(unknown)


def test_shipped_data_of_another_task_is_an_error():
    # a command never grades one task's data with another's grader
    with pytest.raises(DataError, match="holds countdown problems, not multiplication"):
        load_task_data("countdown_nano", "test", task="multiplication")
