"""The nano base model's pieces: a character-level tokenizer and a tiny Qwen2 config.

tinyzero cannot download Qwen2.5 here, so it builds its own base model (see
``tinyzero.pretrain``). This module holds what that model is made of:

- ``build_tokenizer()``: one token per character, except that runs of digits are cut into
  groups of up to three and each group is one token (as GPT-4's and Llama 3's tokenizers
  do), and a few frequent words and the four tags (``<think>``, ``</think>``, ``<answer>``,
  ``</answer>``) are single tokens. A number below 1000 is then one token, so that "5*4=20"
  is a lookup for a tiny model rather than a carry algorithm over digits, and traces stay
  short. It is a plain ``PreTrainedTokenizerFast`` saved with ``save_pretrained``.
- ``load_tokenizer(path)``: loads a saved nano tokenizer. ``AutoTokenizer`` must NOT be used
  on a nano model folder: because the folder's config says ``qwen2``, AutoTokenizer returns
  Qwen2's byte-level tokenizer, which silently breaks the character vocabulary.
- ``model_config(...)``: a Qwen2 config (the same architecture code path as Qwen2.5-1.5B),
  about 1M parameters by default.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
# Every character a nano prompt or trace can contain. Anything else maps to <unk>.
CHARS = " \n" + string.digits + "+-*/()=.,:;!?'" + string.ascii_lowercase + string.ascii_uppercase
# Every digit string of 1 to 3 characters ("0".."9", "00".."99", "000".."999"): the pieces
# that runs of digits are cut into, so every digit string still round-trips.
DIGIT_GROUPS = tuple(f"{i:0{n}d}" for n in (1, 2, 3) for i in range(10**n))
# Frequent words of the nano template and traces, merged into one token each (as a BPE would).
WORDS = ("Make ", " from ", "try ", " vs ", " yes", " no", " low", " high", "wait, let me check: ")
# Written next to the tokenizer files so that tinyzero's loaders know which class to use.
MARKER = "tinyzero_nano.json"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer with number tokens; decode(encode(s)) == s for every s over CHARS."""
    pieces = [PAD, EOS, UNK, *CHARS, *(g for g in DIGIT_GROUPS if len(g) > 1)]
    vocab = {tok: i for i, tok in enumerate(pieces)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"\d{1,3}|[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    # Not "special": TRL decodes completions with skip_special_tokens=True, and the grader
    # must see the tags.
    core.add_tokens([AddedToken(t, normalized=False, special=False) for t in (*TAGS, *WORDS)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: str | Path) -> None:
    tokenizer.save_pretrained(path)
    (Path(path) / MARKER).write_text(json.dumps({"tokenizer": "tinyzero-nano-char-num"}) + "\n")


def is_nano_folder(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by ``save_tokenizer`` (see the module docstring for why)."""
    if not is_nano_folder(path):
        raise ValueError(f"{path} is not a tinyzero nano model folder (no {MARKER})")
    return PreTrainedTokenizerFast.from_pretrained(str(path), padding_side="left")


def model_config(
    vocab_size: int,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 384,
    max_positions: int = 512,
) -> Qwen2Config:
    """A Qwen2-family config; the defaults give about 0.8M parameters."""
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
