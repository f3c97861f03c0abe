"""The nano multiplication corpus (tinyzero.nano.mult_corpus) and its reader (mult_traces)."""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero.nano import mult_corpus as mc
from tinyzero.nano import mult_traces as mt
from tinyzero.tasks.data import load_task_data
from tinyzero.tasks.multiplication import grade

ROWS = [{"a": a, "b": b} for a, b in ((47, 86), (12, 34), (90, 10), (55, 55))]


# --- the writer ---------------------------------------------------------------------------


def test_route_is_long_multiplication():
    steps = mc.route(47, 86, random.Random(0), slip_rate=0.0)
    assert [s.text() for s in steps] == ["47*6=282", "47*80=3760", "282+3760=4042"]
    # More digits: a running sum of the partial products.
    steps = mc.route(12, 305, random.Random(0), slip_rate=0.0)
    assert [s.text() for s in steps] == ["12*5=60", "12*0=0", "12*300=3600", "60+0=60", "60+3600=3660"]


def test_slip_is_one_digit_off_by_one():
    rng = random.Random(1)
    for value in (0, 7, 282, 3760, 4042):
        for _ in range(50):
            wrong = mc.slip(value, rng)
            assert wrong >= 0 and wrong != value
            diff = abs(wrong - value)
            assert diff in {10**k for k in range(len(str(value)) + 1)}


def test_slips_propagate_as_written():
    """A later step adds the partial products as written, slips included."""
    rng = random.Random(0)
    for _ in range(500):
        steps = mc.route(rng.randint(10, 99), rng.randint(10, 99), rng, slip_rate=0.3)
        assert (steps[2].x, steps[2].y) == (steps[0].written, steps[1].written)


def test_slip_rate_is_per_written_value():
    rng = random.Random(0)
    steps = [s for _ in range(4000) for s in mc.route(rng.randint(10, 99), rng.randint(10, 99), rng, 0.1)]
    assert 0.085 < sum(s.slipped for s in steps) / len(steps) < 0.115


def test_checks_are_faithful_and_redo_on_disagreement():
    cfg = mc.MultCorpusConfig(check_rate=1.0, slip_rate=0.3, direct_guess_rate=0.0)
    rng = random.Random(2)
    seen_no = seen_redo_yes = 0
    for _ in range(400):
        t = mc.trace(rng.randint(10, 99), rng.randint(10, 99), rng, cfg)
        work, check, *redos = t.lines
        assert work.kind == "work" and check.kind == "check" and all(r.kind == "redo" for r in redos)
        # The check swaps the operands and compares with the value written, slips included.
        assert (check.equations[0].x, check.compared) == (t.b, work.value)
        assert check.verdict == ("yes" if check.value == work.value else "no")
        assert (check.verdict == "yes") == (not redos)
        for r in redos:
            assert r.compared == check.value and r.verdict == ("yes" if r.value == check.value else "no")
        assert len(redos) <= cfg.max_redos
        assert t.answer == t.lines[-1].value if redos else t.answer == work.value
        seen_no += check.verdict == "no"
        seen_redo_yes += any(r.verdict == "yes" for r in redos)
    assert seen_no > 50 and seen_redo_yes > 20


def test_no_filtering_to_correct_answers():
    rng = random.Random(3)
    traces = [mc.trace(rng.randint(10, 99), rng.randint(10, 99), rng) for _ in range(3000)]
    wrong = sum(t.answer != t.a * t.b for t in traces) / len(traces)
    checked = sum(any(line.kind == "check" for line in t.lines) for t in traces) / len(traces)
    assert 0.05 < wrong < 0.4
    assert 0.02 < checked <= 0.1


def test_documents_are_seeded():
    assert mc.documents(ROWS, 200, seed=5) == mc.documents(ROWS, 200, seed=5)
    assert mc.documents(ROWS, 200, seed=5) != mc.documents(ROWS, 200, seed=6)
    docs = mc.documents(ROWS, 200, seed=5)
    assert all(d.endswith("<eos>") for d in docs)
    traces = [d for d in docs if d.startswith("Multiply ")]
    assert 100 < len(traces) < 190  # drill pages are the rest
    assert "Multiply 47 by 86.\n<think>" in "".join(traces)


def test_drill_pages_are_correct_steps_without_prompt():
    rng = random.Random(0)
    for _ in range(100):
        page = mc.drill_page(ROWS, rng)
        lines = page.split("\n")
        assert 2 <= len(lines) <= mc.MultCorpusConfig().drill_lines
        for text in lines:
            (step,) = mt.parse_line(text).equations
            assert not step.slipped


def test_documents_tokenize_without_unknowns():
    from tinyzero.nano.tokenizer import UNK, build_tokenizer

    tok = build_tokenizer()
    for doc in mc.documents(ROWS, 50, seed=0, cfg=mc.MultCorpusConfig(check_rate=0.5)):
        ids = tok(doc)["input_ids"]
        assert tok.convert_tokens_to_ids(UNK) not in ids
        assert tok.decode(ids) == doc


@pytest.mark.parametrize(
    "bad", [{"slip_rate": 1.5}, {"check_rate": -0.1}, {"max_redos": -1}, {"drill_lines": 1}]
)
def test_bad_config_names_the_knob(bad):
    (name,) = bad
    with pytest.raises(ValueError, match=name):
        mc.MultCorpusConfig(**bad)


def test_documents_need_problems():
    with pytest.raises(ValueError, match="no problems"):
        mc.documents([], 3, seed=0)


# --- the data split -----------------------------------------------------------------------


def test_split_is_seeded_held_out_and_loads(tmp_path, monkeypatch):
    """The nano split as ``data/prepare.py`` builds it: written twice, the same bytes; loaded
    with its checksums; no test problem (or its commuted form) in train."""
    mc.write_split(tmp_path)
    first = {p.name: p.read_bytes() for p in (tmp_path / mc.SPLIT_NAME).iterdir()}
    assert first == {f"{split}.{ext}": blob for split, (data, manifest) in mc.build_split().items()
                     for ext, blob in (("jsonl", data), ("manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()))}
    monkeypatch.setenv("TINYZERO_DATA_DIR", str(tmp_path))
    test = load_task_data(mc.SPLIT_NAME, "test", template="nano")
    train = load_task_data(mc.SPLIT_NAME, "train")
    assert len(test) == 500 and len(train) > 7000
    assert test[0]["prompt"] == f"Multiply {test[0]['a']} by {test[0]['b']}.\n<think>"
    held_out = {(r["a"], r["b"]) for r in test} | {(r["b"], r["a"]) for r in test}
    assert not held_out & {(r["a"], r["b"]) for r in train}
    assert all(10 <= r[k] <= 99 for r in train for k in ("a", "b"))


# --- the reader ---------------------------------------------------------------------------

CAUGHT = (
    "47*6=282 47*80=3760 282+3760=4052\n"
    "wait, let me check: 86*7=602 86*40=3440 602+3440=4042 vs 4052 no\n"
    "redo: 47*6=282 47*80=3760 282+3760=4042 vs 4042 yes</think>\n<answer>4042</answer>"
)
AGREES = (
    "47*6=282 47*80=3760 282+3760=4042\n"
    "wait, let me check: 86*7=602 86*40=3440 602+3440=4042 vs 4042 yes</think>\n<answer>4042</answer>"
)


def test_reader_a_slip_caught_and_fixed():
    s = mt.trace_stats(CAUGHT, 47, 86)
    assert s["slips"] == 1 and s["steps"] == 9
    assert (s["checks"], s["checks_after_slip"], s["checks_caught"], s["checks_faithful"]) == (1, 1, 1, 1)
    assert (s["redos"], s["redos_right"], s["right"], s["malformed"]) == (1, 1, 1, 0)
    assert s["wrong_routes"] == 1
    assert grade(CAUGHT, 47, 86).correct


def test_reader_a_check_that_agrees():
    s = mt.trace_stats(AGREES, 47, 86)
    assert (s["slips"], s["checks"], s["checks_after_slip"], s["checks_caught"], s["redos"]) == (0, 1, 0, 0, 0)
    assert s["right"] == 1 and s["checks_faithful"] == 1


def test_reader_a_check_that_misses_the_slip_and_an_unfaithful_one():
    missed = "47*6=282 47*80=3760 282+3760=4052\nwait, let me check: 86*7=602 86*40=3440 602+3440=4052 vs 4052 yes</think>\n<answer>4052</answer>"
    s = mt.trace_stats(missed, 47, 86)
    # The check's own sum slipped the same way: it follows a slip and does not catch it.
    assert (s["slips"], s["checks_after_slip"], s["checks_caught"], s["checks_faithful"], s["right"]) == (2, 1, 0, 1, 0)
    unfaithful = AGREES.replace("vs 4042 yes", "vs 4042 no")
    assert mt.trace_stats(unfaithful, 47, 86)["checks_faithful"] == 0


@pytest.mark.parametrize(
    "completion",
    [
        "",
        "47*6=282 and then some words</think>\n<answer>4042</answer>",
        "47*6=282 47*80=3760 282+3760=4042",  # cut off: no answer
        "47*6=282</think>\n<answer>forty</answer>",
        "9" * 5000 + "*2=1</think><answer>1</answer>",
        None,
        [{"role": "assistant", "content": "<think>"}],
    ],
)
def test_reader_malformed_does_not_crash(completion):
    s = mt.trace_stats(completion, 47, 86)
    # Malformed, and right only where the grader says so (an unreadable line can end in the product).
    assert s["malformed"] == 1 and s["right"] == int(grade(completion, 47, 86).correct)
    summary = mt.summary([completion, AGREES], [47, 47], [86, 86])
    assert summary["mult/malformed"] == 0.5


def test_summary_rates():
    out = mt.summary([CAUGHT, AGREES, "47*6=282 47*80=3760 282+3760=4042</think>\n<answer>4042</answer>"], [47] * 3, [86] * 3)
    assert out["mult/accuracy"] == 1.0
    assert out["mult/check_rate"] == pytest.approx(2 / 3)
    assert out["mult/check_after_slip"] == 0.5
    assert out["mult/check_catch_rate"] == 1.0
    assert out["mult/slip_checked_right"] == 1.0
    assert out["mult/redo_right"] == 1.0
    assert out["mult/slip_rate"] == pytest.approx(1 / 18)  # 9 + 6 + 3 steps
    assert out["mult/trace_slip_rate"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one|no completions"):
        mt.summary([], [], [])


def test_checks_count_as_self_checks_for_tinyzero_stats():
    from tinyzero import stats

    assert stats.has_self_check(CAUGHT) and not stats.has_self_check(CAUGHT.split("\n")[0])
    assert stats.attempts(CAUGHT) == 2  # the work and the redo; the check is not an attempt


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    a=st.integers(10, 99),
    b=st.integers(10, 999),
    slip_rate=st.floats(0, 1),
    check_rate=st.floats(0, 1),
)
def test_reader_recovers_what_the_writer_wrote(seed, a, b, slip_rate, check_rate):
    cfg = mc.MultCorpusConfig(slip_rate=slip_rate, check_rate=check_rate, direct_guess_rate=0.1)
    t = mc.trace(a, b, random.Random(seed), cfg)
    r = mt.read(t.text())
    assert (r.lines, r.answer, r.malformed) == (t.lines, t.answer, False)
    s = mt.trace_stats(t.text(), a, b)
    assert s["slips"] == sum(eq.slipped for line in t.lines for eq in line.equations)
    assert s["checks_faithful"] == s["checks"]  # the writer's checks are faithful
    assert s["right"] == int(t.answer == a * b) == int(grade(t.text(), a, b).correct)


def test_imports_stay_light():
    # The reader runs inside the training loop's statistics, like tinyzero.nano.traces.
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, tinyzero.nano.mult_corpus, tinyzero.nano.mult_traces; "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'trl') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
