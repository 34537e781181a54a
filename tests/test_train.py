import math

import numpy as np
import pytest
import torch

from memgen.configs import RunConfig
from memgen.reference import reference_train
from memgen.train import ResourceError, check_fits, record_steps, train_batch


def small(**kw):
    base = dict(p=11, width=16, steps=25, lr=1e-2, weight_decay=0.5, noise=0.3)
    base.update(kw)
    return RunConfig(**base)


def assert_weights_close(w1, w2, tol):
    for name in ("U", "V", "W", "mu"):
        a, b = getattr(w1, name), getattr(w2, name)
        assert torch.allclose(a, b, atol=tol, rtol=tol), (name, (a - b).abs().max())


@pytest.mark.parametrize("opt", ["adamw", "adam", "sgd"])
def test_batched_engine_matches_torch_optim(opt):
    configs = [small(optimizer=opt, seed=s, noise=a, lr=lr, weight_decay=wd)
               for s, a, lr, wd in [(0, 0.0, 1e-2, 0.5), (1, 0.3, 3e-3, 0.0), (2, 0.6, 2e-2, 1.0)]]
    runs = train_batch(configs, progress=False)
    for run, c in zip(runs, configs):
        assert_weights_close(run.weights, reference_train(c), 1e-4)


def test_muon_matches_torch_muon():
    c = small(optimizer="muon", lr=2e-2, steps=10)
    run = train_batch([c], progress=False)[0]
    assert_weights_close(run.weights, reference_train(c), 2e-3)


@pytest.mark.parametrize("kw", [dict(tied=True), dict(bias=False), dict(loss="mse"), dict(init="doshi"),
                                dict(activation="quadratic"), dict(activation="gelu"),
                                dict(activation="reverse_relu")])
def test_variants_match_reference(kw):
    c = small(**kw)
    assert_weights_close(train_batch([c], progress=False)[0].weights, reference_train(c), 1e-4)


def test_deterministic_and_batch_independent():
    c = small(seed=4)
    alone = train_batch([c], progress=False)[0]
    again = train_batch([c], progress=False)[0]
    batched = train_batch([small(seed=9), c], progress=False)[1]
    assert alone.history == again.history
    assert_weights_close(alone.weights, batched.weights, 1e-5)


def test_history_is_dense_early_and_complete():
    run = train_batch([small(steps=600)], progress=False)[0]
    steps = run.history["step"]
    assert steps[:33] == list(range(33)) and steps[-1] == 600
    assert steps == record_steps(600)
    for k, v in run.history.items():
        assert len(v) == len(steps), k
    for k in ("train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc"):
        assert all(0 <= x <= 1 for x in run.history[k])


def test_clean_training_generalizes_perfectly():
    c = RunConfig(p=23, width=128, steps=1500, lr=1e-2, weight_decay=1.0, noise=0.0, train_frac=0.8)
    run = train_batch([c], progress=False)[0]
    assert run.final("train_acc") == 1.0
    assert run.final("test_acc") == 1.0
    assert math.isnan(run.final("noisy_acc"))


def test_noisy_training_memorizes():
    run = train_batch([small(p=23, width=128, steps=400, noise=0.5)], progress=False)[0]
    assert run.final("noisy_acc") > 0.95  # wrong labels are fitted
    assert run.final("noisy_true_acc") < 0.1


def test_divergence_fails_the_run_only():
    good, bad = small(seed=0, optimizer="sgd"), small(seed=1, lr=1e9, optimizer="sgd")
    runs = train_batch([good, bad], progress=False)
    assert runs[0].failed is None and runs[0].weights is not None
    assert runs[1].failed and runs[1].weights is None
    assert "diverged at step" in runs[1].failed and "loss=" in runs[1].failed and "lr=1e+09" in runs[1].failed


def test_minibatch_training_runs():
    run = train_batch([small(batch_size=16, steps=30)], progress=False)[0]
    assert np.isfinite(run.history["loss"]).all()


def test_memory_estimate_refuses_huge_runs():
    with pytest.raises(ResourceError, match="GiB"):
        check_fits([RunConfig(p=113, width=10**7)], torch.device("cpu"))


def test_checkpoint_resume_gives_identical_result(tmp_path):
    c = small(steps=60)
    ck = tmp_path / "ck.pt"
    full = train_batch([c], progress=False)[0]
    # interrupt after the checkpoint at step 40 by training a copy that stops there
    import memgen.train as T

    orig = T._save_checkpoint
    calls = []

    def save_then_stop(*a, **k):
        orig(*a, **k)
        calls.append(a[2])
        if a[2] == 40:
            raise KeyboardInterrupt

    T._save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train_batch([c], progress=False, checkpoint_path=ck, checkpoint_every=20)
    finally:
        T._save_checkpoint = orig
    assert ck.exists() and calls == [20, 40]
    resumed = train_batch([c], progress=False, checkpoint_path=ck, checkpoint_every=20)[0]
    assert resumed.history == full.history
    assert_weights_close(resumed.weights, full.weights, 0)
    assert not ck.exists()


@pytest.mark.parametrize("kw", [dict(), dict(tied=True), dict(activation="quadratic")])
def test_onehot_first_layer_backward_matches_index_add(monkeypatch, kw):
    """The GPU's atomics-free backward (a one-hot GEMM) gives the CPU's gradient, on the CPU."""
    import memgen.model as model

    configs = [small(seed=s, **kw) for s in (0, 1)]
    monkeypatch.setattr(model, "FIRST_LAYER_BACKWARD", "index_add")
    ref = train_batch(configs, progress=False)
    monkeypatch.setattr(model, "FIRST_LAYER_BACKWARD", "onehot")
    alt = train_batch(configs, progress=False)
    for a, b in zip(ref, alt):
        assert_weights_close(a.weights, b.weights, 1e-5)


def test_sparse_divergence_checks_park_the_bad_run_and_spare_the_others(monkeypatch):
    """On CUDA the loop checks for divergence every 64 steps (no host sync per step); simulated
    here with a check every 7 steps: the diverged run is parked at a check, the others match
    a run checked every step exactly."""
    import memgen.train as train

    good = small(steps=40)
    bad = good.replace(lr=1e9, seed=1)
    every_step = train_batch([good, bad], progress=False)
    monkeypatch.setattr(train, "divergence_check_every", lambda device: 7)
    sparse = train_batch([good, bad], progress=False)
    assert sparse[1].failed and "diverged at step" in sparse[1].failed
    step = int(sparse[1].failed.split("diverged at step ")[1].split(":")[0])
    assert step % 7 == 0 or step in record_steps(40)
    assert_weights_close(sparse[0].weights, every_step[0].weights, 0)
    assert sparse[0].history["test_acc"] == every_step[0].history["test_acc"]


def test_precision_option_is_validated_and_keyed_only_when_set():
    from memgen.configs import ConfigError

    assert "precision" not in small().identity()
    assert small(precision="tf32").key() != small().key()
    with pytest.raises(ConfigError, match="precision='bf16'"):
        small(precision="bf16")


def test_compiled_step_matches_the_eager_step(monkeypatch):
    """The compiled step (the CUDA path, here compiled for the CPU) gives the eager step's numbers:
    forward, backward and fused update compiled, history and divergence checks every 64 steps."""
    cs = [RunConfig(p=11, width=9, noise=a, steps=150, seed=s) for a, s in ((0.0, 0), (0.4, 1))]
    monkeypatch.setenv("MEMGEN_COMPILE", "0")
    eager = train_batch(cs, progress=False)
    monkeypatch.setenv("MEMGEN_COMPILE", "1")
    compiled = train_batch(cs, progress=False)
    for e, c in zip(eager, compiled):
        assert c.failed is None and e.history["step"] == c.history["step"]
        for name in ("U", "V", "W", "mu"):
            assert torch.allclose(getattr(e.weights, name), getattr(c.weights, name), atol=1e-4), name
        assert np.allclose(e.history["loss"], c.history["loss"], rtol=1e-4, atol=1e-6)


def _eager_and_compiled_with(monkeypatch, capsys, compile_fn):
    """One run trained eagerly, then again with ``torch.compile`` replaced by ``compile_fn``;
    the second run's stderr lines."""
    cs = [RunConfig(p=11, width=9, noise=0.4, steps=100)]
    monkeypatch.setenv("MEMGEN_COMPILE", "0")
    eager = train_batch(cs, progress=False)[0]
    monkeypatch.setenv("MEMGEN_COMPILE", "1")
    monkeypatch.setattr(torch, "compile", compile_fn)
    run = train_batch(cs, progress=False)[0]
    return eager, run, capsys.readouterr().err.strip().splitlines()


def test_compiled_step_falls_back_to_eager_with_one_line(monkeypatch, capsys):
    def broken(fn, **kw):
        def fail(*a, **k):
            raise RuntimeError("no compiler here\nsecond line")
        return fail

    eager, run, err = _eager_and_compiled_with(monkeypatch, capsys, broken)
    assert err == ["memgen: compiled step unavailable (RuntimeError: no compiler here); training eagerly"]
    assert torch.equal(run.weights.U, eager.weights.U) and run.history == eager.history


def test_a_backward_that_cannot_compile_falls_back_to_eager_with_one_line(monkeypatch, capsys):
    import memgen.train as tr

    class Boom(torch.autograd.Function):  # a forward that compiles and a backward that does not
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            raise RuntimeError("no backward compiler here")

    def half_broken(fn, **kw):
        return (lambda *a, **k: Boom.apply(fn(*a, **k))) if fn is tr._train_losses else fn

    eager, run, err = _eager_and_compiled_with(monkeypatch, capsys, half_broken)
    assert err == ["memgen: compiled step unavailable (RuntimeError: no backward compiler here); training eagerly"]
    # the update ran uncompiled with its bias corrections as float32 tensors until then: rounding,
    # which Adam may grow (see benchmarks/bench_step.py), so only closeness is asked
    assert torch.allclose(run.weights.U, eager.weights.U, atol=1e-3) and run.history["step"] == eager.history["step"]
    assert np.allclose(run.history["loss"], eager.history["loss"], rtol=1e-3)
    assert (eager.meta["compiled"], run.meta["compiled"]) == (False, False)


def test_compile_switch_is_validated(monkeypatch):
    from memgen.train import compiled_step_enabled

    monkeypatch.setenv("MEMGEN_COMPILE", "auto")
    assert compiled_step_enabled(torch.device("cpu")) is False
    assert compiled_step_enabled(torch.device("cuda")) is True
    monkeypatch.setenv("MEMGEN_COMPILE", "yes")
    with pytest.raises(ValueError, match="MEMGEN_COMPILE='yes' is not allowed; use 0, 1 or auto"):
        compiled_step_enabled(torch.device("cpu"))


@pytest.mark.parametrize("kw", [dict(), dict(activation="gelu"), dict(activation="quadratic"),
                                dict(activation="reverse_relu"), dict(optimizer="sgd"), dict(optimizer="adam"),
                                dict(tied=True, init="doshi")])
def test_runs_of_different_widths_share_a_padded_batch_exactly(kw):
    """Zero neurons padded up to the widest run change nothing: each run's weights and history
    are those it gets trained alone (up to float summation order), and the weights come back at
    the run's own width."""
    configs = [small(width=w, seed=s, noise=a, **kw) for w, s, a in ((7, 0, 0.0), (16, 1, 0.3), (3, 2, 0.6))]
    padded = train_batch(configs, progress=False)
    for c, run in zip(configs, padded):
        alone = train_batch([c], progress=False)[0]
        assert run.weights.U.shape == (c.width, c.p) and run.meta["batch_width"] == 16
        assert_weights_close(run.weights, alone.weights, 1e-5)
        assert run.history["step"] == alone.history["step"]
        for k in ("train_acc", "test_acc", "noisy_acc"):
            np.testing.assert_array_equal(run.history[k], alone.history[k], err_msg=k)
        assert np.allclose(run.history["loss"], alone.history["loss"], rtol=1e-5)


def test_muon_runs_of_different_widths_do_not_share_a_batch():
    """Muon's step size depends on the matrix shape, so padding would change it: refused."""
    with pytest.raises(ValueError, match="differ only in width with an optimizer other than muon"):
        train_batch([small(width=7, optimizer="muon"), small(width=16, optimizer="muon")], progress=False)


def test_padding_policy_by_device_and_environment(monkeypatch):
    from memgen.store import plan_batches
    from memgen.train import PAD_WIDTHS_CUDA, pad_widths_up_to

    cs = [small(width=w, seed=s) for w in (9, 33, 129, 2049) for s in (0, 1)]
    monkeypatch.delenv("MEMGEN_PAD_WIDTHS", raising=False)
    assert pad_widths_up_to(torch.device("cpu")) == 0 and pad_widths_up_to("cuda") == PAD_WIDTHS_CUDA
    # the CPU is FLOP-bound: one batch per width, in the order given
    assert [[c.width for c in b] for b in plan_batches(cs)] == [[9, 9], [33, 33], [129, 129], [2049, 2049]]
    # padding on: widths up to the limit share batches, widest first; wider runs keep their own
    monkeypatch.setenv("MEMGEN_PAD_WIDTHS", "129")
    assert [[c.width for c in b] for b in plan_batches(cs)] == [[129, 129, 33, 33, 9, 9], [2049, 2049]]
    muon = [small(width=w, optimizer="muon") for w in (9, 33)]
    assert len(plan_batches(muon)) == 2
    monkeypatch.setenv("MEMGEN_PAD_WIDTHS", "wide")
    with pytest.raises(ValueError, match="MEMGEN_PAD_WIDTHS='wide' is not allowed; use auto or a width >= 0"):
        plan_batches(cs)


def test_padded_sweep_stores_each_run_at_its_width(tmp_path, monkeypatch):
    from memgen.store import RunStore

    monkeypatch.setenv("MEMGEN_PAD_WIDTHS", "64")
    store = RunStore(tmp_path)
    cs = [small(width=w) for w in (5, 16)]
    runs = store.sweep(cs, progress=False)
    again = RunStore(tmp_path).sweep(cs, progress=False)
    for c, r, s in zip(cs, runs, again):
        assert r.config == c and s.weights.U.shape == (c.width, c.p)
        assert torch.equal(r.weights.W, s.weights.W)
