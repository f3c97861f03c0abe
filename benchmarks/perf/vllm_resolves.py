"""Does ``pip install -e ".[vllm]"`` resolve with the project's pins? Which vLLM releases do?

    pip install uv                                   # once, anywhere (a throwaway venv will do)
    python benchmarks/perf/vllm_resolves.py          # writes benchmarks/results/vllm_resolve.md
    python benchmarks/perf/vllm_resolves.py --versions 0.30.0 0.31.0 --out -   # print only

Run by hand (it needs the package index), never in the offline test suite. ``uv pip compile``
reads package metadata and installs nothing, so this answers "does it resolve", not "does it
run": whether a vLLM release runs Qwen2 under the pinned transformers is known only once it
has run on a GPU.

Checked, for Linux x86-64 and Python 3.11 (the GPU machines' platform, whatever this one is):
1. the ``vllm`` extra of pyproject.toml, with every dependency of the package (what
   ``pip install -e ".[vllm]"`` asks for);
2. each release in ``--versions`` against the pins alone (torch, transformers, trl,
   datasets, accelerate and peft), with the resolver's first reason when it fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
OUT = REPO / "benchmarks" / "results" / "vllm_resolve.md"
PINNED = ("torch", "transformers", "trl", "datasets", "accelerate", "peft")
SHOWN = ("vllm", "torch", "transformers", "trl", "xformers", "flashinfer-python", "triton")
DEFAULT_VERSIONS = ("0.28.0", "0.29.0", "0.30.0", "0.31.0", "0.32.0", "0.33.0")
PLATFORM = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28")


def uv_command() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    raise SystemExit("uv is not installed: pip install uv")


def pins() -> list[str]:
    """The exact pins of pyproject.toml (dependencies and extras) for the packages in PINNED."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    found = {re.split(r"[=<>!~ \[]", r, maxsplit=1)[0].lower(): r.split("#")[0].strip() for r in reqs}
    missing = [p for p in PINNED if p not in found]
    if missing:
        raise SystemExit(f"pyproject.toml pins none of {missing}")
    return [found[p] for p in PINNED]


def compile_(uv: list[str], args: list[str]) -> tuple[bool, str]:
    """(resolved, the resolved lock text or the resolver's error)."""
    run = subprocess.run([*uv, "pip", "compile", *PLATFORM, "--no-header", "--quiet", *args], capture_output=True, text=True, check=False)
    return run.returncode == 0, run.stdout if run.returncode == 0 else run.stderr


def versions_of(lock: str, names=SHOWN) -> str:
    got = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, flags=re.MULTILINE))
    return ", ".join(f"{n} {got[n]}" for n in names if n in got)


def reason(error: str) -> str:
    """The resolver's first 'Because ...' sentence, on one line."""
    text = " ".join(error.split())
    m = re.search(r"Because (.+?)(?: and you require| And because|$)", text)
    return m.group(1) if m else text[:200]


def check(versions: list[str]) -> str:
    uv = uv_command()
    uv_version = subprocess.run([*uv, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"].get("vllm")
    lines = [
        "# Does the vllm extra resolve?",
        "",
        (f"Checked {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `python benchmarks/perf/vllm_resolves.py` "
         f"({uv_version}; `uv pip compile` for {' '.join(PLATFORM)}: metadata only, nothing installed)."),
        "Resolving is not running: no vLLM release has been run with these pins (no GPU has been lent).",
        "",
        f"## The extra: `pip install -e \".[vllm]\"` with vllm = {extra}",
        "",
    ]
    ok, text = compile_(uv, [str(PYPROJECT), "--extra", "vllm"])
    lines.append(f"- {'resolves' if ok else 'DOES NOT RESOLVE'}: {versions_of(text) if ok else reason(text)}")
    lines += ["", f"## Each release against the pins alone ({', '.join(pins())})", "",
              "| vllm | resolves | why not / what it resolves to |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for v in versions:
            req = Path(tmp) / f"req-{v}.txt"
            req.write_text("\n".join([*pins(), f"vllm=={v}"]) + "\n")
            ok_v, text = compile_(uv, [str(req)])
            lines.append(f"| {v} | {'yes' if ok_v else 'no'} | {versions_of(text) if ok_v else reason(text)} |")
            print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", nargs="+", default=list(DEFAULT_VERSIONS), help="vLLM releases to try against the pins")
    parser.add_argument("--out", default=str(OUT), help="markdown record to write; - prints it only")
    args = parser.parse_args(argv)
    report = check(args.versions)
    if args.out == "-":
        print(report)
    else:
        Path(args.out).write_text(report)
        print(f"written {args.out}")


if __name__ == "__main__":
    main()
