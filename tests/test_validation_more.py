"""Bad inputs refused up front with one line, and numpy scalars keyed as the numbers they hold.

The command line rows run in-process: exit status 2, one line on stderr naming the parameter,
nothing on stdout (no plan, no table), nothing stored.
"""

from __future__ import annotations

import numpy as np
import pytest

from memgen import images as img
from memgen import transformer as tfm
from memgen.baselines import analytic_weights
from memgen.cli import main as cli_main
from memgen.configs import ConfigError, RunConfig
from memgen.store import RunStore

MUL_P2 = "p=2 is not allowed for task='mul' here: the Fourier analyses need p >= 3"

CLI_ROWS = [
    ("produce --profile test --dry-run --max-minutes -1", "max_minutes=-1.0 is not allowed"),
    ("produce --profile test --dry-run --batch-neurons 0", "batch_neurons=0 is not allowed"),
    ("produce --profile test --dry-run --mnist-path /nonexistent", "mnist_path='/nonexistent' is not allowed"),
    ("produce --profile paper --dry-run --mnist-path /nonexistent", "mnist_path="),
    ("produce --profile nope --mnist-path /nonexistent", "profile='nope' is not allowed"),
    ("results --profile test --history", "argument --history: only with --json"),
    ("sweep --profile test --width 33", "unrecognized arguments: --width 33"),
    ("transformer --task mul --p 2 --noise 0 --steps 5", MUL_P2),
    ("transformer --task mul --p 2 --steps 5", MUL_P2),
]


@pytest.mark.parametrize("args, message", CLI_ROWS, ids=[a for a, _ in CLI_ROWS])
def test_cli_refuses_with_one_line(args, message, capsys, _isolated_store):
    try:
        rc = cli_main(args.split())
    except SystemExit as e:  # argparse errors
        rc = e.code
    out, err = capsys.readouterr()
    assert rc == 2 and out == "", (rc, out, err)
    assert err.count("\n") == 1 and err.startswith("memgen: error: ") and message in err, err
    assert not _isolated_store.exists() or not any(_isolated_store.rglob("*.pt"))


def test_produce_dry_run_still_lists_the_plan(capsys):
    assert cli_main(["produce", "--profile", "test", "--dry-run", "--max-minutes", "5", "--groups", "grid"]) == 0
    assert capsys.readouterr().out.startswith("grid: ")


def test_results_history_with_json_is_allowed(capsys):
    assert cli_main(["results", "--profile", "test", "--json", "--history"]) == 0
    assert capsys.readouterr().out.startswith("{")


def test_mul_p2_is_refused_by_every_entry_point(tmp_path):
    with pytest.raises(ConfigError, match=MUL_P2):
        RunConfig(task="mul", p=2, noise=0.0, width=3, steps=2)
    with pytest.raises(ConfigError, match=MUL_P2):
        RunStore(tmp_path).train_or_load(RunConfig(task="mul", p=2, noise=0.0, width=3, steps=2))
    with pytest.raises(ConfigError, match=MUL_P2):  # p is checked before n_keep and noise
        tfm.TransformerConfig(task="mul", p=2, steps=5)
    assert not any(tmp_path.rglob("*.pt"))
    RunConfig(task="mul", p=3, noise=0.0, width=3, steps=2)  # the smallest allowed


@pytest.mark.parametrize("kw, message", [
    (dict(activation="foo"), "activation='foo' is not allowed; choose one of relu"),
    (dict(seed=-1), "seed=-1 is not allowed; it must be an integer >= 0"),
    (dict(seed=1.5), "seed=1.5 is not allowed"),
])
def test_analytic_weights_refuses_bad_activation_and_seed(kw, message):
    with pytest.raises(ConfigError, match=message):
        analytic_weights("add", 11, 5, **kw)


def test_image_config_keys_numpy_scalars_and_ints_as_plain_numbers():
    plain = img.ImageConfig(hidden=64, lr=1e-3, noise=0.2, epochs=8, seed=1)
    same = img.ImageConfig(hidden=np.int64(64), lr=np.float32(1e-3), noise=np.float64(0.2), epochs=np.int32(8),
                           seed=np.int64(1))
    assert same == plain and img.record_key(same, "digits") == img.record_key(plain, "digits")
    assert type(same.hidden) is int and type(same.lr) is float
    assert img.record_key(img.ImageConfig(lr=1), "digits") == img.record_key(img.ImageConfig(lr=1.0), "digits")
    # the key of an ordinary config (shipped records are named by it) is the one it always was
    assert img.record_key(img.ImageConfig(hidden=64, epochs=8, noise=0.05), "digits") == "d6e7458634253bc7f2c6"


def test_transformer_config_keys_numpy_scalars_and_ints_as_plain_numbers():
    plain = tfm.profile_config("test", noise=0.2, seed=1)
    same = tfm.profile_config("test", noise=np.float32(0.2), seed=np.int64(1), p=np.int64(23), n_keep=np.int64(3))
    assert same == plain and same.key() == plain.key()
    assert type(same.seed) is int and type(same.noise) is float
    assert tfm.profile_config("test", lr=1).key() == tfm.profile_config("test", lr=1.0).key()
    # the key of an ordinary config (shipped records are named by it) is the one it always was
    assert tfm.profile_config("test", noise=0.1, seed=0).key() == "ad52bf9985042a7037f8"
