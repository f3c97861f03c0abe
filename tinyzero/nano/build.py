"""Build the nano base model: a ~1M-parameter Qwen2 pretrained on search traces, on the CPU.

    python -m tinyzero.pretrain                                  # recipes/nano-pretrain.yaml
    python -m tinyzero.pretrain --config my.yaml --max_steps 2000   # the command: tinyzero/pretrain.py

Plain next-token pretraining with ``transformers.Trainer`` on the corpus that
``tinyzero.nano.corpus`` writes from the *train* split of ``countdown_nano`` (test problems are
never seen). The result is a ``save_pretrained`` folder (model, nano tokenizer, the config
that made it and a base-model report) under ``runs/nano-base/<hash of the config>/``;
``ensure_base_model`` reuses it while the config is unchanged, so training, tests and
notebooks pay for pretraining once. Deterministic for a seed (single process, CPU): the same
bits at any thread count and, with the kernels pinned to AVX2 (``tinyzero/__init__.py``), on
other x86-64 CPUs (an AVX-512 machine rebuilt the shipped model bit for bit; unpinned it built
another: benchmarks/results/RESULTS.md).

The recipe's own model ships with the package (``tinyzero/nano/shipped/<hash>/``, 4 MB): the
main command and the notebooks start from it instead of spending 15-25 minutes of CPU. It is
exactly what ``python -m tinyzero.pretrain --rebuild true`` builds from the recipe (a slow test
rebuilds it and compares the weights); any other config (a seed, a step count) is pretrained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinyzero import IS_X86_64, PINNED_NUMERICS
from tinyzero.nano import corpus as corpus_mod
from tinyzero.nano import tokenizer as nano_tokenizer
from tinyzero.nano.corpus import CorpusConfig
from tinyzero.paths import RECIPES, runs_root

CORPUS_VERSION = 9  # bump when the corpus or the nano tokenizer changes what the model sees: it is part of the cache key
DEFAULT_RECIPE = RECIPES / "nano-pretrain.yaml"
SHIPPED = Path(__file__).resolve().parent / "shipped"  # prebuilt base models, by config hash


@dataclass
class PretrainConfig:
    """Everything that decides the nano base model; its hash names the cache folder."""

    dataset: str = field(default="countdown_nano", metadata={"help": "Shipped dataset whose train split seeds the corpus."})
    num_traces: int = field(default=100000, metadata={"help": "Traces in the corpus."})
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 2
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_steps: int = 6000
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    # CorpusConfig fields, flattened so that YAML/CLI can set them.
    diligent_rate: float = CorpusConfig.diligent_rate
    persistence_low: float = CorpusConfig.persistence_low
    persistence_high: float = CorpusConfig.persistence_high
    max_attempts: int = CorpusConfig.max_attempts
    slip_rate: float = CorpusConfig.slip_rate
    self_check_rate: float = CorpusConfig.self_check_rate
    direct_guess_rate: float = CorpusConfig.direct_guess_rate
    worksheet_rate: float = CorpusConfig.worksheet_rate
    worksheet_lines: int = CorpusConfig.worksheet_lines
    worksheet_yes: float = CorpusConfig.worksheet_yes
    practice_rate: float = CorpusConfig.practice_rate
    practice_eos: bool = CorpusConfig.practice_eos
    search_order: str = CorpusConfig.search_order
    pairings: str = CorpusConfig.pairings

    def corpus_config(self) -> CorpusConfig:
        names = {f.name for f in dataclasses.fields(CorpusConfig)}
        return CorpusConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        # Fields added after corpus version 9, each with a default that writes the corpus it
        # wrote before the field existed: at that default they are left out of the key, so the
        # keys of models built before them (the shipped one's too) stand.
        for name, default in (("practice_rate", 0.0), ("search_order", "random"), ("practice_eos", True), ("pairings", "prompt")):
            if fields[name] == default:
                del fields[name]
        blob = json.dumps({"corpus_version": CORPUS_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_root() -> Path:
    """Where base models are cached: $TINYZERO_HOME/nano-base, else <repo>/runs/nano-base."""
    return runs_root() / "nano-base"


def model_config(
    vocab_size: int,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 384,
    max_positions: int = 512,
) -> "Qwen2Config":  # noqa: F821 (imported inside: transformers is heavy)
    """A Qwen2 config (the architecture code path of Qwen2.5-1.5B); the recipe's sizes give about 1M parameters."""
    from transformers import Qwen2Config  # noqa: PLC0415
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PretrainConfig:
    from trl import TrlParser  # noqa: PLC0415 (heavy import, only when needed)

    args = ["--config", str(path or DEFAULT_RECIPE), *(overrides or [])]
    (cfg,) = TrlParser((PretrainConfig,)).parse_args_and_config(args)
    return cfg


def build_corpus(cfg: PretrainConfig) -> list[str]:
    """The documents as the model is trained on them, from the train split only: prompt + trace,
    worksheets (``worksheet_rate`` of them) and practice pages, each ending in eos except, with
    ``practice_eos`` false, the practice pages."""
    from tinyzero.tasks.countdown import prompt  # noqa: PLC0415
    from tinyzero.tasks.data import load_task_data  # noqa: PLC0415

    problems = load_task_data(cfg.dataset, "train")
    rng = random.Random(cfg.seed)
    ccfg = cfg.corpus_config()
    docs = []
    rows = problems.to_list()
    for _ in range(cfg.num_traces):
        if rng.random() < ccfg.worksheet_rate:
            docs.append(corpus_mod.worksheet(rows, rng, ccfg) + nano_tokenizer.EOS)
            continue
        row = rows[rng.randrange(len(rows))]
        # Drawn only when pages are on, so that a corpus without them is unchanged.
        if ccfg.practice_rate and rng.random() < ccfg.practice_rate / (1 - ccfg.worksheet_rate):
            statement = prompt(row["nums"], row["target"], template="nano").removesuffix("<think>")
            page = statement + corpus_mod.practice_page(row["nums"], row["target"], rng, ccfg)
            docs.append(page + (nano_tokenizer.EOS if ccfg.practice_eos else ""))
            continue
        trace = corpus_mod.trace(row["nums"], row["target"], rng, ccfg)
        docs.append(prompt(row["nums"], row["target"], template="nano") + trace + nano_tokenizer.EOS)
    return docs


def pretrain(cfg: PretrainConfig, out_dir: str | Path) -> Path:
    """Pretrain from scratch into out_dir (written atomically: a half-built folder never counts)."""
    import torch  # noqa: PLC0415
    from datasets import Dataset  # noqa: PLC0415
    from transformers import (  # noqa: PLC0415
        DataCollatorForLanguageModeling,
        Qwen2ForCausalLM,
        Trainer,
        TrainingArguments,
    )

    out_dir = Path(out_dir)
    numerics = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "mkl_cbwr": os.environ.get("MKL_CBWR")}
    if numerics != PINNED_NUMERICS and IS_X86_64:
        # tinyzero/__init__.py pins them; torch already ran an op before it was imported, or the
        # user set others. The build is valid, but another CPU would not give the same bits.
        print(f"[tinyzero] pretraining with {numerics}, not {PINNED_NUMERICS}: another machine will build another model")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(cfg.seed)
    tokenizer = nano_tokenizer.build_tokenizer()
    model = Qwen2ForCausalLM(
        model_config(
            len(tokenizer), cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.intermediate_size
        )
    )
    start = time.time()
    docs = build_corpus(cfg)
    train_tok = nano_tokenizer.build_tokenizer()
    train_tok.padding_side = "right"
    ds = Dataset.from_dict({"text": docs}).map(
        lambda b: train_tok(b["text"]), batched=True, remove_columns=["text"]
    )
    args = TrainingArguments(
        output_dir=str(tmp / "trainer"),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        # Traces run from ~40 to ~400 characters: batching similar lengths avoids padding.
        train_sampling_strategy="group_by_length",
        disable_tqdm=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=DataCollatorForLanguageModeling(train_tok, mlm=False),
    )
    result = trainer.train()
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    model.save_pretrained(tmp)
    nano_tokenizer.save_tokenizer(tokenizer, tmp)
    info = {
        "config": dataclasses.asdict(cfg),
        "key": cfg.key(),
        "corpus_version": CORPUS_VERSION,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_loss": result.training_loss,
        "numerics": numerics,
        "pretrain_seconds": round(time.time() - start, 1),
    }
    (tmp / "pretrain.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def shipped_model(cfg: PretrainConfig) -> Path | None:
    """The prebuilt base model for this config, if the package ships one."""
    path = SHIPPED / cfg.key()
    return path if (path / "pretrain.json").is_file() else None


def find_base_model(cfg: PretrainConfig) -> Path | None:
    """The base model for a config without building it: the cache (a rebuild), else the shipped one."""
    cached = cache_root() / cfg.key()
    return cached if (cached / "pretrain.json").is_file() else shipped_model(cfg)


def ensure_base_model(cfg: PretrainConfig | str | Path | None = None, rebuild: bool = False) -> Path:
    """The base model for a config (or a recipe path; default: the nano recipe): the cached
    one, else the shipped one, else pretrained now into the cache. ``rebuild`` pretrains into
    the cache even when one is found (the cache then holds the rebuild, and wins)."""
    if not isinstance(cfg, PretrainConfig):
        cfg = load_config(cfg)
    found = None if rebuild else find_base_model(cfg)
    if found is not None:
        return found
    out = cache_root() / cfg.key()
    print(f"[tinyzero] pretraining the nano base model into {out} (once per config; 15-25 minutes on a 2-core CPU at full size)")
    return pretrain(cfg, out)
