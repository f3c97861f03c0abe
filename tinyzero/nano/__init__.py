"""The nano base model: tinyzero's own ~1M-parameter Qwen2, pretrained offline on a CPU.

No machine here can download Qwen2.5, so tinyzero makes a base model that has seen people
search (and mostly fail) on Countdown, and lets GRPO find that searching longer pays.

- ``tokenizer``: characters plus number tokens; ``load_tokenizer`` for saved nano folders.
- ``corpus``: the seeded pretraining corpus (search traces of mixed quality, worksheets).
- ``traces``: reading those traces back from model output (the ``eval/search/*`` figures).
- ``pretrain``: ``PretrainConfig``, the Qwen2 config, pretraining and the cache by config hash.

The command is ``python -m tinyzero.pretrain``.
"""
