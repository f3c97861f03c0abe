"""The nano base model's tokenizer: characters, with number tokens and a few word tokens.

- ``build_tokenizer()``: one token per character, except that runs of digits are cut into
  groups of up to three and each group is one token (as GPT-4's and Llama 3's tokenizers
  do), and a few frequent words and the four tags (``<think>``, ``</think>``, ``<answer>``,
  ``</answer>``) are single tokens. A number below 1000 is then one token, so that "5*4=20"
  is a lookup for a tiny model rather than a carry algorithm over digits, and traces stay
  short. It is a plain ``PreTrainedTokenizerFast`` saved with ``save_pretrained``.
- ``load_tokenizer(path)``: loads a saved nano tokenizer. ``AutoTokenizer`` must NOT be used
  on a nano model folder: because the folder's config says ``qwen2``, AutoTokenizer returns
  Qwen2's byte-level tokenizer, which silently breaks the character vocabulary.
- ``is_nano_tokenizer(tokenizer)``: whether a loaded tokenizer is this one.
"""

from __future__ import annotations

import functools
import json
import string
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

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


def is_nano_tokenizer(tokenizer) -> bool:
    """True for a tokenizer made by ``build_tokenizer`` (its exact vocabulary)."""
    return tokenizer.get_vocab() == _nano_vocab()


@functools.cache
def _nano_vocab() -> dict[str, int]:
    return build_tokenizer().get_vocab()
