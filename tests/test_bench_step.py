"""benchmarks/bench_step.py's --check: the compiled step against the eager one, on the CPU."""

import importlib.util
import os
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_step.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()
CPU = torch.device("cpu")


def test_the_compiled_step_matches_the_eager_one():
    ok, line = bench.check_compiled(CPU, p=11, width=9, at=(0, 20))
    assert ok, line
    assert line.startswith("compiled step matches the eager step (one step after 0, 20 eager steps, 2 runs, "
                           "P = 11, M = 9): largest difference in a weight or optimizer buffer ")
    assert line.endswith(" (allowed 1e-06)")


class _Drifting:
    """A 'compiled' step that is the eager step with the readout moved by 1e-4 more."""

    def __init__(self, opt, params, device):
        self.ok = True

    def __call__(self, params, a, b, y, c0, opt):
        bench.eager_step(params, a, b, y, c0, opt)
        with torch.no_grad():
            params["Wt"] += 1e-4


def test_a_compiled_step_that_lands_elsewhere_fails_the_check(monkeypatch):
    monkeypatch.setattr(bench, "CompiledStep", _Drifting)
    ok, line = bench.check_compiled(CPU, p=11, width=9, at=(0, 5))
    assert not ok and "differs from the eager step: keep it off" in line
    assert "largest difference in a weight or optimizer buffer 1.0e-04 (allowed 1e-06)" in line


def test_a_step_that_cannot_compile_fails_the_check(monkeypatch, capsys):
    import memgen.train as tr

    def broken(fn, **kw):
        def fail(*a, **k):
            raise RuntimeError("no compiler here")
        return fail

    monkeypatch.setattr(tr.torch, "compile", broken)
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


def test_compiled_training_that_departs_fails_the_check(monkeypatch):
    monkeypatch.delenv("MEMGEN_COMPILE", raising=False)
    train = bench.train_batch

    def departing(cs, **kw):  # "compiled": the eager runs with every recorded loss 2% higher
        compiled = os.environ["MEMGEN_COMPILE"] == "1"
        os.environ["MEMGEN_COMPILE"] = "0"
        runs = train(cs, **kw)
        for r in runs if compiled else ():
            r.history["loss"] = [v * 1.02 for v in r.history["loss"]]
            r.meta["compiled"] = True
        return runs

    monkeypatch.setattr(bench, "train_batch", departing)
    ok, line = bench.check_training(CPU, p=11, width=9, steps=40)
    assert not ok and "departs from eager training: keep it off" in line
    assert "largest relative difference of a recorded loss 2.0e-02 (allowed 0.01)" in line
    assert "MEMGEN_COMPILE" not in os.environ
