"""The R1-Zero prompt framing that every task wraps its question in.

- ``base_prompt``: a User/Assistant transcript for base models, ending inside ``<think>``.
- ``chat_prompt``: the same question as system + user messages, for instruct models.

Both state the ``<think>`` / ``<answer>`` convention that ``tinyzero.tasks.grading`` enforces.
The "nano" template (tinyzero's own base model) is each task's business: it is the short form
the nano corpus was written in.
"""

from __future__ import annotations

TEMPLATES = ("base", "chat", "nano")
# TinyZero's wording (its Countdown "base" prefix and its instruct system prompt).
_PREAMBLE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer."
)
SYSTEM_PROMPT = (
    "You are a helpful assistant. You first think about the reasoning process in the mind "
    "and then provide the user with the answer."
)


def base_prompt(question: str) -> str:
    """The R1-Zero base-model template: a User/Assistant transcript that stops inside <think>.

    A base model has no chat template, so the transcript itself sets up the format, and the
    prompt ends with ``<think>`` so that the model's first tokens are already reasoning.
    """
    return f"{_PREAMBLE}\nUser: {question}\nAssistant: Let me solve this step by step.\n<think>"


def chat_prompt(question: str) -> list[dict[str, str]]:
    """The same question as messages (system + user) for instruct models with a chat template.

    The model writes ``<think>`` itself here; the tag functions accept a leading ``<think>``.
    """
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
