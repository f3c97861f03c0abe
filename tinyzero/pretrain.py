"""Build (or reuse) the nano base model.

    python -m tinyzero.pretrain                          # recipes/nano-pretrain.yaml
    python -m tinyzero.pretrain --max_steps 2000 --seed 1   # any key of the recipe, from the CLI
    python -m tinyzero.pretrain --config my-pretrain.yaml
    python -m tinyzero.pretrain --rebuild true           # build the recipe's model even though it ships

Every recipe key is part of the cache key: the model lands in ``runs/nano-base/<hash>/`` and
is reused while the config is unchanged (``tinyzero.nano.build``). The recipe's own model
ships with the package and is used as it is, unless ``--rebuild true``. ``--torch_threads`` is
not: the weights are the same at any thread count (tests/test_nano.py). Prints the folder and
its ``pretrain.json`` (config, parameters, train loss, seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tinyzero.cli import parse, run
from tinyzero.nano.build import DEFAULT_RECIPE, PretrainConfig, ensure_base_model


@dataclass
class RunArguments:
    torch_threads: int = field(
        default=1, metadata={"help": "CPU threads for torch: one does not collapse when another process is busy; two are faster on an idle machine."}
    )
    rebuild: bool = field(
        default=False, metadata={"help": "Pretrain into the cache even if a cached or shipped model exists for this config."}
    )


def main(cfg: PretrainConfig, run_args: RunArguments) -> None:
    import torch  # noqa: PLC0415

    torch.set_num_threads(run_args.torch_threads)
    path = ensure_base_model(cfg, rebuild=run_args.rebuild)
    print(json.dumps(json.loads((path / "pretrain.json").read_text()), indent=2))
    print(f"[tinyzero] base model: {path}")


def parse_args(argv: list[str] | None = None) -> tuple[PretrainConfig, RunArguments]:
    return parse((PretrainConfig, RunArguments), argv, default_config=DEFAULT_RECIPE, prog="python -m tinyzero.pretrain")


if __name__ == "__main__":
    run(main, *parse_args())
