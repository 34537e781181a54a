"""benchmarks/fidelity_tf32.py: the fp32-vs-TF32 comparison rule, and the script end to end on the CPU."""

import json
import math

import pytest
from script_loader import load_script

fid = load_script("benchmarks/fidelity_tf32.py")


def _measurements(values, seeds=(0, 1, 2), width=33, noise=0.4):
    """One measurement per (precision, seed); ``values[precision][metric]`` lists one value per seed."""
    return [{"width": width, "noise": noise, "seed": s, "precision": q,
             **{m: values[q][m][i] for m in fid.METRICS}}
            for q in fid.PRECISIONS for i, s in enumerate(seeds)]


BASE = {"test_acc": [0.40, 0.45, 0.42], "G_test_acc": [0.97, 0.99, 0.98], "noisy_acc": [0.60, 0.62, 0.61]}


def test_identical_numbers_agree_on_every_comparison():
    result = fid.compare(_measurements({"fp32": BASE, "tf32": BASE}), p=113, card="NVIDIA H100")
    assert result["n"] == 3 and result["differ"] == 0 and result["agree"]
    assert all(r["agree"] and r["diff"] == 0 for r in result["rows"])
    assert result["verdict"] == ("TF32 agrees with fp32 within the spread over seeds on all 3 comparisons: "
                                 "it may be the default on NVIDIA H100")
    assert len(fid.format_rows(result)) == 1 + 3


def test_a_difference_within_the_spread_agrees():
    shifted = {**BASE, "test_acc": [v + 0.04 for v in BASE["test_acc"]]}  # spread 0.05 > 1/113
    result = fid.compare(_measurements({"fp32": BASE, "tf32": shifted}), p=113)
    assert result["agree"]


def test_a_difference_beyond_the_spread_and_one_over_p_is_flagged():
    # FF-G: spread 0.02, 1/P = 0.0088; the means differ by 0.05
    shifted = {**BASE, "G_test_acc": [v - 0.05 for v in BASE["G_test_acc"]]}
    result = fid.compare(_measurements({"fp32": BASE, "tf32": shifted}), p=113, card="NVIDIA H100")
    flagged = [r for r in result["rows"] if not r["agree"]]
    assert [r["metric"] for r in flagged] == ["G_test_acc"]
    assert flagged[0]["diff"] == pytest.approx(0.05) and flagged[0]["tolerance"] == pytest.approx(0.02)
    assert result["differ"] == 1 and not result["agree"]
    assert result["verdict"] == "TF32 differs on 1 of 3 comparisons (M=33 noise=0.4 G_test_acc): keep fp32 the default"


def test_one_over_p_is_the_floor_when_seeds_agree_exactly():
    flat = {m: [0.5, 0.5, 0.5] for m in fid.METRICS}
    near = {m: [0.5 + 0.9 / 23] * 3 for m in fid.METRICS}
    far = {m: [0.5 + 1.1 / 23] * 3 for m in fid.METRICS}
    assert fid.compare(_measurements({"fp32": flat, "tf32": near}), p=23)["agree"]
    assert fid.compare(_measurements({"fp32": flat, "tf32": far}), p=23)["differ"] == 3


def test_undefined_metrics_are_not_compared_and_failed_runs_differ():
    nan = math.nan
    clean = {**BASE, "noisy_acc": [nan] * 3}  # noise 0: no corrupted labels
    result = fid.compare(_measurements({"fp32": clean, "tf32": clean}), p=113)
    assert result["n"] == 2 and result["agree"]
    assert [r["agree"] for r in result["rows"]] == [True, True, None]
    failed = {m: [v[0], nan, v[2]] for m, v in BASE.items()}  # tf32 seed 1 diverged
    result = fid.compare(_measurements({"fp32": BASE, "tf32": failed}), p=113)
    assert result["differ"] == 3 and "tf32 seeds [1]" in result["rows"][0]["note"]


@pytest.mark.parametrize("seeds", [(0, 1), (4,), (2, 2, 2)])
def test_fewer_than_three_seeds_is_refused_naming_the_option(seeds):
    with pytest.raises(fid.FidelityError, match="--seeds"):
        fid.check_seeds(seeds)
    values = {q: {m: [0.5] * len(seeds) for m in fid.METRICS} for q in fid.PRECISIONS}
    with pytest.raises(fid.FidelityError, match="--seeds"):
        fid.compare(_measurements(values, seeds=seeds), p=113)


def test_the_script_refuses_two_seeds_in_one_line(capsys):
    assert fid.main(["--device", "cpu", "--seeds", "0", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0]


def test_cpu_end_to_end_every_comparison_agrees(tmp_path, capsys):
    args = ["--profile", "test", "--device", "cpu", "--widths", "9", "--noises", "0.4", "--seeds", "0", "1", "2",
            "--steps", "200", "--store", str(tmp_path / "store")]
    assert fid.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert any("TF32 has no effect on the CPU" in line for line in out)
    assert out[-1].startswith("TF32 agrees with fp32 within the spread over seeds on all 3 comparisons")
    # the second call loads all six runs from the store; on the CPU both precisions are the same numbers
    assert fid.main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"] == "CPU" and result["n"] == 3 and result["agree"]
    for row in result["rows"]:
        assert row["fp32"] == row["tf32"] and row["diff"] == 0 and row["agree"] is True
    assert {r["metric"] for r in result["rows"]} == {"test_acc", "G_test_acc", "noisy_acc"}
