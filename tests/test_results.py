import json
import subprocess
import sys

import numpy as np
import pytest

from memgen import results as res
from memgen.cli import main
from memgen.configs import get_profile

REQUIRED = ("task", "p", "width", "noise", "activation", "seed", "steps", "train_acc", "clean_acc", "noisy_acc",
            "test_acc", "G_test_acc", "G_noisy_acc", "R_test_acc", "R_noisy_acc")


@pytest.fixture
def tiny_plan(monkeypatch):
    prof = get_profile("test")
    configs = [prof.config(width=9, noise=a, steps=40) for a in (0.0, 0.4)]
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"grid": configs})
    monkeypatch.setattr(res, "inspected", lambda profile: [configs[1]])
    return configs


def test_produce_is_resumable_and_records_verify(tmp_path, tiny_plan):
    assert res.produce("test", root=tmp_path) == (2, 0, 0)
    assert res.produce("test", root=tmp_path) == (0, 2, 0)  # nothing retrained
    recs = res.load("test", root=tmp_path)
    assert [r["noise"] for r in recs] == [0.0, 0.4]
    for r in recs:
        assert set(REQUIRED) <= set(r) and r["provenance"]["profile"] == "test"
        assert r["history"]["step"][-1] == 40 and r["provenance"]["device"] == "cpu"
    store = res.Results("test", tmp_path)
    w = store.weights(tiny_plan[1])
    assert w is not None and w.U.dtype.is_floating_point and store.weights(tiny_plan[0]) is None
    assert "P = 23" in res.provenance(recs) and "cpu" in res.provenance(recs)
    # the step's mode is recorded (eager on the CPU by default) and named only where it compiled
    assert [r["provenance"]["compiled"] for r in recs] == [False, False]
    assert "compiled" not in res.provenance(recs)
    recs[1]["provenance"]["compiled"] = True
    assert f"(engine {res.ENGINE_VERSION}, 1 with the compiled step) on cpu" in res.provenance(recs)


def test_produce_can_select_widths_and_noises(tmp_path, tiny_plan, monkeypatch, capsys):
    assert res.produce("test", root=tmp_path, widths=[9], noises=[0.4]) == (1, 0, 0)
    assert [r["noise"] for r in res.load("test", root=tmp_path)] == [0.4]
    assert res.produce("test", root=tmp_path, noises=[0.0, 0.4]) == (1, 1, 0)  # the rest, later
    for kw, msg in ((dict(widths=[5]), r"widths=\[5\], noises=None select no planned run; planned widths \[9\]"),
                    (dict(widths=[0]), r"widths=\[0\] is not allowed; give one or more integers >= 1"),
                    (dict(noises=[1.0]), r"noises=\[1.0\] is not allowed; give one or more α in \[0, 1\)")):
        with pytest.raises(res.ConfigError, match=msg):
            res.produce("test", root=tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()  # refused before anything is written
    monkeypatch.setenv("MEMGEN_RESULTS", str(tmp_path / "cli"))
    assert main(["produce", "--profile", "test", "--widths", "9", "--noises", "0.4", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "grid: 1 of 1 run(s) to train"
    assert main(["produce", "--profile", "test", "--widths", "5"]) == 2
    assert "select no planned run" in capsys.readouterr().err


def test_produce_stops_starting_batches_after_max_minutes_and_skips_diverged_runs(tmp_path, monkeypatch, capsys):
    prof = get_profile("test")
    configs = [prof.config(width=w, noise=0.4, steps=30) for w in (5, 9)]
    bad = prof.config(width=7, noise=0.4, steps=30, lr=1e9)
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"grid": configs + [bad]})
    monkeypatch.setattr(res, "inspected", lambda profile: [])
    # the time is up before the first batch: nothing trained, every run left for the next call
    assert res.produce("test", root=tmp_path, max_minutes=1e-9) == (0, 0, 3)
    assert res.load("test", root=tmp_path) == []
    # no limit: the two good runs are recorded, the diverged one is reported and left
    assert res.produce("test", root=tmp_path) == (2, 0, 1)
    err = capsys.readouterr().err
    assert "memgen produce: not recorded: run diverged" in err and "M=7" in err
    assert sorted(r["width"] for r in res.load("test", root=tmp_path)) == [5, 9]
    with pytest.raises(res.ConfigError, match="max_minutes=0 is not allowed"):
        res.produce("test", root=tmp_path, max_minutes=0)
    monkeypatch.setenv("MEMGEN_RESULTS", str(tmp_path))
    assert main(["produce", "--profile", "test", "--max-minutes", "-1"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "max_minutes=-1.0 is not allowed; it must be a number > 0 (or None)")


def test_damaged_record_is_a_clear_error(tmp_path, tiny_plan, monkeypatch, capsys):
    res.produce("test", root=tmp_path)
    path = next((tmp_path / "test" / "runs").glob("*.json"))
    doc = json.loads(path.read_text())
    doc["record"]["test_acc"] = 0.99  # an edited number
    path.write_text(json.dumps(doc))
    with pytest.raises(res.ResultsError, match="checksum mismatch"):
        res.load("test", root=tmp_path)
    monkeypatch.setenv("MEMGEN_RESULTS", str(tmp_path))
    assert main(["results", "--profile", "test", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path.name in err[0]
    path.write_text("{not json")
    with pytest.raises(res.ResultsError, match="not a memgen results file"):
        res.load("test", root=tmp_path)


def test_shipped_test_results_are_complete_and_honest():
    """results/test ships with the repository: every planned run, verified, labelled CPU."""
    recs = res.load("test")
    plan = res.plan("test")
    planned = [c for g, cs in plan.items() if g not in ("transformer", "images") for c in cs]
    assert {r["key"] for r in recs} == {c.key() for c in planned}
    trecs = res.load("test", kind="transformer")
    assert {r["key"] for r in trecs} == {c.key() for c in plan["transformer"]}
    assert all(r["kind"] == "transformer" and r["provenance"]["engine"] == "transformer" for r in trecs)
    irecs = res.load("test", kind="images")
    assert {r["key"] for r in irecs} == {res.Results("test").key_of(c) for c in plan["images"]}
    assert all(r["data"] == "digits" and r["provenance"]["device"] == "cpu" for r in irecs)
    for r in recs:
        assert set(REQUIRED) <= set(r)
        assert r["provenance"]["profile"] == "test" and r["p"] == (13 if {"doshi", "measured"} & set(r) else 23)
        assert all(0 <= r[k] <= 1 for k in ("train_acc", "test_acc", "G_test_acc"))
    # the widest clean ReLU run fits its training set
    clean = [r for r in recs if r["noise"] == 0 and r["activation"] == "relu" and not r["tied"] and r["task"] == "add"]
    assert np.isclose(max(clean, key=lambda r: r["width"])["train_acc"], 1.0)


def test_results_cli_json_and_table():
    r = subprocess.run([sys.executable, "-m", "memgen", "results", "--profile", "test", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    runs, trans, ims = doc["runs"], doc["transformer"], doc["images"]
    assert runs and all(set(REQUIRED) <= set(x) and "history" not in x for x in runs)
    assert trans and all(x["kind"] == "transformer" and "history" not in x for x in trans)
    assert ims and all(x["kind"] == "images" and "history" not in x for x in ims)
    t = subprocess.run([sys.executable, "-m", "memgen", "results", "--profile", "test", "--table"],
                       capture_output=True, text=True)
    # provenance, header and a row per run; then per other kind a blank line, title, provenance, header, rows
    assert t.returncode == 0 and "G_test_acc" in t.stdout and "noisy_1" in t.stdout
    assert len(t.stdout.splitlines()) == len(runs) + 2 + 4 + len(trans) + 4 + len(ims)


def test_no_results_yet_says_how_to_produce(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMGEN_RESULTS", str(tmp_path))
    assert main(["results", "--profile", "paper"]) == 0
    assert "python -m memgen produce --profile paper" in capsys.readouterr().out
    assert main(["results", "--profile", "paper", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"runs": []}


def test_plan_covers_the_chapters_and_validates_groups():
    p = res.plan("paper")
    assert len(p["grid"]) == 9 * 5 * 3 and all(c.steps == 200_000 and c.p == 113 for c in p["grid"])
    with pytest.raises(Exception, match="groups='nope'"):
        res.plan("paper", ["nope"])


def test_transformer_records_are_produced_resumably_and_verified(tmp_path, monkeypatch, capsys):
    from memgen import transformer as tfm

    configs = [tfm.profile_config("test", steps=20, noise=a) for a in (0.0, 0.3)]
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"transformer": configs})
    store = res.RunStore(tmp_path / "store")
    assert res.produce("test", root=tmp_path, store=store) == (2, 0, 0)
    assert res.produce("test", root=tmp_path, store=store) == (0, 2, 0)
    assert res.load("test", root=tmp_path) == []  # two-layer records are another kind
    recs = res.load("test", root=tmp_path, kind="transformer")
    assert [r["noise"] for r in recs] == [0.0, 0.3]
    run = tfm.load(configs[1], tmp_path / "store" / "transformers")
    ff = run.filtration()
    r = recs[1]
    assert r["test_acc"] == ff["before"]["test_acc"] and r["ff_noisy_acc"] == ff["after"]["noisy_acc"]
    assert r["kept"] == ff["kept"] and len(r["power"]) == configs[1].n_freq + 1  # DC first
    assert {row["n_keep"] for row in r["keep_table"]} >= {1, configs[1].n_keep, configs[1].n_freq}
    assert "Transformer engine 1" in res.provenance(recs)
    with pytest.raises(res.ConfigError, match="kind='weights' is not allowed"):
        res.load("test", root=tmp_path, kind="weights")
    # the CLI: its own table, a key of its own in --json; an edited number is a clear error
    monkeypatch.setenv("MEMGEN_RESULTS", str(tmp_path))
    assert main(["results", "--profile", "test", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runs"] == [] and [x["noise"] for x in doc["transformer"]] == [0.0, 0.3]
    assert main(["results", "--profile", "test", "--table"]) == 0
    out = capsys.readouterr().out
    assert "Transformer runs (chapter 9" in out and "ff_test_acc" in out
    path = next((tmp_path / "test" / "transformer").glob("*.json"))
    doc = json.loads(path.read_text())
    doc["record"]["ff_test_acc"] = 1.0
    path.write_text(json.dumps(doc))
    assert main(["results", "--profile", "test", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path.name in err[0] and "checksum mismatch" in err[0]


def test_image_records_need_mnist_at_the_paper_scale(tmp_path, monkeypatch, capsys):
    from memgen import images as img

    configs = [img.ImageConfig(noise=0.2, hidden=8, epochs=3, seed=s) for s in (0, 1)]
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"images": configs})
    # the paper's scale is MNIST: without its folder the group is skipped, with a line saying so
    assert res.produce("paper", root=tmp_path) == (0, 0, 2)
    assert "--mnist-path" in capsys.readouterr().err
    assert res.load("paper", root=tmp_path, kind="images") == []
    # the CPU profiles ship digits: recorded once, then found
    assert res.produce("test", root=tmp_path) == (2, 0, 0)
    assert res.produce("test", root=tmp_path) == (0, 2, 0)
    recs = res.load("test", root=tmp_path, kind="images")
    run = img.train_mlp(img.load_digits(), configs[1])
    assert recs[1]["history"]["noisy_acc"] == run.history["noisy_acc"] and recs[1]["n_classes"] == 10
    assert "scikit-learn digits" in res.provenance(recs) and "3 full-batch epochs" in res.provenance(recs)


def test_grid_records_carry_the_diagnostics_when_their_packages_are_there(tmp_path, monkeypatch, capsys):
    prof = get_profile("test")
    configs = [prof.config(width=9, noise=0.4, steps=40)]
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"grid": configs})
    monkeypatch.setattr(res, "inspected", lambda profile: [])
    res.produce("test", root=tmp_path)
    rec = res.load("test", root=tmp_path)[0]
    assert {"ncc_test_acc", "h1_mean", "hill_mean", "pl_p_U"} <= set(rec)
    # without ripser / powerlaw (a bare GPU node): chapter 16's numbers only, and a line saying so
    monkeypatch.setattr("memgen.diagnostics.available", lambda: {"topology": False, "powerlaw": False})
    monkeypatch.setattr(res, "available", lambda: {"topology": False, "powerlaw": False})
    res.produce("test", root=tmp_path / "bare")
    rec = res.load("test", root=tmp_path / "bare")[0]
    assert "ncc_test_acc" in rec and "h1_mean" not in rec and "hill_mean" not in rec
    assert "pip install ripser persim powerlaw" in capsys.readouterr().err


def test_a_diverged_transformer_batch_is_left_for_the_next_call(tmp_path, monkeypatch, capsys):
    from memgen import transformer as tfm

    good, bad = tfm.profile_config("test", steps=20), tfm.profile_config("test", steps=20, lr=1e9)
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"transformer": [bad, good]})
    written, present, left = res.produce("test", root=tmp_path, store=res.RunStore(tmp_path / "store"))
    assert (written, present) == (1, 0) and left == 1  # the good run (its own batch) is recorded
    assert "memgen produce: not recorded: lr=1000000000.0 is not allowed" in capsys.readouterr().err


def test_mnist_path_is_checked_before_anything_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: pytest.fail("planned before the check"))
    with pytest.raises(res.ConfigError, match="^mnist_path='/nope' is not allowed at profile test"):
        res.produce("test", root=tmp_path, mnist_path="/nope")
    with pytest.raises(res.ConfigError, match="^mnist_path="):
        res.produce("paper", root=tmp_path, mnist_path=tmp_path / "missing")


def test_a_record_without_numbers_that_can_now_be_computed_is_produced_again(tmp_path, monkeypatch):
    """A grid record made where ripser / powerlaw were missing gets chapters 14-15's numbers once they are there."""
    prof = get_profile("test")
    configs = [prof.config(width=9, noise=0.4, steps=40)]
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"grid": configs})
    monkeypatch.setattr(res, "inspected", lambda profile: [])
    bare = {"topology": False, "powerlaw": False}
    monkeypatch.setattr("memgen.diagnostics.available", lambda: bare)
    monkeypatch.setattr(res, "available", lambda: bare)
    assert res.produce("test", root=tmp_path) == (1, 0, 0)
    assert res.produce("test", root=tmp_path) == (0, 1, 0)  # complete for what this node can compute
    assert "h1_mean" not in res.load("test", root=tmp_path)[0]
    monkeypatch.undo()
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"grid": configs})
    monkeypatch.setattr(res, "inspected", lambda profile: [])
    assert res.produce("test", root=tmp_path) == (1, 0, 0)  # rewritten from the run store
    assert {"h1_mean", "pl_p_U", "ncc_test_acc"} <= set(res.load("test", root=tmp_path)[0])


def test_the_table_shows_the_training_settings_in_which_its_runs_differ(capsys):
    """Runs that differ only in, e.g., weight decay (chapter 12's grid) or optimizer (chapter 3)
    must not look like duplicate rows: the table adds a column for each setting that varies, and
    none for a setting every run shares."""
    from memgen.cli import _TABLE, _print_table, _run_columns

    base = {k: 0 for k, _ in _TABLE} | {"task": "add", "activation": "relu", "tied": False, "noise": 0.4,
                                            "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.1}
    recs = [base, {**base, "weight_decay": 5.0}]
    names = [k for k, _ in _run_columns(recs)]
    assert "weight_decay" in names and "optimizer" not in names and "lr" not in names
    assert names.index("weight_decay") == names.index("tied") + 1
    _print_table(recs, _run_columns(recs))
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(set(rows)) == 2 and rows[0].split()[4] == "0.1" and rows[1].split()[4] == "5"


def test_the_partition_record_is_made_at_the_profiles_alpha_and_at_alpha_0_2(tmp_path):
    from memgen.configs import get_profile

    prof = get_profile("test")  # width 129, α 0.4, 1000 steps
    c = prof.config(width=prof.width, noise=0.2)
    assert res.wants_partition(c, "test") and res.wants_partition(c.replace(noise=prof.noise), "test")
    for other in (c.replace(noise=0.8), c.replace(width=9), c.replace(tied=True), c.replace(steps=500)):
        assert not res.wants_partition(other, "test"), other
    # a grid record without the partition numbers is produced again; one at α = 0.8 is complete without them
    results, have = res.Results("test", tmp_path), {"topology": False, "powerlaw": False}
    for cfg in (c, c.replace(noise=0.8)):
        results.write({**cfg.identity(), "key": cfg.key(), "ncc_test_acc": 0.5})
    assert not res._complete(results, "grid", c, set(), have)
    assert res._complete(results, "grid", c.replace(noise=0.8), set(), have)
    results.write({**c.identity(), "key": c.key(), "ncc_test_acc": 0.5, "strength_G_test": [0.1]})
    assert res._complete(results, "grid", c, set(), have)


def test_a_progress_record_measured_before_the_spectrum_key_frequencies_is_produced_again(tmp_path):
    """Chapter 13's records need the held-out restricted logits (progress version 2) at key
    frequencies read off the logits' spectrum (version 3, which records ``key_power``)."""
    from memgen.progress import progress_configs

    c = progress_configs("test")[0]
    results, have = res.Results("test", tmp_path), {"topology": True, "powerlaw": True}
    results.write({**c.identity(), "key": c.key(), "measured": {"restricted_test_acc": [0.5]}})
    assert not res._complete(results, "progress", c, set(), have)
    results.write({**c.identity(), "key": c.key(),
                   "measured": {"restricted_test_acc": [0.5], "heldout_test_acc": [0.1]}})
    assert not res._complete(results, "progress", c, set(), have)
    results.write({**c.identity(), "key": c.key(),
                   "measured": {"restricted_test_acc": [0.5], "heldout_test_acc": [0.1], "key_power": 0.9}})
    assert res._complete(results, "progress", c, set(), have)


def test_dry_run_lists_a_record_that_lacks_numbers_its_group_records_now(tmp_path, monkeypatch, capsys):
    import shutil

    shutil.copytree(res.default_root() / "test", tmp_path / "test")
    monkeypatch.setenv("MEMGEN_RESULTS", str(tmp_path))
    prof = get_profile("test")
    assert main(["produce", "--profile", "test", "--groups", "grid", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "grid: 0 of 27 run(s) to train"
    # a grid record at the profile's width and α written by older code, without the partition curves
    results = res.Results("test", tmp_path)
    c = next(c for c in res.plan("test", ["grid"])["grid"] if c.width == prof.width and c.noise == prof.noise)
    rec = {k: v for k, v in results.record(c).items() if not k.startswith(("strength_", "ipr_", "random_"))}
    results.write(rec)
    assert main(["produce", "--profile", "test", "--groups", "grid", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "grid: 1 of 27 run(s) to train" and out[1].strip().startswith(c.label())
