"""benchmarks/bench_step.py's --check: the compiled step against the eager one, on the CPU."""

import collections
import math
import os
import re

import pytest
import torch
from script_loader import load_script

bench = load_script("benchmarks/bench_step.py")
CPU = torch.device("cpu")


def test_the_compiled_step_matches_the_eager_one():
    ok, line = bench.check_compiled(CPU, p=11, width=9, at=(0, 20))
    assert ok, line
    assert line.startswith("compiled step matches the eager step (one step after 0, 20 eager steps, 2 runs, "
                           "P = 11, M = 9): largest difference in a weight or optimizer buffer, "
                           "relative to its scale, ")
    assert line.endswith(" (allowed 0.0001)")


def _compiled_as(change):
    """A 'compiled' step: the eager step, then ``change`` applied to the parameters."""
    class Step:
        def __init__(self, opt, params, device):  # CompiledStep's signature; nothing to compile
            self.ok = True

        def __call__(self, params, a, b, y, c0, opt):
            bench.eager_step(params, a, b, y, c0, opt)
            with torch.no_grad():
                change(params)
    return Step


def test_a_compiled_step_that_lands_elsewhere_fails_the_check(monkeypatch):
    monkeypatch.setattr(bench, "CompiledStep", _compiled_as(lambda ps: ps["Wt"].mul_(1.001)))
    ok, line = bench.check_compiled(CPU, p=11, width=9, at=(0, 5))
    assert not ok and "differs from the eager step: keep it off" in line
    assert line.endswith("relative to its scale, 1.0e-03 (allowed 0.0001)")


def test_a_compiled_step_that_writes_nan_fails_the_check(monkeypatch):
    monkeypatch.setattr(bench, "CompiledStep", _compiled_as(lambda ps: ps["mu"].fill_(float("nan"))))
    ok, line = bench.check_compiled(CPU, p=11, width=9, at=(3,))
    assert not ok and line.endswith("relative to its scale, inf (allowed 0.0001)")


def test_relative_difference():
    ref = torch.tensor([2.0, -4.0])
    assert bench.relative_difference(torch.tensor([2.0, -3.9]), ref) == pytest.approx(0.025)
    assert bench.relative_difference(torch.zeros(2), torch.zeros(2)) == 0.0
    assert bench.relative_difference(torch.tensor([0.0, 1e-9]), torch.zeros(2)) == math.inf
    assert bench.relative_difference(torch.tensor([2.0, math.inf]), ref) == math.inf
    with pytest.raises(ValueError, match=r"x has shape \(1,\) and ref \(2,\); they must be the same"):
        bench.relative_difference(torch.zeros(1), ref)


def test_a_step_that_cannot_compile_fails_the_check(monkeypatch, capsys):
    def broken(fn, **kw):
        def fail(*a, **k):
            raise RuntimeError("no compiler here")
        return fail

    monkeypatch.setattr(torch, "compile", broken)
    ok, line = bench.check_compiled(CPU, p=11, width=9, at=(0,))
    assert (ok, line) == (False, "compiled step: compiling failed on this device "
                                 "(one step after 0 eager steps, 2 runs, P = 11, M = 9): keep it off")
    assert "training eagerly" in capsys.readouterr().err
    assert bench.check_training(CPU, p=11, width=9, steps=40) == (
        False, "compiled training: compiling failed on this device (train_batch, 2 runs, P = 11, M = 9, 40 steps): "
               "keep it off")


def test_compiled_training_follows_eager_training_and_the_switch_is_restored(monkeypatch):
    monkeypatch.setenv("MEMGEN_COMPILE", "auto")
    ok, line = bench.check_training(CPU, p=11, width=9, steps=80)
    assert ok, line
    assert line.startswith("compiled training follows eager training (train_batch, 2 runs, P = 11, M = 9, 80 steps): "
                           "largest relative difference of a recorded loss ")
    assert os.environ["MEMGEN_COMPILE"] == "auto"


def _train_as(change):
    """A train_batch whose 'compiled' runs are the eager runs with ``change`` applied to each."""
    train = bench.train_batch

    def fake(cs, **kw):
        compiled = os.environ["MEMGEN_COMPILE"] == "1"
        os.environ["MEMGEN_COMPILE"] = "0"
        runs = train(cs, **kw)
        for r in runs if compiled else ():
            change(r)
            r.meta["compiled"] = True
        return runs
    return fake


@pytest.mark.parametrize("change, end", [
    (lambda r: r.history.update(loss=[v * 1.02 for v in r.history["loss"]]),
     "largest relative difference of a recorded loss 2.0e-02 (allowed 0.01)"),
    (lambda r: r.history.update(loss=[math.nan] * len(r.history["loss"])),
     "largest relative difference of a recorded loss inf (allowed 0.01)"),
    (lambda r: r.history.update(step=r.history["step"][:-1], loss=r.history["loss"][:-1]),
     "recorded steps differ"),
])
def test_compiled_training_that_departs_fails_the_check(monkeypatch, change, end):
    monkeypatch.delenv("MEMGEN_COMPILE", raising=False)
    monkeypatch.setattr(bench, "train_batch", _train_as(change))
    ok, line = bench.check_training(CPU, p=11, width=9, steps=40)
    assert not ok and line.startswith("compiled training departs from eager training: keep it off (train_batch, ")
    assert line.endswith(end)
    assert "MEMGEN_COMPILE" not in os.environ


@pytest.mark.parametrize("results, status", [((True, True), 0), ((True, False), 1), ((False, True), 1)])
def test_the_exit_status_says_whether_both_checks_passed(monkeypatch, capsys, results, status):
    monkeypatch.setattr(bench, "check_compiled", lambda dev: (results[0], "first"))
    monkeypatch.setattr(bench, "check_training", lambda dev: (results[1], "second"))
    assert bench.main(["--device", "cpu", "--check", "--cases", ""]) == status
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == ["first", "second"]
    assert lines[3].startswith("torch.compile: ") and len(lines) == 4


COUNTS = re.compile(r"(\d+) (?:graph\(s\) compiled|graph break|other fallback|CUDA-graph skip)")


def _counts() -> tuple[int, ...]:
    """(graphs, breaks, other fallbacks, CUDA-graph skips) as the report says them."""
    return tuple(int(x) for x in COUNTS.findall(bench.compile_report()))


def test_the_compile_report_counts_what_dynamo_did():
    def with_break(x):
        x = x * 2
        torch._dynamo.graph_break()
        return x + 1

    def with_branch(x):
        x = x * 2
        if x.sum() > 0:  # a branch on a tensor's value: no graph break at a call, a fallback
            return x + 1
        return x - 1

    x = torch.ones(3)
    g, b, u, s = _counts()
    torch.compile(with_break, backend="eager")(x)
    assert _counts() == (g + 2, b + 1, u, s)
    torch.compile(with_branch, backend="eager")(x)
    g2, b2, u2, s2 = _counts()
    assert (b2, s2) == (b + 1, s) and g2 > g + 2 and u2 > u


def test_the_compile_report_names_the_first_graph_break(monkeypatch):
    fake = {"graph_break": collections.Counter({"Unsupported:  a call\n  to x": 2}),
            "unimplemented": collections.Counter(),
            "stats": collections.Counter(unique_graphs=3), "inductor": collections.Counter(cudagraph_skips=1)}
    monkeypatch.setattr("torch._dynamo.utils.counters", fake)
    assert bench.compile_report() == ("torch.compile: 3 graph(s) compiled, 2 graph break(s) at calls, "
                                      "0 other fallback(s) to eager, 1 CUDA-graph skip(s); "
                                      "first: Unsupported: a call to x")
    fake["graph_break"].clear()
    fake["unimplemented"] = collections.Counter({"Data-dependent branching": 4})
    assert bench.compile_report() == ("torch.compile: 3 graph(s) compiled, 0 graph break(s) at calls, "
                                      "4 other fallback(s) to eager, 1 CUDA-graph skip(s); "
                                      "first: Data-dependent branching")
