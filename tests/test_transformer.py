"""The one-layer Transformer and the frequency filtration of its unembedding."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from memgen import transformer as tfm
from memgen.cli import main
from memgen.configs import ConfigError
from memgen.tasks import make_dataset
from memgen.verdicts import above_chance

TINY = dict(p=11, d_model=16, n_heads=2, d_mlp=32, steps=5, n_keep=2)


def _full_sequence_logits(ps, a, b):
    """A plain causal Transformer over all three positions (the textbook way), last position."""
    p = ps["W_U"].shape[1]
    toks = torch.stack([a, b, torch.full_like(a, p)], 1)
    x = ps["W_E"][toks] + ps["W_pos"]
    q, k, v = (torch.einsum("npd,hde->nhpe", x, ps[w]) for w in ("W_Q", "W_K", "W_V"))
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    s = s.masked_fill(torch.triu(torch.ones(3, 3, dtype=torch.bool), 1), float("-inf"))
    x = x + torch.einsum("nhpe,hed->npd", torch.softmax(s, -1) @ v, ps["W_O"])
    x = x + torch.relu(x @ ps["W_in"] + ps["b_in"]) @ ps["W_out"] + ps["b_out"]
    return x[:, -1] @ ps["W_U"]


def _random_params(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in tfm.init_params(config).items()}


def test_shapes_and_the_last_position_shortcut_match_a_full_causal_transformer():
    c = tfm.TransformerConfig(**TINY)
    ps = _random_params(c)
    assert ps["W_E"].shape == (12, 16) and ps["W_U"].shape == (16, 11) and ps["W_Q"].shape == (2, 16, 8)
    data = make_dataset(c.run_config())
    a, b = torch.as_tensor(data.a), torch.as_tensor(data.b)
    stacked = {k: torch.stack([v, _random_params(c, 1)[k]]) for k, v in ps.items()}
    out = tfm.logits(stacked, a, b)
    assert out.shape == (2, 121, 11)
    assert tfm.residual(stacked, a, b).shape == (2, 121, 16)
    torch.testing.assert_close(out[0], _full_sequence_logits(ps, a, b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("task,p", [("add", 23), ("mul", 23), ("sub", 12)])
@pytest.mark.parametrize("n_keep", [1, 3, 5])
def test_filtration_keeps_exactly_the_top_n_keep_frequencies(task, p, n_keep):
    W = np.random.default_rng(n_keep).normal(size=(8, p))
    Wf, kept = tfm.filter_unembed(W, task, n_keep, keep_dc=False)
    assert len(kept) == n_keep
    power = tfm.unembed_spectrum(Wf, task)
    nonzero = np.flatnonzero(power[1:] > 1e-9 * power.sum()) + 1
    assert nonzero.tolist() == sorted(kept)  # exactly the kept ones survive, DC is gone
    assert power[0] < 1e-9
    raw = tfm.unembed_spectrum(W, task)[1:]
    assert raw[np.array(kept) - 1].min() >= np.delete(raw, np.array(kept) - 1).max()  # the top ones
    np.testing.assert_allclose(power[kept], tfm.unembed_spectrum(W, task)[kept], rtol=1e-5)  # unchanged there
    if task == "mul":
        np.testing.assert_allclose(Wf[:, 0], W[:, 0], rtol=1e-6)  # token 0 has no discrete log: left as is


def test_filtration_with_every_frequency_is_the_identity_and_dc_never_changes_a_prediction():
    c = tfm.TransformerConfig(**{**TINY, "steps": 30, "noise": 0.2})
    run = tfm.train_batch([c])[0]
    W = run.params["W_U"].numpy()
    Wf, kept = tfm.filter_unembed(W, "add", c.n_freq)
    assert kept.tolist() == list(range(1, 6))
    np.testing.assert_allclose(Wf, W, atol=1e-6)
    np.testing.assert_array_equal(run.predict(Wf), run.predict())
    ff = run.filtration(c.n_freq)
    assert ff["after"] == ff["before"]
    no_dc, _ = tfm.filter_unembed(W, "add", 2, keep_dc=False)
    with_dc, _ = tfm.filter_unembed(W, "add", 2, keep_dc=True)
    assert not np.allclose(no_dc, with_dc)
    np.testing.assert_array_equal(run.predict(no_dc), run.predict(with_dc))
    sweep = run.sweep_n_keep([1, 2, 5])
    assert [r["n_keep"] for r in sweep] == [1, 2, 5] and sweep[-1]["test_acc"] == ff["before"]["test_acc"]
    assert sweep[1]["test_acc"] == run.filtration(2)["after"]["test_acc"]


def test_a_tiny_clean_run_learns_above_chance():
    c = tfm.TransformerConfig(p=23, d_model=32, n_heads=4, d_mlp=128, lr=1e-2, steps=250, noise=0.0, n_keep=3)
    run = tfm.train_batch([c])[0]
    acc = run.evaluate()
    assert acc["train_acc"] > 0.95
    assert above_chance(acc["test_acc"], len(run.data.test_idx), 1 / 23), acc
    assert run.history["step"][0] == 0 and run.history["step"][-1] == 250
    assert run.history["loss"][-1] < run.history["loss"][0]


def test_batched_runs_train_as_they_would_alone():
    cs = [tfm.TransformerConfig(**{**TINY, "steps": 20, "noise": 0.2, "seed": 1}),
          tfm.TransformerConfig(**{**TINY, "steps": 20, "noise": 0.0, "seed": 2, "lr": 1e-2, "weight_decay": 0.1})]
    together = tfm.train_batch(cs)
    for c, run in zip(cs, together):
        alone = tfm.train_batch([c])[0]
        for k in tfm.PARAM_NAMES:
            torch.testing.assert_close(run.params[k], alone.params[k], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together[0].params["W_U"], together[1].params["W_U"])


def test_adamw_matches_torch():
    p = {"x": torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)).requires_grad_(True)}
    q = torch.nn.Parameter(p["x"].detach()[1].clone())
    opt = tfm._AdamW(p, [1e-2, 3e-2], [1.0, 0.5], 0.9, 0.98)
    ref = torch.optim.AdamW([q], lr=3e-2, weight_decay=0.5, betas=(0.9, 0.98))
    for _ in range(10):
        opt.step(p, torch.autograd.grad((p["x"] ** 3).sum(), [p["x"]]))
        ref.zero_grad()
        (q**3).sum().backward()
        ref.step()
    torch.testing.assert_close(p["x"][1].detach(), q.detach())


def test_store_reuses_runs_and_n_keep_never_retrains(_isolated_store):
    c = tfm.TransformerConfig(**{**TINY, "noise": 0.2})
    first = tfm.train_or_load(c)
    path = tfm.store_path(c)
    assert path.exists() and path.is_relative_to(_isolated_store / "transformers")
    assert tfm.store_path(c.replace(n_keep=4, keep_dc=False)) == path
    assert tfm.store_path(c.replace(seed=1)) != path
    again = tfm.train_or_load(c.replace(n_keep=4))
    assert again.config.n_keep == 4
    torch.testing.assert_close(again.params["W_U"], first.params["W_U"])
    path.write_bytes(path.read_bytes()[:-10])  # a damaged entry is retrained, not used
    fresh = tfm.train_or_load(c)
    torch.testing.assert_close(fresh.params["W_U"], first.params["W_U"])
    both = tfm.train_or_load([c, c.replace(noise=0.0)])
    assert [r.config.noise for r in both] == [0.2, 0.0]


def test_sweep_configs_and_keep_table():
    base = tfm.TransformerConfig(**{**TINY, "noise": 0.2})
    cs = tfm.sweep_configs(base, [0.0, 0.4], [3, 4])
    assert [(c.noise, c.seed) for c in cs] == [(0.0, 3), (0.2, 3), (0.2, 4), (0.4, 3)]
    assert len({c.batch_key() for c in cs}) == 1
    for noises, seeds, name in (([], [0], "noises"), ([1.5], [0], "noise"), ([0.0], "0", "seeds"),
                                ([0.0], [-1], "seed")):
        with pytest.raises(ConfigError, match=name):
            tfm.sweep_configs(base, noises, seeds)
    rows = tfm.keep_table(tfm.train_batch(cs[:2]), [1, 5, 99])
    assert [(r["noise"], r["n_keep"]) for r in rows] == [(0.0, 1), (0.0, 5), (0.2, 1), (0.2, 5)]
    assert rows[1]["test_acc"] == rows[1]["before_test_acc"]  # every frequency kept: the raw network
    assert len(rows[0]["kept"]) == 1


def test_judge_reproduces_nothing_when_nothing_was_learned():
    cs = [tfm.TransformerConfig(**{**TINY, "steps": 3, "noise": 0.3, "seed": s}) for s in range(3)]
    verdicts = tfm.judge(tfm.train_batch(cs), settings="3 steps")
    assert set(verdicts) == {"memorized", "test", "noisy", "split", "test_unpaired"}
    assert [k for k, v in verdicts.items() if v.reproduced] == []
    assert all(v.settings == "3 steps" for v in verdicts.values())
    clean = tfm.train_batch([c.replace(noise=0.0) for c in cs])
    assert {v.verdict for v in tfm.judge(clean).values()} == {"Not shown"}


def test_the_filtered_test_accuracy_must_beat_the_tasks_own_chance_level():
    """For × the pairs containing 0 all belong to class 0, which filtration keeps: a filtered
    accuracy of 0.03 at P = 113 beats 1/P but not ×'s chance level (about 3/P)."""
    ffs = [{"before": dict(test_acc=0.005 + 0.001 * s, noisy_acc=1.0, clean_acc=1.0),
            "after": dict(test_acc=0.03 + 0.001 * s, noisy_acc=0.2, clean_acc=0.99)} for s in range(3)]
    sizes = dict(n_train=6384, n_test=6385, n_noisy=2553, p=113)
    assert tfm.judge_filtration(ffs, **sizes)["test"].verdict == "Reproduced"
    v = tfm.judge_filtration(ffs, **sizes, task="mul")["test"]
    assert v.verdict == "Not shown" and "chance" in v.evidence


@pytest.mark.parametrize("kw,name", [
    (dict(n_heads=3), "n_heads"), (dict(n_keep=6), "n_keep"), (dict(n_keep=0), "n_keep"),
    (dict(noise=1.5), "noise"), (dict(d_mlp=0), "d_mlp"), (dict(lr=0), "lr"), (dict(task="mul", p=12), "p=12"),
])
def test_bad_config_names_the_parameter(kw, name):
    with pytest.raises(ConfigError, match=name):
        tfm.TransformerConfig(**{**TINY, **kw})


def test_profiles_give_valid_configs_and_cap_n_keep():
    for name in tfm.PROFILES:
        c = tfm.profile_config(name)
        assert c.n_keep <= c.n_freq
    assert tfm.profile_config("book") == tfm.TransformerConfig()  # the documented defaults are the book's
    assert tfm.profile_config("book", p=7).n_keep == 3
    with pytest.raises(ConfigError, match="n_keep"):
        tfm.profile_config("book", p=7, n_keep=5)
    with pytest.raises(ConfigError, match="profile"):
        tfm.profile_config("huge")


def test_cli_prints_one_json_object_with_before_and_after(capsys):
    assert main(["transformer", "--profile", "test", "--p", "11", "--d-model", "16", "--d-mlp", "32",
                 "--noise", "0.3", "--steps", "10", "--n-keep", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for side in ("before", "after"):
        assert {"clean_acc", "noisy_acc", "test_acc"} <= set(out[side])
        assert all(0 <= out[side][k] <= 1 for k in ("clean_acc", "noisy_acc", "test_acc"))
    assert out["config"]["p"] == 11 and out["config"]["noise"] == 0.3 and out["config"]["n_keep"] == 2
    assert len(out["kept"]) == 2


@pytest.mark.parametrize("args,name", [
    (["--noise", "1.5"], "noise"), (["--n-keep", "50"], "n_keep"), (["--n-heads", "3"], "n_heads"),
    (["--steps", "abc"], "steps"), (["--profile", "huge"], "profile"), (["--task", "div"], "task"),
])
def test_cli_bad_input_exits_2_with_one_line(args, name):
    r = subprocess.run([sys.executable, "-m", "memgen", "transformer", "--p", "11", "--steps", "1", *args, "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], r.stderr
    assert r.stdout == ""
