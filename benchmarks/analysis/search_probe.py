"""Can GRPO make searching pay? Three measurements of a nano model, before any RL.

    python benchmarks/analysis/search_probe.py runs/nano-base/<hash>        # a base model (or any nano folder)
    python benchmarks/analysis/search_probe.py runs/nano --temperature 1.0

GRPO can only reward a longer search if a longer search is worth more. On train problems
(the test split is left alone), this prints:

1. the check: the probability of " yes" after a line that reaches the target, and after one
   that misses, read off the model's next-token distribution (teacher-forced, one line after
   the prompt). A model that says "no" to its own hits gains nothing by searching on.
2. the worth of going on: completions sampled at ``--temperature``, split by their first
   attempt (a hit or a miss) and by what came next (another attempt, or the answer), with the
   mean TinyZero reward of each group. "miss, went on" above "miss, stopped" is the gradient
   that GRPO follows towards longer thinking.
3. attempt lines by position: the share of attempt lines that are exactly a line the corpus
   writer could have written for that problem (numbers in order, arithmetic and check right).
   A search that decays with depth earns little from its later attempts.

Every figure is computed, with the grader, from what the model wrote; nothing is evaluated
with ``eval``.
"""

from __future__ import annotations

from collections import defaultdict

from tinyzero.cli import ArgumentParser
from tinyzero.nano import corpus, traces
from tinyzero.tasks.countdown import grade, prompt
from tinyzero.tasks.data import load_task_data
from tinyzero.tasks.grading import thinking_text
from tinyzero.tasks.rewards import score


def reward(completion: str, row: dict) -> float:
    return score(grade(completion, row["nums"], row["target"]))


def check_probabilities(model, tokenizer, rows: list[dict]) -> dict[str, list[float]]:
    import torch

    yes = tokenizer.convert_tokens_to_ids(" yes")
    out: dict[str, list[float]] = {"hit": [], "miss": []}
    for row in rows:
        options = corpus.chains(list(row["nums"]))
        for kind, pool in (("hit", [a for a in options if a.value == row["target"]]),
                           ("miss", [a for a in options if a.value != row["target"]])):
            if not pool:
                continue
            text = corpus.work(pool[0])[0]
            context = prompt(row["nums"], row["target"], "nano") + f"{text} vs {row['target']}"
            ids = tokenizer(context, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                probs = model(ids).logits[0, -1].softmax(-1)
            out[kind].append(probs[yes].item())
    return out


def sample(model, tokenizer, rows: list[dict], n: int, temperature: float, seed: int) -> list[str]:
    """``n`` completions per row, in row order, sampled as GRPOTrainer samples (256 new tokens)."""
    from tinyzero.generation import generate, sampling_config

    config = sampling_config(model, tokenizer, 256, temperature)
    prompts = [prompt(r["nums"], r["target"], "nano") for r in rows]
    groups = generate(model, tokenizer, prompts, config, num_return_sequences=n, batch_size=256, seed=seed)
    return [g.text for group in groups for g in group]


def worth_of_going_on(completions: list[str], rows: list[dict], n: int) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for i, text in enumerate(completions):
        row = rows[i // n]
        attempts = traces.tries(traces.parse_attempts(thinking_text(text)))
        if not attempts:
            groups["no attempt"].append(reward(text, row))
            continue
        first = "hit" if attempts[0].value == row["target"] else "miss"
        groups[f"{first}, {'went on' if len(attempts) > 1 else 'stopped'}"].append(reward(text, row))
    return groups


def lines_by_position(completions: list[str], rows: list[dict], n: int, deepest: int = 12) -> dict[int, list[bool]]:
    by_position: dict[int, list[bool]] = defaultdict(list)
    for i, text in enumerate(completions):
        row = rows[i // n]
        writable = {corpus.check_line(a, row["target"])[0] for a in corpus.chains(list(row["nums"]))}
        lines = [line for line in thinking_text(text).split("\n") if line and not line.startswith("wait")]
        for k, line in enumerate(lines, start=1):
            by_position[min(k, deepest)].append(line in writable)
    return by_position


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a nano model folder (a base model under runs/nano-base/, or a run)")
    parser.add_argument("--problems", type=int, default=200, help="train problems to sample on")
    parser.add_argument("--samples", type=int, default=8, help="completions per problem")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from tinyzero.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(args.model)
    model.eval()
    rows = load_task_data("countdown_nano", "train").to_list()[: args.problems]

    probs = check_probabilities(model, tokenizer, rows)
    print(f"1. the check (teacher-forced P(' yes') after one line, {args.problems} train problems)")
    for kind, ps in probs.items():
        print(f"   {kind:5s} lines: {len(ps):4d}   mean P(yes) {sum(ps) / len(ps):.3f}   P(yes) > 0.5: {sum(p > 0.5 for p in ps) / len(ps):.3f}")

    completions = sample(model, tokenizer, rows, args.samples, args.temperature, args.seed)
    print(f"\n2. the worth of going on ({len(completions)} completions at temperature {args.temperature}; reward 1 / 0.1 / 0)")
    for key, rewards in sorted(worth_of_going_on(completions, rows, args.samples).items()):
        print(f"   first attempt {key:18s} {len(rewards):5d} completions   mean reward {sum(rewards) / len(rewards):.3f}")

    print("\n3. attempt lines the writer could have written, by position (12: 12 and beyond)")
    for k, ok in sorted(lines_by_position(completions, rows, args.samples).items()):
        print(f"   {k:3d}: {len(ok):5d} lines   {sum(ok) / len(ok):.2f} exact")


if __name__ == "__main__":
    main()
