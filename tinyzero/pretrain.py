"""Build (or reuse) the nano base model.

    python -m tinyzero.pretrain                          # recipes/nano-pretrain.yaml
    python -m tinyzero.pretrain --max_steps 2000 --seed 1   # any key of the recipe, from the CLI
    python -m tinyzero.pretrain --config my-pretrain.yaml

Every key is part of the cache key: the model lands in ``runs/nano-base/<hash>/`` and is
reused while the config is unchanged (``tinyzero.nano.pretrain``). Prints the folder and its
``pretrain.json`` (config, parameters, train loss, seconds).
"""

from __future__ import annotations

import json

from tinyzero.cli import parse
from tinyzero.nano.pretrain import DEFAULT_RECIPE, PretrainConfig, ensure_base_model


def main(cfg: PretrainConfig) -> None:
    path = ensure_base_model(cfg)
    print(json.dumps(json.loads((path / "pretrain.json").read_text()), indent=2))
    print(f"[tinyzero] base model: {path}")


if __name__ == "__main__":
    (config,) = parse((PretrainConfig,), default_config=DEFAULT_RECIPE, prog="python -m tinyzero.pretrain")
    main(config)
