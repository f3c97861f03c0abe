"""Load the policy model and its tokenizer, whatever ``model_name_or_path`` names.

Three kinds of name are accepted, in this order:

- ``"nano"``: tinyzero's own ~1M-parameter base model, pretrained on the CPU once and cached
  (``tinyzero.nano.build.ensure_base_model``). This is the default and needs no internet.
- a local folder written by ``save_pretrained``. A *nano* folder (it carries the marker file
  of ``tinyzero.nano.tokenizer``) gets the nano character tokenizer: ``AutoTokenizer`` would silently
  hand back Qwen2's byte-level tokenizer for it, because the folder's config says ``qwen2``.
- anything else is a Hugging Face Hub id such as ``Qwen/Qwen2.5-1.5B`` (needs internet the
  first time; tests never download).

Tokenizers are returned with left padding: every batch here is a generation batch.

    python -c "from tinyzero.models import load_model_and_tokenizer as l; print(l('nano')[0])"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tinyzero.nano import tokenizer as nano

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from trl import ModelConfig

NANO = "nano"


def resolve_model_path(name_or_path: str, pretrain_config: str | None = None) -> str:
    """A local folder or Hub id for ``name_or_path``; "nano" pretrains (once) or reuses the cache."""
    if name_or_path == NANO:
        from tinyzero.nano.build import ensure_base_model  # noqa: PLC0415 (pulls in the corpus code)

        return str(ensure_base_model(pretrain_config))
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path)
    # Hub ids look like "org/name" or "name". Anything that reads as a local path (starts like
    # one, has more than one "/", or starts with a folder that exists here, as in "runs/typo")
    # gets an error naming it now, instead of a confusing Hub 404 (or a wait without internet).
    first = Path(name_or_path.split("/")[0]).expanduser()
    looks_local = (
        name_or_path.startswith((".", "/", "~"))
        or name_or_path.count("/") > 1
        or path.exists()
        or ("/" in name_or_path and first.is_dir())
    )
    if looks_local:
        raise FileNotFoundError(
            f"model folder {name_or_path!r} not found (expected a save_pretrained folder, "
            f"'{NANO}', or a Hugging Face Hub id such as 'Qwen/Qwen2.5-1.5B')"
        )
    return name_or_path


def load_tokenizer(path: str, model_args: ModelConfig | None = None) -> PreTrainedTokenizerBase:
    """The right tokenizer for a resolved model path (see the module docstring)."""
    if Path(path).is_dir() and nano.is_nano_folder(path):
        return nano.load_tokenizer(path)
    from transformers import AutoTokenizer  # noqa: PLC0415

    revision = model_args.model_revision if model_args else "main"
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, padding_side="left")
    except OSError as e:
        raise OSError(f"could not load a tokenizer for {path!r}: {e}") from e
    if tokenizer.pad_token is None:  # e.g. Llama: GRPO pads prompt batches
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(
    name_or_path: str,
    model_args: ModelConfig | None = None,
    pretrain_config: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) for "nano", a local save_pretrained folder, or a Hub id.

    ``model_args`` (TRL's ``ModelConfig``) supplies dtype, revision, attention implementation
    and 4/8-bit quantization; without it the model loads in float32.
    """
    from transformers import AutoModelForCausalLM  # noqa: PLC0415

    path = resolve_model_path(name_or_path, pretrain_config)
    kwargs: dict = {"trust_remote_code": trust_remote_code}
    if model_args is not None:
        from trl import get_quantization_config  # noqa: PLC0415

        kwargs["revision"] = model_args.model_revision
        if model_args.dtype not in (None, "auto"):
            import torch  # noqa: PLC0415

            kwargs["dtype"] = getattr(torch, model_args.dtype)
        elif model_args.dtype == "auto":
            kwargs["dtype"] = "auto"
        if model_args.attn_implementation:
            kwargs["attn_implementation"] = model_args.attn_implementation
        quantization_config = get_quantization_config(model_args)
        if quantization_config is not None:
            kwargs["quantization_config"] = quantization_config
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise OSError(f"could not load model {name_or_path!r} (from {path!r}): {e}") from e
    tokenizer = load_tokenizer(path, model_args)
    return model, tokenizer


def set_training_dtypes(model_args: ModelConfig, training_args) -> None:
    """Load a full fine-tune's weights in float32, whatever dtype the recipe names.

    AdamW on bfloat16 weights rounds away updates below ~1/256 of a weight: at lr 1e-6 most of
    a 1.5B model would never change. TRL's ``bf16: true`` only adds autocast and keeps no
    float32 master copy, so the weights themselves must be float32 (ZeRO-2 keeps such a copy
    on its own, which is why single- and multi-GPU runs would otherwise differ). The frozen
    reference model (beta > 0) keeps the recipe's dtype: it is never updated. LoRA keeps its
    adapters in float32 (peft) and loads the frozen base in the recipe's dtype.
    """
    recipe = model_args.dtype
    if model_args.use_peft or recipe in (None, "auto", "float32"):
        if not model_args.use_peft:
            model_args.dtype = "float32"  # "auto" would take a hub model's bf16
        return
    autocast = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "none"
    print(f"[tinyzero] full fine-tune: float32 master weights (recipe dtype {recipe}: reference model; autocast {autocast})")
    model_args.dtype = "float32"
    training_args.model_init_kwargs = {"dtype": recipe, **(training_args.model_init_kwargs or {})}


def load_for_inference(
    name_or_path: str, dtype: str = "auto", device: str | None = None, pretrain_config: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) in eval mode on ``device`` (default: cuda when there is one)."""
    import torch  # noqa: PLC0415
    from trl import ModelConfig  # noqa: PLC0415

    model, tokenizer = load_model_and_tokenizer(name_or_path, ModelConfig(dtype=dtype), pretrain_config)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return model, tokenizer
