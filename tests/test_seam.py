"""One seam to TRL: no private TRL name is used outside ``tinyzero/trainer.py``, no TRL trainer
class is patched anywhere, no package, benchmark or notebook code replaces a model's ``generate``
(or a tinyzero module's function) after the fact, and the seam's docstring lists every private
TRL name it uses."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import trl.trainer.grpo_trainer
import trl.trainer.rloo_trainer
from trl import GRPOTrainer, RLOOTrainer

import tinyzero.trainer as seam

REPO = Path(__file__).resolve().parents[1]
SEAM = REPO / "tinyzero" / "trainer.py"
SCANNED = ("tinyzero", "benchmarks", "tests", "notebooks")
# Files allowed to name a private TRL name, each with why. An entry must still be needed
# (the test fails when its file is clean), so the list only shrinks.
PENDING: dict[str, str] = {
    # reads (never calls or patches) the source of TRL's loss, to pin exercise 07's aggregations to TRL's
    "tests/test_exercises.py": "reads GRPOTrainer._compute_loss's source; a seam accessor would only rename it",
}


def trl_private_names() -> set[str]:
    """Private methods of TRL's GRPO and RLOO trainers, and the private attributes their
    constructors set (``self._x = ...``), read from the installed TRL; less the private names
    tinyzero's own modules define at top level (``fastgen._step`` is not TRL's)."""
    names = {n for cls in (GRPOTrainer, RLOOTrainer) for n in vars(cls) if n.startswith("_") and not n.startswith("__")}
    for module in (trl.trainer.grpo_trainer, trl.trainer.rloo_trainer):
        names |= set(re.findall(r"self\.(_[a-z]\w*)\s*=", Path(module.__file__).read_text()))
    top_level = re.compile(r"^(?:def |class )?(_[a-z]\w*)\b", re.M)
    ours = {n for path in (REPO / "tinyzero").rglob("*.py") if path != SEAM for n in top_level.findall(path.read_text())}
    return names - ours


def sources() -> dict[str, str]:
    """Python source of every scanned file (a notebook's code cells), keyed by repo path."""
    out = {}
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*")):
            rel = path.relative_to(REPO).as_posix()
            if path == SEAM or path == Path(__file__).resolve() or "/results/" in rel or ".ipynb_checkpoints" in rel:
                continue
            if path.suffix == ".py":
                out[rel] = path.read_text()
            elif path.suffix == ".ipynb":
                cells = json.loads(path.read_text())["cells"]
                out[rel] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return out


PACKAGE_MODULES = {p.stem for p in (REPO / "tinyzero").rglob("*.py")} - {"__init__"}


def imported_modules(text: str) -> set[str]:
    """Names under which ``text`` imports tinyzero modules (``from tinyzero import fastgen``,
    ``from tinyzero.nano import build as b``, ``import tinyzero.fastgen as fg``)."""
    names = set()
    blocks = re.findall(r"from tinyzero(?:\.\w+)* import \(([^)]*)\)", text)
    blocks += re.findall(r"from tinyzero(?:\.\w+)* import ([\w ,]+)$", text, re.M)
    for block in blocks:
        for part in block.replace("\n", " ").split(","):
            words = part.split()
            if words and words[0] in PACKAGE_MODULES:
                names.add(words[-1])  # the alias if there is one
    for module, alias in re.findall(r"^\s*import tinyzero\.(?:\w+\.)*(\w+)(?: as (\w+))?", text, re.M):
        if module in PACKAGE_MODULES and alias:
            names.add(alias)
    return names


def offences(text: str, private: set[str], tests: bool = False) -> list[str]:
    """Lines that use a private TRL name as an attribute or assign onto a TRL trainer class; and,
    outside the tests (whose fakes and monkeypatches are theirs), lines that replace a model's
    ``generate`` or a tinyzero module's attribute."""
    found = []
    patched = re.compile(r"\b(GRPOTrainer|RLOOTrainer)\.\w+\s*=(?!=)|setattr\(\s*(GRPOTrainer|RLOOTrainer)\b")
    modules = "|".join(sorted(imported_modules(text))) or "(?!)"
    rewired = re.compile(rf"\.generate\s*=(?!=)|(?<![\w.])({modules})\.\w+\s*=(?!=)|setattr\(\s*({modules})\b|tinyzero\.[\w.]+\s*=(?!=)")
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        used = {m for m in re.findall(r"\.(_[a-z]\w*)\b", code) if m in private}
        if used or patched.search(code):
            found.append(f"{sorted(used) or 'patches a TRL class'}: {line.strip()}")
        elif not tests and rewired.search(code):
            found.append(f"replaces generate or a tinyzero function: {line.strip()}")
    return found


def test_the_scan_sees_what_it_must():
    private = trl_private_names()
    assert {"_generate", "_generate_single_turn", "_get_per_token_logps_and_entropies", "_metrics"} <= private
    assert offences("trainer._generate = timed(trainer._generate)", private)
    assert offences('self.trainer._metrics["train"][key].append(v)', private)
    assert offences("GRPOTrainer.train = run", private) and offences("monkeypatch.setattr(RLOOTrainer, 'x', f)", private)
    assert not offences("trainer.train()  # not trainer._generate", private)
    assert not offences("fastgen._CHUNK, fastgen._step, GRPOTrainer.train == x", private)
    patching = "from tinyzero import fastgen, train\n"
    assert offences("model.generate = fast", private) and offences(patching + "fastgen.generate = timed", private)
    assert offences(patching + "setattr(fastgen, name, fn)", private) and offences(patching + "train.load_task_data = f", private)
    assert not offences(patching + "trainer.loss_type = 'grpo'\nself.fastgen.x = 1", private)
    assert not offences("model.generate = fake", private, tests=True) and not offences("out = model.generate(x)", private)


def test_no_private_trl_name_outside_the_seam():
    private = trl_private_names()
    found = {path: offences(text, private, tests=path.startswith("tests/")) for path, text in sources().items()}
    found = {path: lines for path, lines in found.items() if lines}
    stale = sorted(set(PENDING) - set(found))
    assert not stale, f"PENDING entries no longer needed, remove them: {stale}"
    bad = {path: lines for path, lines in found.items() if path not in PENDING}
    assert not bad, "private TRL names outside tinyzero/trainer.py:\n" + "\n".join(
        f"  {path}: {line}" for path, lines in bad.items() for line in lines
    )


def test_the_seam_docstring_lists_every_trl_name_it_uses():
    private = trl_private_names()
    tree = ast.parse(SEAM.read_text())
    docstring = ast.get_docstring(tree)
    assert "trl==1.16.0" in docstring
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in private}
    defined = {
        node.name
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef)
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name in private
    }
    assert used | defined, "the seam uses no TRL name: the scan is broken"
    missing = sorted(n for n in used | defined if f"``{n}``" not in docstring and f"{n}``" not in docstring)
    assert not missing, f"tinyzero/trainer.py uses TRL names its docstring does not list: {missing}"
    assert set(seam.TRL_PRIVATE_NAMES) == used | defined
