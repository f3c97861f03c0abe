"""The nano base model's pieces: tokenizer round trip, the corpus, and the pretrain cache."""

import dataclasses
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyzero.nano import corpus, traces
from tinyzero.nano import tokenizer as nano
from tinyzero.tasks import countdown
from tinyzero.tasks.data import load_task_data
from tinyzero.tasks.grading import calculate, is_well_formed, thinking_text


def test_tokenizer_round_trip_and_single_token_tags(tmp_path):
    tok = nano.build_tokenizer()
    nano.save_tokenizer(tok, tmp_path)
    loaded = nano.load_tokenizer(tmp_path)
    text = "Make 23 from 3 5 4.\n<think>5*4=20 20+3=23 vs 23 yes</think>\n<answer>(5*4)+3</answer>"
    ids = loaded(text)["input_ids"]
    assert loaded.decode(ids) == text  # spaces and newlines survive (Qwen2's byte tokenizer drops them)
    assert all(len(loaded(t)["input_ids"]) == 1 for t in nano.TAGS)
    assert loaded.decode(ids + [loaded.eos_token_id], skip_special_tokens=True) == text
    assert nano.is_nano_folder(tmp_path)
    # Numbers below 1000 are one token each; longer digit runs are cut into groups of three.
    assert loaded.convert_ids_to_tokens(loaded("20+3=23")["input_ids"]) == ["20", "+", "3", "=", "23"]
    assert loaded.convert_ids_to_tokens(loaded("1234 007")["input_ids"]) == ["123", "4", " ", "007"]
    with pytest.raises(ValueError, match="not a tinyzero nano model folder"):
        nano.load_tokenizer(tmp_path / "missing")


@given(st.text(alphabet=nano.CHARS, max_size=200))
def test_tokenizer_round_trips_every_string_over_its_characters(text):
    tok = _TOKENIZER
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


_TOKENIZER = nano.build_tokenizer()


def test_corpus_traces_are_faithful_searches():
    rows = load_task_data("countdown_nano", "train").to_list()[:300]
    rng = random.Random(0)
    cfg = corpus.CorpusConfig(slip_rate=0.0)
    lengths = []
    for row in rows:
        text = corpus.trace(row["nums"], row["target"], rng, cfg)
        assert is_well_formed("<think>" + text)
        thinking = thinking_text(text)
        attempts = traces.parse_attempts(thinking)
        lengths.append(len(attempts))
        verdict = countdown.grade(text, row["nums"], row["target"])
        assert verdict.numbers_ok  # every attempt uses each number exactly once
        for a in attempts:  # with no slips, every written value and check is right
            assert a.value == a.written
            assert a.verdict == corpus.verdict(a.written, row["target"])
        if attempts:
            # the answer is the last attempt's expression; a "yes" ends the search
            assert calculate(verdict.answer).value == attempts[-1].value
            tries = [a for a in attempts if not a.self_check]
            assert all(a.verdict != "yes" for a in tries[:-1])
    assert max(lengths) >= 5 and 0 in lengths  # variable length, with some bare guesses


def test_writer_chains_use_each_number_once_and_checks_say_which_way():
    for nums in ([3, 5, 4], [9, 9, 1], [2, 8, 8]):
        options = corpus.chains(nums)
        assert len(options) == 9
        for att in options:
            ev = calculate(att.expr)
            assert ev.value == att.value >= 0 and sorted(ev.numbers) == sorted(nums), att
    assert (corpus.verdict(23, 23), corpus.verdict(20, 23), corpus.verdict(35, 23)) == ("yes", "low", "high")
    line, hit = corpus.check_line(corpus.chains([3, 5, 4])[2], 23)  # (3+5)-4
    assert (line, hit) == ("3+5=8 8-4=4 vs 23 low", False)
    # pairings="all": any two numbers first, 27 chains, all distinct and each using every number once
    for nums in ([3, 5, 4], [2, 9, 4]):
        options = corpus.chains(nums, "all")
        assert len(options) == 27 and len({att.expr for att in options}) == 27 and options[:9] == corpus.chains(nums)
        for att in options:
            ev = calculate(att.expr)
            assert ev.value == att.value and sorted(ev.numbers) == sorted(nums), att
    # (8-3)*7 = 35: no chain that starts with 3 and 7 reaches it
    assert 35 not in {a.value for a in corpus.chains([3, 7, 8])} and 35 in {a.value for a in corpus.chains([3, 7, 8], "all")}
    with pytest.raises(ValueError, match="pairings 'some'"):
        corpus.CorpusConfig(pairings="some")


def test_distinct_writers_never_repeat_and_practice_pages_search_without_think():
    rows = load_task_data("countdown_nano", "train").to_list()[:300]
    rng = random.Random(0)
    cfg = corpus.CorpusConfig(
        search_order="distinct", diligent_rate=1.0, persistence_high=1.0, self_check_rate=0.0, slip_rate=0.0, direct_guess_rate=0.0
    )
    lengths = []
    for row in rows:
        tries = traces.tries(traces.parse_attempts(thinking_text(corpus.trace(row["nums"], row["target"], rng, cfg))))
        exprs = [a.expr for a in tries]
        assert len(exprs) == len(set(exprs)), exprs
        lengths.append(len(exprs))
        hits = [c for c in corpus.chains(row["nums"]) if c.value == row["target"]]
        if not hits:  # an unsolvable problem: a fully persistent writer tries all 9 chains, then answers
            assert len(exprs) == 9
    assert max(lengths) == 9
    cycle = dataclasses.replace(cfg, search_order="cycle")
    order = [a.expr for a in corpus.chains([3, 5, 4])]
    for seed in range(5):
        tries = traces.tries(traces.parse_attempts(thinking_text(corpus.trace([3, 5, 4], 1000, random.Random(seed), cycle))))
        start = order.index(tries[0].expr)  # a random start, then the fixed cycle through all 9
        assert [a.expr for a in tries] == order[start:] + order[:start]
    with pytest.raises(ValueError, match="search_order 'sorted'"):
        corpus.CorpusConfig(search_order="sorted")
    page = corpus.practice_page([3, 5, 4], 19, random.Random(1), corpus.CorpusConfig(max_attempts=12))
    assert "<think>" not in page and "<answer>" not in page
    atts = traces.parse_attempts(page)
    assert atts and all(a.verdict != "yes" for a in atts[:-1])  # it stops at its first hit
    assert len(atts) == 12 or atts[-1].verdict == "yes"


def test_practice_pages_end_the_document_only_with_practice_eos():
    # practice_eos false (tried on 2026-12-02, not the recipe): every trace and worksheet ends in
    # eos and no practice page does, so eos right after an attempt line is never taught. True
    # (the recipe) writes the corpus from before the knob, under the same keys.
    from tinyzero.nano import build

    cfg = dataclasses.replace(build.load_config(), num_traces=400)
    assert cfg.practice_eos is True
    for eos_after_pages in (False, True):
        docs = build.build_corpus(dataclasses.replace(cfg, practice_eos=eos_after_pages))
        pages = [d for d in docs if d.startswith("Make") and "<think>" not in d]
        others = [d for d in docs if d not in pages]
        assert len(pages) > 40 and len(others) > 300
        assert all(d.endswith(nano.EOS) and d.count(nano.EOS) == 1 for d in others)
        assert all(p.count(nano.EOS) == p.endswith(nano.EOS) == eos_after_pages for p in pages)
    # The keys of the grid's base models (seeds 0 and 1) stand; the knob makes new ones.
    assert build.load_config().key() == "a6a2c2b9c4ed"
    assert build.load_config(None, ["--seed", "1"]).key() == "7b89b24ed8f7"
    assert build.load_config(None, ["--practice_eos", "false"]).key() == "a5596395d9ed"


def test_corpus_is_deterministic_for_a_seed():
    a = [corpus.trace([3, 5, 4], 23, random.Random(7)) for _ in range(3)]
    b = [corpus.trace([3, 5, 4], 23, random.Random(7)) for _ in range(3)]
    assert a == b


def test_pretrain_caches_by_config(tmp_path, monkeypatch):
    from tinyzero.nano import build

    monkeypatch.setenv("TINYZERO_HOME", str(tmp_path))
    tiny = ["--num_traces", "64", "--max_steps", "2", "--batch_size", "8", "--hidden_size", "32",
            "--intermediate_size", "64", "--num_layers", "1", "--warmup_steps", "0"]
    path = build.ensure_base_model(build.load_config(None, tiny))
    assert path.parent == tmp_path / "nano-base" and (path / "pretrain.json").is_file()
    assert nano.load_tokenizer(path).decode(nano.load_tokenizer(path)("Make 1")["input_ids"]) == "Make 1"
    stamp = (path / "pretrain.json").stat().st_mtime
    assert build.ensure_base_model(build.load_config(None, tiny)) == path  # reused, not retrained
    assert (path / "pretrain.json").stat().st_mtime == stamp
    other = build.ensure_base_model(build.load_config(None, [*tiny, "--seed", "1"]))
    assert other != path


def test_search_summary_counts_checked_hits():
    thinkings = [
        "3+5=8 8*4=32 vs 19 high\n3*5=15 15+4=19 vs 19 yes",  # a miss, then a hit said yes
        "3*5=15 15+4=20 vs 19 high",  # a true hit with an arithmetic slip: checked "high"
    ]
    s = traces.search_summary(thinkings, [19, 19])
    assert s["search/hits"] == 2 and s["search/hit_yes_rate"] == 0.5
    assert s["search/arithmetic_ok"] == 2 / 3
    assert s["search/continue_after_no"] == 0.5  # the first trace went on after its "no", the second did not
    assert s["search/repeat_rate"] == 0.0
    again = traces.search_summary(["3+5=8 8*4=32 vs 19 high\n3+5=8 8*4=32 vs 19 high\n3*5=15 15+4=19 vs 19 yes"], [19])
    assert again["search/repeat_rate"] == 1 / 3  # the second attempt repeats the first


def test_a_check_is_faithful_to_the_value_written_not_to_the_truth():
    (slip,) = traces.parse_attempts("3*5=15 15+4=20 vs 19 high")  # a hit hidden by a slip: faithful
    (no_on_hit,) = traces.parse_attempts("3*5=15 15+4=19 vs 19 low")  # a written hit checked "no"
    (fake_yes,) = traces.parse_attempts("3+5=8 8*4=32 vs 19 yes")
    (wrong_target,) = traces.parse_attempts("3*5=15 15+4=19 vs 18 high")  # the target miscopied
    (hit,) = traces.parse_attempts("3*5=15 15+4=19 vs 19 yes")
    assert slip.faithful(19) and hit.faithful(19)
    assert not no_on_hit.faithful(19) and not fake_yes.faithful(19) and not wrong_target.faithful(19)
    s = traces.search_summary(["3*5=15 15+4=19 vs 19 low\n3*5=15 15+4=19 vs 19 yes"], [19])
    assert s["search/check_faithful"] == 0.5 and s["search/hit_yes_rate"] == 0.5


def test_faithful_checks_reward_docks_a_wrong_check_by_a_factor():
    from tinyzero.tasks.countdown import answer_reward

    reward = traces.with_faithful_checks(answer_reward, 0.5)
    honest = "3*5=15 15+4=19 vs 19 yes</think><answer>3*5+4</answer>"
    went_on = "3*5=15 15+4=19 vs 19 high\n3*5=15 15+4=19 vs 19 yes</think><answer>3*5+4</answer>"
    wrong = "3+5=8 8*4=32 vs 19 yes</think><answer>(3+5)*4</answer>"  # a fake "yes", answered
    rows = {"nums": [[3, 5, 4]] * 3, "target": [19] * 3}
    assert answer_reward([honest, went_on, wrong], **rows) == [1.0, 1.0, 0.1]  # the drift is free
    assert reward([honest, went_on, wrong], **rows) == [1.0, 0.5, 0.05]  # not with the penalty
    assert reward(["no lines at all</think><answer>3*5+4</answer>"], nums=[[3, 5, 4]], target=[19]) == [1.0]
    slipped = "3*5=16 16+4=20 vs 19 high\n3*5=15 15+4=19 vs 19 yes</think><answer>3*5+4</answer>"  # a hit hidden by a slip
    assert reward([slipped], nums=[[3, 5, 4]], target=[19]) == [1.0]  # its check is faithful
    assert traces.with_faithful_checks(answer_reward, 0.5, slips=True)([slipped], nums=[[3, 5, 4]], target=[19]) == [0.5]
    with pytest.raises(ValueError, match="check_penalty"):
        traces.with_faithful_checks(answer_reward, 1.5)


def test_search_summary_tells_useful_self_checks_from_repetition():
    thinkings = [
        # a slip (3*5 is not 16), caught: the recomputation writes the true value
        "3*5=16 16+4=20 vs 19 high\nwait, let me check: 3*5=15 15+4=19 vs 19 yes",
        # a correct attempt re-checked: repetition
        "3+5=8 8*4=32 vs 19 high\nwait, let me check: 3+5=8 8*4=32 vs 19 high",
        # a slip repeated: not caught
        "3*5=16 16+4=20 vs 19 high\nwait, let me check: 3*5=16 16+4=20 vs 19 high",
    ]
    s = traces.search_summary(thinkings, [19, 19, 19])
    assert s["search/self_check_after_slip"] == 2 / 3
    assert s["search/self_check_fix_rate"] == 0.5


def test_pretraining_is_deterministic_across_thread_counts(tmp_path):
    # The cache key names the config; this checks that it also names the weights: two builds
    # of the same config, in fresh processes at 1 and 2 torch threads, give the same model.
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    repo = Path(__file__).resolve().parent.parent
    tiny = ["--num_traces", "200", "--max_steps", "20", "--batch_size", "8", "--hidden_size", "32",
            "--intermediate_size", "64", "--num_layers", "1", "--warmup_steps", "0"]
    weights, losses = [], []
    for threads in (1, 2):
        home = tmp_path / f"t{threads}"
        env = {**os.environ, "TINYZERO_HOME": str(home), "PYTHONPATH": str(repo)}
        subprocess.run([sys.executable, "-m", "tinyzero.pretrain", *tiny, "--torch_threads", str(threads)], cwd=repo, env=env, check=True,
                       capture_output=True, timeout=600)
        (folder,) = (home / "nano-base").iterdir()
        weights.append(load_file(folder / "model.safetensors"))
        losses.append(json.loads((folder / "pretrain.json").read_text())["train_loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert max((weights[0][k] - weights[1][k]).abs().max().item() for k in weights[0]) <= 1e-6


def test_pretraining_pins_the_kernels_that_decide_its_bits(tmp_path):
    # The kernels torch and MKL pick depend on the CPU (AVX2 or AVX-512): builds that pick
    # differently round differently, and pretraining turns that into another model. tinyzero
    # pins them (tinyzero/__init__.py); this checks the pin is in force in a build, that it
    # holds when MKL would pick otherwise, and (where the CPU runs AVX-512) that without it the
    # bits do change, so that the pin is what makes a rebuild match on another machine.
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    from tinyzero import IS_X86_64, PINNED_NUMERICS

    if not IS_X86_64:
        pytest.skip("the pin is for x86-64 CPUs")
    repo = Path(__file__).resolve().parent.parent
    tiny = ["--num_traces", "400", "--max_steps", "60", "--batch_size", "8", "--hidden_size", "32",
            "--intermediate_size", "64", "--num_layers", "1", "--warmup_steps", "0"]

    def build(name, **env_changes):
        env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
        env.update(TINYZERO_HOME=str(tmp_path / name), PYTHONPATH=str(repo), **env_changes)
        subprocess.run([sys.executable, "-m", "tinyzero.pretrain", *tiny], cwd=repo, env=env, check=True,
                       capture_output=True, timeout=600)
        (folder,) = (tmp_path / name / "nano-base").iterdir()
        return load_file(folder / "model.safetensors"), json.loads((folder / "pretrain.json").read_text())

    def gap(a, b):
        return max((a[k] - b[k]).abs().max().item() for k in a)

    pinned, info = build("pinned")
    assert info["numerics"] == PINNED_NUMERICS
    other_mkl, _ = build("mkl-avx512", MKL_ENABLE_INSTRUCTIONS="AVX512")
    assert gap(pinned, other_mkl) == 0.0
    # The negative control forces AVX-512, which torch takes on trust: on a CPU without it the
    # build dies of SIGILL (CI's did). Ask torch, outside tinyzero's pin, what this CPU runs.
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    native = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                            env=env, check=True, capture_output=True, text=True, timeout=120).stdout.strip()
    if native != "AVX512":
        pytest.skip(f"the pin holds; no negative control here (torch runs {native} on this CPU, not AVX512)")
    unpinned, info = build("avx512", ATEN_CPU_CAPABILITY="avx512")
    assert info["numerics"]["cpu_capability"] == "AVX512"
    assert gap(pinned, unpinned) > 1e-7


def test_the_recipe_base_model_ships_and_is_used_without_pretraining(tmp_path, monkeypatch):
    from tinyzero.nano import build

    monkeypatch.setenv("TINYZERO_HOME", str(tmp_path))  # an empty cache, as on a fresh clone
    cfg = build.load_config()
    shipped = build.shipped_model(cfg)
    # A change of the recipe, the corpus or CORPUS_VERSION changes the key: reship the model
    # (python -m tinyzero.pretrain --rebuild true; copy runs/nano-base/<key>/ to tinyzero/nano/shipped/).
    assert shipped is not None, f"no shipped base model for the recipe's key {cfg.key()}"
    monkeypatch.setattr(build, "pretrain", lambda *a, **k: pytest.fail("pretrained although the model ships"))
    assert build.ensure_base_model() == shipped
    info = json.loads((shipped / "pretrain.json").read_text())
    assert info["key"] == cfg.key() and info["config"] == dataclasses.asdict(cfg)
    assert nano.load_tokenizer(shipped).decode(nano.load_tokenizer(shipped)("Make 19 from 3 5 4.")["input_ids"]) == "Make 19 from 3 5 4."


@pytest.mark.slow
def test_a_rebuild_of_the_shipped_base_model_matches_it(tmp_path):
    # The shipped model is a build of the recipe, not a lucky one: pretrain it again from
    # scratch (the full recipe, 15-25 minutes at one thread) and compare. Tolerance: train loss
    # within 1e-4 and every weight within 1e-4 (the same computation gives the same bits; the
    # margin allows a CPU that sums in another order, without letting a different model pass).
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    from tinyzero.nano import build

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "TINYZERO_HOME": str(tmp_path), "PYTHONPATH": str(repo)}
    subprocess.run([sys.executable, "-m", "tinyzero.pretrain", "--rebuild", "true"], cwd=repo, env=env, check=True,
                   capture_output=True, timeout=3600)
    shipped = build.shipped_model(build.load_config())
    (rebuilt,) = (tmp_path / "nano-base").iterdir()
    assert rebuilt.name == shipped.name
    loss = [json.loads((d / "pretrain.json").read_text())["train_loss"] for d in (rebuilt, shipped)]
    assert loss[0] == pytest.approx(loss[1], abs=1e-4)
    a, b = load_file(rebuilt / "model.safetensors"), load_file(shipped / "model.safetensors")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-4
