"""Task-independent grading pieces: completion text, tags, safe arithmetic, the Verdict.

Every task (``tinyzero.tasks.countdown``, ``tinyzero.tasks.multiplication``) grades a model completion in
the same steps, and this module holds the shared ones:

- ``completion_text``: TRL hands reward functions either plain strings (standard datasets) or
  message lists (conversational datasets); both become one string here.
- ``extract_answer`` / ``thinking_text`` / ``is_well_formed``: the ``<think>`` / ``<answer>``
  tag convention of R1-Zero and TinyZero.
- ``calculate``: exact arithmetic over a whitelist of the Python AST. Model outputs
  are untrusted text and are never given to ``eval``/``exec``.
- ``Verdict``: what a task's ``grade`` returns; rewards and evaluation both read it, so the
  training curve and the eval number agree on what "correct" means.

Nothing here raises on model output, however odd; every function runs in time linear in its
input, and expressions are capped (length, nesting, literal count, value size) before any
work proportional to their structure is done.

Try it::

    python -c "from tinyzero.tasks.grading import *; print(calculate('(1 + 2) * 3 / 9'))"
"""

from __future__ import annotations

import ast
import re
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
_NON_SPACE = re.compile(r"\S")

# Caps for calculate. A Countdown answer is ~20 characters; these leave lots of room
# for honest answers while bounding the work any input can cause.
MAX_EXPR_CHARS = 300
MAX_PAREN_DEPTH = 32  # checked by a character scan BEFORE ast.parse, whose parser recurses
MAX_LITERALS = 32
MAX_AST_DEPTH = 64  # implied by the literal cap (a chain of n literals is n deep); kept as a guard
MAX_NODES = 256
MAX_VALUE_BITS = 512  # numerator and denominator of every literal and intermediate value

# Strings made only of these characters contain no names, strings or keywords, so ast.parse
# cannot emit warnings for them and the warnings filter can be skipped (it is global state).
_ARITHMETIC_CHARS = frozenset("0123456789+-*/() ")
_ALLOWED_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)


@dataclass(frozen=True)
class Verdict:
    """The outcome of grading one completion; produced only by a task's ``grade``.

    has_answer: a complete ``<answer>...</answer>`` block exists.
    well_formed: ``is_well_formed`` holds (format only; correctness does not require it).
    parsed: the answer is valid under the task's answer grammar.
    numbers_ok: the task's number rule holds (Countdown: each given number used exactly
        once); for tasks without such a rule it equals ``parsed``.
    value: the answer's exact value, or None when it has none.
    correct: the answer solves the problem. This is THE definition of correct.
    reason: short human text ("correct", "number 7 used twice", "division by zero", ...).
    answer: the extracted answer text (None without an answer block), for logs.
    """

    has_answer: bool
    well_formed: bool
    parsed: bool
    numbers_ok: bool
    value: Fraction | None
    correct: bool
    reason: str
    answer: str | None = None


def failed(reason: str, text: str = "", answer: str | None = None) -> Verdict:
    """A Verdict for an answer that is missing or unusable (parsed=False)."""
    return Verdict(
        has_answer=answer is not None,
        well_formed=is_well_formed(text),
        parsed=False,
        numbers_ok=False,
        value=None,
        correct=False,
        reason=reason,
        answer=answer,
    )


def completion_text(completion: object) -> str:
    """The text a model produced, from a string or a TRL conversational message list.

    A message list contributes its assistant messages' contents, joined with newlines
    (content may also be a list of ``{"type": "text", "text": ...}`` parts). Anything else
    (None, numbers, malformed messages) gives "" rather than raising: an empty completion
    simply has no answer.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, (list, tuple)):
        return ""
    parts: list[str] = []
    for message in completion:
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, (list, tuple)):
            parts.extend(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
    return "\n".join(parts)


def extract_answer(text: str) -> str | None:
    """The contents of the LAST complete ``<answer>...</answer>`` block, or None.

    TinyZero's rule: earlier blocks are drafts the model revised, so the last one counts.
    Read as a sequence of tags: ``<answer>`` opens a block (a later ``<answer>`` before any
    close reopens it there), ``</answer>`` closes the open block, and a close with nothing
    open is ignored. So ``<answer>a<answer>b</answer>`` gives "b", ``<answer>1</answer>
    x</answer>`` gives "1", and an unclosed final ``<answer>`` is not a block.

    That block starts at the last ``<answer>`` before the last ``</answer>`` and ends at the
    first ``</answer>`` after it: three string searches, linear time even on megabytes of tag
    soup (a regex loop over 200,000 tags took ~40 ms).
    """
    if not isinstance(text, str):
        return None
    last_close = text.rfind(ANSWER_CLOSE)
    if last_close < 0:
        return None
    start = text.rfind(ANSWER_OPEN, 0, last_close)
    if start < 0:
        return None
    start += len(ANSWER_OPEN)
    return text[start : text.find(ANSWER_CLOSE, start)]


def thinking_text(text: str) -> str:
    """The reasoning inside the think section, stripped of surrounding whitespace.

    Prompts end with ``<think>``, so a completion usually starts inside the section: thinking
    is everything before the first ``</think>`` (a leading ``<think>``, as chat models write
    it, is dropped). Without ``</think>`` it is the whole text up to the first ``<answer>``.
    """
    if not isinstance(text, str):
        return ""
    body = text.lstrip()
    if body.startswith(THINK_OPEN):
        body = body[len(THINK_OPEN) :]
    end = body.find(THINK_CLOSE)
    if end < 0:
        end = body.find(ANSWER_OPEN)
    return (body if end < 0 else body[:end]).strip()


def is_well_formed(text: str) -> bool:
    """True for ``[<think>] reasoning </think> <answer> answer </answer>`` and nothing else.

    Optional leading ``<think>`` (after whitespace), exactly one ``</think>``, then only
    whitespace, then exactly one non-blank ``<answer>...</answer>``, then only whitespace.
    No other tag may appear anywhere, so the answer holds no stray tags.
    """
    if not isinstance(text, str):
        return False
    # Anchored at the end first: most text fails here in O(1), and the rest costs a few
    # substring searches, so a megabyte completion stays around a millisecond.
    end = len(text.rstrip()) - len(ANSWER_CLOSE)
    if end < 0 or not text.startswith(ANSWER_CLOSE, end):
        return False
    answer_start = text.rfind(ANSWER_OPEN, 0, end)
    if answer_start < 0:
        return False
    answer_at = answer_start + len(ANSWER_OPEN)
    think_end = text.rfind(THINK_CLOSE, 0, answer_start)
    if think_end < 0 or _NON_SPACE.search(text, think_end + len(THINK_CLOSE), answer_start):
        return False
    if not _NON_SPACE.search(text, answer_at, end):  # a blank answer
        return False
    start = len(text) - len(text.lstrip())
    if text.startswith(THINK_OPEN, start):
        start += len(THINK_OPEN)
    # Ranges instead of slices: no copies of a long text. (The answer region holds no
    # <answer> or </answer> by construction, but may hold think tags.)
    return not any(
        text.find(tag, lo, hi) >= 0
        for lo, hi in ((start, think_end), (answer_at, end))
        for tag in TAGS
    )


@dataclass(frozen=True)
class Evaluation:
    """What ``calculate`` found.

    parsed: the text is an arithmetic expression under the whitelist.
    numbers: its integer literals, in order of appearance (empty unless parsed).
    value: the exact value, or None (not parsed, division by zero, value too large).
    error: why value is None, as short human text; None when value is set.
    """

    parsed: bool
    numbers: tuple[int, ...]
    value: Fraction | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.value is not None


def _fail(error: str, numbers: tuple[int, ...] = (), parsed: bool = False) -> Evaluation:
    return Evaluation(parsed=parsed, numbers=numbers, value=None, error=error)


def calculate(expr: str) -> Evaluation:
    """Evaluate ``expr`` exactly, allowing only ``+ - * /``, parentheses and integer literals.

    Grammar: binary ``+ - * /`` over non-negative decimal integer literals (digits only: no
    ``2.0``, ``1e3``, ``1_000``, ``0x10``, ``1j``) with any parentheses. Unary minus (and
    plus) is NOT allowed: Countdown's rules have only the four binary operations, and the
    given numbers are positive, so ``-`` must combine two operands. Arithmetic uses
    ``Fraction``, so ``1 / 49 * 49`` is exactly 1; negative and fractional intermediate
    values are fine (as in TinyZero). Division by zero is reported in ``error``, not raised.

    Caps, checked before the work they bound: ``MAX_EXPR_CHARS`` characters (after collapsing
    whitespace), ``MAX_PAREN_DEPTH`` nested parentheses (a character scan before ``ast.parse``,
    which recurses), ``MAX_AST_DEPTH``, ``MAX_NODES``, ``MAX_LITERALS``, and ``MAX_VALUE_BITS``
    for every literal and intermediate numerator/denominator.
    """
    if not isinstance(expr, str):
        return _fail("not text")
    if len(expr) > 4 * MAX_EXPR_CHARS:  # cheap early exit before split() copies a huge string
        return _fail(f"answer longer than {MAX_EXPR_CHARS} characters")
    # Newlines and tabs inside an answer are layout, but would be syntax to ast.parse.
    source = " ".join(expr.split())
    if not source:
        return _fail("empty answer")
    if len(source) > MAX_EXPR_CHARS:
        return _fail(f"answer longer than {MAX_EXPR_CHARS} characters")
    depth = 0
    for ch in source:
        if ch == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                return _fail(f"more than {MAX_PAREN_DEPTH} nested parentheses")
        elif ch == ")":
            depth -= 1
    tree = _parse(source)
    if isinstance(tree, str):
        return _fail(tree)
    checked = _check(tree, source)
    if isinstance(checked, str):
        return _fail(checked)
    numbers = checked
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        return _fail("division by zero", numbers, parsed=True)
    except OverflowError:
        return _fail(f"value exceeds {MAX_VALUE_BITS} bits", numbers, parsed=True)
    return Evaluation(parsed=True, numbers=numbers, value=value, error=None)


def _parse(source: str) -> ast.Expression | str:
    """ast.parse in eval mode, or a short error text. Never raises."""
    try:
        if _ARITHMETIC_CHARS.issuperset(source):
            return ast.parse(source, mode="eval")
        # Non-arithmetic text can make the tokenizer warn (e.g. invalid escapes in a string
        # literal); warnings would print, and a reward function must have no side effects.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source, mode="eval")
    except SyntaxError as e:  # includes IndentationError
        if "=" in source:  # models often write "(1 + 2) * 3 = 9": say so plainly
            return "not an expression: contains '='"
        return f"not an expression: {e.msg}"
    except (ValueError, MemoryError, RecursionError, OverflowError) as e:
        return f"not an expression: {type(e).__name__}"


def _check(tree: ast.Expression, source: str) -> tuple[int, ...] | str:
    """Whitelist every node before anything is evaluated; return the literals or an error."""
    numbers: list[int] = []
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return f"more than {MAX_NODES} syntax nodes"
        if depth > MAX_AST_DEPTH:
            return f"nested deeper than {MAX_AST_DEPTH}"
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _ALLOWED_BINOPS:
                return f"operator not allowed: {type(node.op).__name__}"
            # Pushed right first so literals come off the stack in reading order.
            stack.append((node.right, depth + 1))
            stack.append((node.left, depth + 1))
        elif isinstance(node, ast.Constant):
            literal = ast.get_source_segment(source, node) or ""
            if type(node.value) is not int or not (literal.isascii() and literal.isdigit()):
                return f"not an integer literal: {_short(literal or repr(node.value))}"
            if node.value.bit_length() > MAX_VALUE_BITS:
                return f"number exceeds {MAX_VALUE_BITS} bits"
            numbers.append(node.value)
            if len(numbers) > MAX_LITERALS:
                return f"more than {MAX_LITERALS} numbers"
        elif isinstance(node, ast.UnaryOp):
            return f"unary operator not allowed: {type(node.op).__name__}"
        else:
            return f"not arithmetic: {type(node).__name__}"
    return tuple(numbers)


def _eval(node: ast.AST) -> Fraction:
    # Recursion is safe: _check bounded the depth by MAX_AST_DEPTH.
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    assert isinstance(node, ast.BinOp)
    left, right = _eval(node.left), _eval(node.right)
    op = type(node.op)
    if op is ast.Add:
        value = left + right
    elif op is ast.Sub:
        value = left - right
    elif op is ast.Mult:
        value = left * right
    else:
        value = left / right  # ZeroDivisionError is handled by the caller
    if (
        value.numerator.bit_length() > MAX_VALUE_BITS
        or value.denominator.bit_length() > MAX_VALUE_BITS
    ):
        raise OverflowError  # caught by calculate: "value exceeds ... bits"
    return value


def number_problems(used: Iterable[int], given: Iterable[int]) -> list[str]:
    """Why the multiset ``used`` differs from ``given``; empty when each is used exactly once."""
    used_c, given_c = Counter(used), Counter(given)
    problems = [f"number {n} not given" for n in used_c if n not in given_c]
    for n, k in used_c.items():
        if n in given_c and k > given_c[n]:
            times = "twice" if k == 2 else f"{k} times"
            extra = "" if given_c[n] == 1 else f" (given {given_c[n]} times)"
            problems.append(f"number {n} used {times}{extra}")
    for n, k in given_c.items():
        if used_c[n] == 0:
            problems.append(f"number {n} not used")
        elif used_c[n] < k:
            problems.append(f"number {n} used {used_c[n]} of {k} times")
    return problems


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
