"""Fuzz both task graders with random and adversarial completions; report crashes and speed.

    nice -n 10 python benchmarks/perf/fuzz_grader.py                 # 1,000,000 inputs (minutes)
    python benchmarks/perf/fuzz_grader.py --inputs 20000 --seed 1    # a quick look

Each input goes to ``countdown.grade`` and to ``multiplication.grade``. Inputs mix: random
printable and unicode strings, mutations of correct answers, deep parenthesis nesting, huge
numbers, tag soup, code-injection strings, megabyte strings, message lists and non-text
objects. Every call is timed twice over: wall clock, and the thread's CPU time (which does not
count time the process spent preempted, so it separates a slow grader from a busy machine:
the CPU here is shared). Any call over the budget (10 ms wall) is also re-timed 5 times.

Also checks invariants (a Verdict comes back; "correct" implies the exact value). Exit code
1 on any exception, invariant failure, or call still over budget when re-timed; else 0.
Not part of the test suite.
"""

from __future__ import annotations

import platform
import random
import string
import sys
import time
from array import array
from collections import Counter, defaultdict

from tinyzero.cli import ArgumentParser
from tinyzero.tasks import countdown, multiplication
from tinyzero.tasks.grading import Verdict

BUDGET_MS = 10.0
TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
ARITH = "0123456789+-*/() "
INJECTIONS = [
    "__import__('os').system('echo pwned')",
    "(lambda: 1)()",
    "open('/etc/passwd').read()",
    "exec('1')",
    "eval('1+1')",
    "().__class__.__bases__[0].__subclasses__()",
    "globals()",
    "x",
    "1 if True else 2",
    "[i for i in range(10**9)]",
    "9**9**9",
    "10**10**10",
    "2 << 10**9",
    "'a' * 10**9",
    "f'{1}'",
    "b'1'",
    "(x := 1)",
    "1; 2",
    "import os",
    "1 = 1",
    "'\\d'",
    "1\x00",
    "\ud800",
]


def make_problems(rng: random.Random) -> tuple[list[dict], list[dict]]:
    cd = countdown.generate(200, seed=rng.randrange(2**32))
    mul = multiplication.generate(200, seed=rng.randrange(2**32))
    return cd, mul


def mutate(text: str, rng: random.Random, k: int) -> str:
    chars = list(text)
    for _ in range(k):
        op = rng.randrange(4)
        pos = rng.randrange(len(chars) + 1)
        if op == 0:
            chars.insert(pos, rng.choice(ARITH + "<>/.e_x"))
        elif op == 1 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op == 2 and chars:
            chars[min(pos, len(chars) - 1)] = rng.choice(ARITH)
        else:
            chars.insert(pos, rng.choice(TAGS))
    return "".join(chars)


class Inputs:
    """A seeded stream of (kind, completion) pairs."""

    def __init__(self, rng: random.Random, cd_rows: list[dict], mul_rows: list[dict]):
        self.rng = rng
        self.cd_rows, self.mul_rows = cd_rows, mul_rows
        printable = string.printable
        # Megabyte inputs are built once and reused: building them dominates otherwise.
        self.huge = [
            "a" * 1_000_000,
            "<answer>" * 125_000,
            "</answer>" * 111_111,
            "<answer>" + "9" * 1_000_000 + "</answer>",
            "<answer>" + "(" * 500_000 + "1" + ")" * 500_000 + "</answer>",
            "</think>" * 60_000 + "<answer>1</answer>" * 20_000,
            "<think>" + "".join(random.Random(0).choice(printable) for _ in range(1_000_000)) + "</think><answer>1+2</answer>",
            "<answer>" + "1+" * 500_000 + "1</answer>",
        ]
        self.kinds = [
            ("random_printable", 20), ("random_unicode", 6), ("mutated_answer", 24),
            ("arith_soup", 14), ("tag_soup", 10), ("deep_nesting", 4), ("huge_numbers", 4),
            ("injection", 6), ("messages", 8), ("non_text", 2), ("huge_input", 2),
        ]
        self.names = [k for k, _ in self.kinds]
        self.weights = [w for _, w in self.kinds]

    def __iter__(self):
        while True:
            kind = self.rng.choices(self.names, self.weights)[0]
            yield kind, getattr(self, kind)()

    def random_printable(self):
        return "".join(self.rng.choices(string.printable, k=self.rng.randrange(0, 300)))

    def random_unicode(self):
        n = self.rng.randrange(0, 100)
        return "".join(chr(self.rng.choice([self.rng.randrange(0x110000), self.rng.randrange(0x80)])) for _ in range(n))

    def mutated_answer(self):
        row = self.rng.choice(self.cd_rows)
        base = f"Let me think.</think>\n<answer>{row['solution']}</answer>"
        if self.rng.random() < 0.3:
            other = self.rng.choice(self.mul_rows)
            base = f"</think><answer>{other['product']:,}</answer>"
        return mutate(base, self.rng, self.rng.randrange(0, 6))

    def arith_soup(self):
        body = "".join(self.rng.choices(ARITH, k=self.rng.randrange(1, 400)))
        return f"</think><answer>{body}</answer>"

    def tag_soup(self):
        parts = self.rng.choices(TAGS + ["1 + 2", " ", "x", "\n", "44", "*"], k=self.rng.randrange(0, 2000))
        return "".join(parts)

    def deep_nesting(self):
        k = self.rng.choice([10, 31, 32, 33, 100, 199, 200, 201, 1000, 10_000])
        inner = self.rng.choice(["1", "1+2", ""])
        close = ")" * (k if self.rng.random() < 0.8 else self.rng.randrange(k + 1))
        return f"<answer>{'(' * k}{inner}{close}</answer>"

    def huge_numbers(self):
        choice = self.rng.randrange(4)
        if choice == 0:
            return "<answer>" + "9" * self.rng.randrange(1, 5000) + "</answer>"
        if choice == 1:
            return "<answer>" + "*".join(["99999999"] * self.rng.randrange(2, 40)) + "</answer>"
        if choice == 2:
            return "<answer>" + "/".join(["97"] * self.rng.randrange(2, 40)) + "</answer>"
        return "<answer>" + ",".join(["999"] * self.rng.randrange(1, 40)) + "</answer>"

    def injection(self):
        return f"</think><answer>{self.rng.choice(INJECTIONS)}</answer>"

    def messages(self):
        inner = self.rng.choice([self.mutated_answer, self.tag_soup, self.random_printable, self.arith_soup])()
        shape = self.rng.randrange(5)
        if shape == 0:
            return [{"role": "assistant", "content": inner}]
        if shape == 1:
            return [{"role": "user", "content": "q"}, {"role": "assistant", "content": inner}]
        if shape == 2:
            return [{"role": "assistant", "content": [{"type": "text", "text": inner}, {"type": "image"}]}]
        if shape == 3:
            return [{"role": "assistant", "content": inner[i : i + 7]} for i in range(0, min(len(inner), 7000), 7)]
        return [{"role": self.rng.choice(["assistant", None, 3]), "content": self.rng.choice([inner, None, 5, [None]])}]

    def non_text(self):
        return self.rng.choice([None, 0, 1.5, b"<answer>1</answer>", [], {}, [None], {"content": 1}, object(), ["<answer>1</answer>"]])

    def huge_input(self):
        return self.rng.choice(self.huge)


def check(verdict: object, target: int | None) -> str | None:
    if not isinstance(verdict, Verdict):
        return f"returned {type(verdict).__name__}"
    if verdict.correct and (verdict.value is None or verdict.value != target):
        return "correct without the target value"
    if verdict.correct and not (verdict.has_answer and verdict.parsed and verdict.numbers_ok):
        return "correct but a flag is False"
    if not isinstance(verdict.reason, str) or not verdict.reason:
        return "empty reason"
    return None


def describe(obj: object, limit: int = 80) -> str:
    text = repr(obj)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} chars)"


def main() -> int:
    parser = ArgumentParser(description="Fuzz tinyzero's graders.")
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    cd_rows, mul_rows = make_problems(rng)
    stream = iter(Inputs(rng, cd_rows, mul_rows))
    per_kind = Counter()
    slowest_by_kind: dict[str, float] = defaultdict(float)
    exceptions: list[str] = []
    violations: list[str] = []
    over_budget: list[tuple[float, str, str, object, tuple]] = []
    slowest = (0.0, "", "", None)
    slowest_cpu = (0, "", "", None)
    wall_ns = array("q")
    total_ns = 0
    calls = 0
    correct = Counter()
    start = time.perf_counter()
    for i in range(args.inputs):
        kind, completion = next(stream)
        per_kind[kind] += 1
        row = cd_rows[i % len(cd_rows)]
        mrow = mul_rows[i % len(mul_rows)]
        for name, fn, fargs, target in (
            ("countdown", countdown.grade, (row["nums"], row["target"]), row["target"]),
            ("multiplication", multiplication.grade, (mrow["a"], mrow["b"]), mrow["product"]),
        ):
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            try:
                verdict = fn(completion, *fargs)
            except Exception as e:  # noqa: BLE001 (the point of the benchmark: there must be none)
                exceptions.append(f"{name} {kind}: {type(e).__name__}: {e} on {describe(completion)}")
                continue
            finally:
                dt = time.perf_counter_ns() - t0
                cpu = time.thread_time_ns() - c0
                total_ns += dt
                calls += 1
                wall_ns.append(dt)
                if cpu > slowest_cpu[0]:
                    slowest_cpu = (cpu, name, kind, completion)
            ms = dt / 1e6
            slowest_by_kind[kind] = max(slowest_by_kind[kind], ms)
            if ms > slowest[0]:
                slowest = (ms, name, kind, completion)
            if ms > BUDGET_MS:
                over_budget.append((ms, name, kind, completion, fargs))
            problem = check(verdict, target)
            if problem:
                violations.append(f"{name} {kind}: {problem} on {describe(completion)}")
            correct[name] += verdict.correct
    wall = time.perf_counter() - start

    # Re-time every over-budget call: a slow grader stays slow, a busy machine does not.
    retimed = []
    for ms, name, kind, completion, fargs in over_budget:
        fn = countdown.grade if name == "countdown" else multiplication.grade
        best = min(_timed(fn, completion, fargs) for _ in range(5))
        retimed.append((best, ms, name, kind, completion))
    retimed.sort(key=lambda r: r[0], reverse=True)

    print(f"python {platform.python_version()}, {platform.machine()}")
    print(f"inputs:               {args.inputs:,} (seed {args.seed})")
    print(f"grader calls:         {calls:,} (countdown.grade and multiplication.grade on each input)")
    print(f"exceptions:           {len(exceptions)}")
    print(f"invariant violations: {len(violations)}")
    print(f"correct verdicts:     countdown {correct['countdown']:,}, multiplication {correct['multiplication']:,}")
    print(f"time in graders:      {total_ns / 1e9:.1f} s; wall {wall:.1f} s (including input generation)")
    print(f"calls per second:     {calls / (total_ns / 1e9):,.0f} (grader time only)")
    print(f"mean call:            {total_ns / calls / 1e3:.1f} us")
    ordered = sorted(wall_ns)
    pct = ", ".join(f"p{q:g} {ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] / 1e3:.0f} us"
                    for q in (50, 99, 99.9, 99.99))
    print(f"wall time per call:   {pct}")
    print(f"slowest call (wall):  {slowest[0]:.2f} ms ({slowest[1]}, {slowest[2]}: {describe(slowest[3], 60)})")
    print(f"slowest call (CPU):   {slowest_cpu[0] / 1e6:.2f} ms ({slowest_cpu[1]}, {slowest_cpu[2]}: {describe(slowest_cpu[3], 60)})")
    print(f"calls over {BUDGET_MS:.0f} ms wall: {len(over_budget)}; re-timed (min of 5 runs each):")
    for best, ms, name, kind, completion in retimed[:20]:
        print(f"  {ms:7.2f} ms -> {best:5.2f} ms  {name:<14} {kind:<16} {describe(completion, 40)}")
    print(f"still over {BUDGET_MS:.0f} ms when re-timed: {sum(r[0] > BUDGET_MS for r in retimed)}")
    print("inputs and slowest call by kind:")
    for kind in sorted(per_kind, key=per_kind.get, reverse=True):
        print(f"  {kind:<17} {per_kind[kind]:>9,}  {slowest_by_kind[kind]:8.2f} ms")
    for line in (exceptions + violations)[:20]:
        print("  !", line)
    slow_for_real = sum(r[0] > BUDGET_MS for r in retimed)
    return 1 if exceptions or violations or slow_for_real else 0


def _timed(fn, completion, fargs) -> float:
    t0 = time.perf_counter_ns()
    fn(completion, *fargs)
    return (time.perf_counter_ns() - t0) / 1e6


if __name__ == "__main__":
    sys.exit(main())
