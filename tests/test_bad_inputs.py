"""Every bad input tried (issue 15), one row each, with the one-line message it must give.

Each row is (where, input, expected fragment of the message):

``cli``
    ``python -m memgen ARGS`` (run in-process): exit status 2, exactly one line on stderr, nothing
    on stdout, nothing in the run store.
``config`` / ``setup``
    ``RunConfig(**kw)`` / ``setup(profile, **kw)``: a :class:`ConfigError` with a one-line message.
``chapter``
    ``python -m memgen.book.bookgen chapter NOTEBOOK -p NAME VALUE ...`` (``make chapter``): exit
    status 2 and one line before any kernel starts; nothing written to ``--out``, nothing stored.
``store``
    a damaged entry: one warning line, the entry removed and the run trained again.
``widget``
    a live-control callback whose training fails: one line in the output, no traceback.

The number of rows shows in the test report (``test_bad_input[...]``).
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

from memgen.book import widgets
from memgen.book.bookgen import ROOT
from memgen.book.bookgen import main as bookgen_main
from memgen.cli import main as cli_main
from memgen.configs import ConfigError, RunConfig
from memgen.experiments import setup
from memgen.store import RunStore, SweepError
from memgen.train import DivergenceError, ResourceError

NAN, INF = float("nan"), float("inf")
CH2, CH3, CH5 = "book/02_scaling.ipynb", "book/03_noise_first.ipynb", "book/05_frequency_filtration.ipynb"

ROWS = [
    # ---- the command line: train
    ("cli", "train --noise 1.5", "noise=1.5 is not allowed; it must lie in [0, 1)"),
    ("cli", "train --noise nan", "noise=nan is not allowed; it must be a finite number"),
    ("cli", "train --noise inf", "noise=inf is not allowed; it must be a finite number"),
    ("cli", "train --noise -0.1", "noise=-0.1 is not allowed"),
    ("cli", "train --width 0", "width=0 is not allowed; it must be an integer >= 1"),
    ("cli", "train --width 2.5", "argument --width: invalid int value"),
    ("cli", "train --task mul --p 60", "p=60 is not allowed for task='mul'; multiplication needs a prime p"),
    ("cli", "train --task div", "argument --task: invalid choice"),
    ("cli", "train --p 1", "p=1 is not allowed; it must be an integer >= 2"),
    ("cli", "train --lr 0", "lr=0.0 is not allowed; it must be > 0"),
    ("cli", "train --lr -1", "lr=-1.0 is not allowed; it must be > 0"),
    ("cli", "train --lr nan", "lr=nan is not allowed; it must be a finite number"),
    ("cli", "train --lr inf", "lr=inf is not allowed; it must be a finite number"),
    ("cli", "train --weight-decay nan", "weight_decay=nan is not allowed; it must be a finite number"),
    ("cli", "train --weight-decay inf", "weight_decay=inf is not allowed; it must be a finite number"),
    ("cli", "train --weight-decay -1", "weight_decay=-1.0 is not allowed; it must be >= 0"),
    ("cli", "train --train-frac 1.0", "train_frac=1.0 is not allowed; it must lie in (0, 1)"),
    ("cli", "train --train-frac nan", "train_frac=nan is not allowed; it must be a finite number"),
    ("cli", "train --steps 0", "steps=0 is not allowed; it must be an integer >= 1"),
    ("cli", "train --steps abc", "argument --steps: invalid int value: 'abc'"),
    ("cli", "train --seed -1", "seed=-1 is not allowed; it must be an integer >= 0"),
    ("cli", "train --profile huge", "profile='huge' is not allowed; choose one of test, book, paper"),
    ("cli", "train --activation tanh", "argument --activation: invalid choice"),
    ("cli", "train --profile test --task sub --noise-mode symmetric", "noise_mode='symmetric' is not allowed"),
    ("cli", "train --noise 0.4 --noise 0.5", "argument --noise: given twice (0.4 and 0.5); give it once"),
    ("cli", "train --width 33 --width 65", "argument --width: given twice"),
    ("cli", "train --profile test --batch-size 100000",
     "batch_size=100000 is not allowed with 264 training pairs; it must be <= 264"),
    ("cli", "train --profile test --batch-size 0", "batch_size=0 is not allowed; it must be an integer >= 1"),
    ("cli", "train --profile test --task mul --p 2 --noise 0 --width 3",
     "p=2 is not allowed for task='mul' here: the Fourier analyses need p >= 3"),
    ("cli", "train --profile test --noise 0.001", "noise=0.001 is not allowed with 264 training pairs"),
    ("cli", "train --profile test --width 100000000", "GiB"),
    ("cli", "train --bogus 1", "unrecognized arguments: --bogus 1"),
    ("cli", "", "the following arguments are required: command"),
    # ---- the command line: sweep
    ("cli", "sweep --widths 9 --widths 33", "argument --widths: given twice (9 and 33); give it once"),
    ("cli", "sweep --profile test --widths 0", "widths=[0] is not allowed; it must be a non-empty list of integers"),
    ("cli", "sweep --profile test --noises 1.2", "noises=[1.2] is not allowed; it must be a non-empty list of numbers"),
    ("cli", "sweep --profile test --noises nan", "noises=[nan] is not allowed"),
    ("cli", "sweep --profile test --seeds -1", "seeds=[-1] is not allowed; it must be a non-empty list of integers"),
    ("cli", "sweep --profile test --widths", "argument --widths: expected at least one argument"),
    ("cli", "sweep --profile test --widths 33 --noises 0 0.4 --lr 1e3 --optimizer sgd --steps 50",
     "2 run(s) failed and were not stored"),
    # ---- the command line: analytic
    ("cli", "analytic --seed -1", "seed=-1 is not allowed; it must be an integer >= 0"),
    ("cli", "analytic --p 100000", "analytic with p=100000, width=200 needs about"),
    ("cli", "analytic --p 1", "p=1 is not allowed; it must be an integer >= 2"),
    ("cli", "analytic --width 0", "width=0 is not allowed; it must be an integer >= 1"),
    ("cli", "analytic --task mul --p 60", "p=60 is not allowed for task='mul'"),
    ("cli", "analytic --p 23 --p 29", "argument --p: given twice (23 and 29); give it once"),
    ("cli", "analytic --activation tanh", "argument --activation: invalid choice"),
    # ---- RunConfig: every float field refuses NaN and inf; types and ranges
    ("config", dict(lr=NAN), "lr=nan is not allowed; it must be a finite number"),
    ("config", dict(lr=INF), "lr=inf is not allowed; it must be a finite number"),
    ("config", dict(weight_decay=NAN), "weight_decay=nan is not allowed"),
    ("config", dict(weight_decay=INF), "weight_decay=inf is not allowed"),
    ("config", dict(noise=NAN), "noise=nan is not allowed"),
    ("config", dict(noise=-INF), "noise=-inf is not allowed"),
    ("config", dict(train_frac=NAN), "train_frac=nan is not allowed"),
    ("config", dict(beta1=NAN), "beta1=nan is not allowed"),
    ("config", dict(beta2=INF), "beta2=inf is not allowed"),
    ("config", dict(beta1=1.0), "beta1=1.0 is not allowed; it must lie in [0, 1)"),
    ("config", dict(lr=np.float32("nan")), "lr=nan is not allowed"),
    ("config", dict(width=2.0), "width=2.0 is not allowed; it must be an integer >= 1"),
    ("config", dict(width=True), "width=True is not allowed"),
    ("config", dict(width="64"), "width='64' is not allowed"),
    ("config", dict(width=np.float64(64)), "width=64.0 is not allowed"),
    ("config", dict(noise="0.4"), "noise='0.4' is not allowed; it must be a number"),
    ("config", dict(task="mul", p=np.int64(60)), "p=60 is not allowed for task='mul'"),
    ("config", dict(seed=-1), "seed=-1 is not allowed"),
    ("config", dict(split_seed=1.5), "split_seed=1.5 is not allowed"),
    ("config", dict(tied="yes"), "tied='yes' is not allowed; use True or False"),
    ("config", dict(steps=2.5), "steps=2.5 is not allowed"),
    ("config", dict(device="tpu"), "device='tpu' is not allowed"),
    ("config", dict(p=23, batch_size=265), "batch_size=265 is not allowed with 264 training pairs"),
    # ---- experiments.setup: grids are non-empty lists
    ("setup", dict(widths=[]), "widths=[] is not allowed; it must be a non-empty list of integers >= 1"),
    ("setup", dict(noises=[]), "noises=[] is not allowed; it must be a non-empty list of numbers in [0, 1)"),
    ("setup", dict(seeds=[]), "seeds=[] is not allowed"),
    ("setup", dict(widths=33), "widths=33 is not allowed; it must be a non-empty list"),
    ("setup", dict(noises=0.5), "noises=0.5 is not allowed; it must be a non-empty list"),
    ("setup", dict(widths="abc"), "widths='abc' is not allowed; it must be a non-empty list of integers"),
    ("setup", dict(noises="0.4"), "noises='0.4' is not allowed"),
    ("setup", dict(widths=[33, "x"]), "widths=[33, 'x'] is not allowed"),
    ("setup", dict(noises=[0.2, 1.0]), "noises=[0.2, 1.0] is not allowed"),
    ("setup", dict(noises=[0.2, NAN]), "noises=[0.2, nan] is not allowed"),
    ("setup", dict(seeds=[0, -1]), "seeds=[0, -1] is not allowed"),
    ("setup", dict(depth=3), "unknown run parameter(s) ['depth']"),
    ("setup", dict(profile="gpu"), "profile='gpu' is not allowed"),
    ("setup", dict(task="mul", p=2, noise=0.0), "the Fourier analyses need p >= 3"),
    # ---- make chapter
    ("chapter", [CH5, "-p", "noize", "0.6"],
     "parameter 'noize' is not allowed for 05_frequency_filtration.ipynb (did you mean 'noise'?); "
     "its parameters are profile, results, task, width, noise, noises, widths"),
    ("chapter", [CH5, "-p", "widths", "abc"], "widths=['abc'] is not allowed; it must be a non-empty list of integers"),
    ("chapter", [CH2, "-p", "noises", "[]"], "noises=[] is not allowed"),
    ("chapter", [CH2, "-p", "noises", "1.5"], "noises=[1.5] is not allowed"),
    ("chapter", ["book/99_missing.ipynb"], "notebook 'book/99_missing.ipynb' is not allowed: no such notebook"),
    ("chapter", ["README.md"], "notebook 'README.md' is not allowed: no such notebook"),
    ("chapter", [CH5, "-p", "noise", "0.4", "-p", "noise", "0.5"], "parameter 'noise' is given twice"),
    ("chapter", [CH5, "-p", "width", "33.5"], "width=33.5 is not allowed; it must be an integer or None"),
    ("chapter", [CH5, "-p", "noise", "nan"], "noise=nan is not allowed; it must be a finite number or None"),
    ("chapter", [CH5, "-p", "noise", "1.5"], "noise=1.5 is not allowed; it must lie in [0, 1)"),
    ("chapter", [CH5, "-p", "profile", "gpu"], "profile='gpu' is not allowed"),
    ("chapter", [CH5, "-p", "task", "mul", "-p", "profile", "test", "-p", "noise", "0.003"],
     "noise=0.003 is not allowed with 264 training pairs"),
    ("chapter", [CH3, "-p", "steps", "1e3"], "steps='1e3' is not allowed; it must be an integer"),
    ("chapter", [CH3, "-p", "noise", "None"], "noise=None is not allowed; this chapter needs a value for it"),
    # ---- the run store
    ("store", "copied", "holds the run of another config (differs in width)"),
    ("store", "truncated", "checksum mismatch"),
    ("store", "garbage", "not a memgen store file"),
    # ---- live controls
    ("widget", DivergenceError("run diverged at step 7: loss=nan; try a smaller lr"), "diverged at step 7"),
    ("widget", ResourceError("training needs about 80.00 GiB but only 8.00 GiB is free"), "needs about 80.00 GiB"),
    ("widget", ConfigError("noise=1.5 is not allowed; it must lie in [0, 1)"), "noise=1.5 is not allowed"),
    ("widget", SweepError(["run diverged at step 3", "run diverged at step 4"]), "2 run(s) failed; first: run"),
]


def _id(row):
    where, what, _ = row
    if where == "cli":
        return f"cli:{what or '<none>'}"
    if where in ("config", "setup"):
        return f"{where}:" + ",".join(f"{k}={v!r}" for k, v in what.items())
    if where == "chapter":
        return "chapter:" + " ".join(what)
    return f"{where}:{what if isinstance(what, str) else type(what).__name__}"


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _entries(root):
    return [p for p in root.rglob("*.pt")] if root.exists() else []


def _run_cli(args, capsys):
    if args == "train --profile test --width 100000000" and torch.cuda.is_available():
        pytest.skip("the size check depends on the memory of the device")
    try:
        rc = cli_main(args.split())
    except SystemExit as e:  # argparse errors
        rc = e.code
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert out == ""
    return err


def _run_chapter(args, tmp_path, capsys):
    out_dir = tmp_path / "out"
    rc = bookgen_main(["chapter", str(ROOT / args[0]) if args[0].startswith("book/0") else args[0],
                       "--out", str(out_dir), *args[1:]])
    _, err = capsys.readouterr()
    assert rc == 2, err
    assert not out_dir.exists()  # nothing half-written
    return err.split(": not run: ConfigError: ", 1)[-1]


def _run_store(damage, tmp_path):
    store = RunStore(tmp_path / "damaged")
    c = RunConfig(p=11, width=8, steps=20, lr=1e-2, noise=0.2)
    first = store.train_or_load(c)
    path = store.path(c)
    raw = path.read_bytes()
    if damage == "copied":  # another config's entry copied onto this config's path
        other = RunConfig(p=11, width=9, steps=20, lr=1e-2, noise=0.2)
        store.train_or_load(other)
        shutil.copy(store.path(other), path)
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path.write_bytes(b"not a run")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        again = store.train_or_load(c)
    assert len(seen) == 1 and "removing it and training again" in str(seen[0].message)
    assert again.weights.width == 8 and again.history == first.history  # retrained, same seeds
    return str(seen[0].message)


def _run_widget(error, monkeypatch, capsys):
    monkeypatch.delenv("MEMGEN_STATIC", raising=False)

    def render(config):
        raise error

    box = widgets.live_controls(setup("test"), render)
    box.children[2].click()  # without a kernel the Output widget's prints reach stdout
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    return out.strip().splitlines()[-1]


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_bad_input(row, tmp_path, capsys, monkeypatch, _isolated_store):
    where, what, expected = row
    if where == "cli":
        msg = _run_cli(what, capsys)
    elif where in ("config", "setup"):
        with pytest.raises(ConfigError) as e:
            if where == "config":
                RunConfig(**what)
            else:
                kw = dict(what)
                setup(kw.pop("profile", "test"), **kw)
        msg = str(e.value)
    elif where == "chapter":
        msg = _run_chapter(what, tmp_path, capsys)
    elif where == "store":
        msg = _run_store(what, tmp_path)
    else:
        msg = _run_widget(what, monkeypatch, capsys)
    assert expected in _one_line(msg)
    assert not _entries(_isolated_store), "a bad input stored a run"


def test_the_table_covers_every_place_and_the_issue():
    """At least the ~50 inputs of issue 15, in every place bad input can come from."""
    assert len(ROWS) >= 50
    assert {r[0] for r in ROWS} == {"cli", "config", "setup", "chapter", "store", "widget"}
    assert len({_id(r) for r in ROWS}) == len(ROWS)


# ---------------------------------------------------------------------------- what is accepted
def test_numpy_scalars_count_as_the_python_numbers_they_hold():
    a = RunConfig(width=np.int64(64), noise=np.float32(0.4), lr=np.float64(3e-3), seed=np.int32(1),
                  tied=np.bool_(False))
    b = RunConfig(width=64, noise=0.4, lr=3e-3, seed=1)
    assert a == b and a.key() == b.key() and type(a.width) is int and a.noise == 0.4
    st = setup("test", widths=np.array([9, 33]), noises=[np.float32(0.4)], seeds=(np.int64(0),))
    assert st.widths == (9, 33) and st.noises == (0.4,) and st.seeds == (0,)
    assert type(st.widths[0]) is int


def test_chapter_parameters_are_typed_by_the_parameters_cell():
    from memgen.book.bookgen import check_parameters

    ch2, ch5 = ROOT / CH2, ROOT / CH5
    assert check_parameters(ch2, [("noises", "0.5")]) == {"noises": [0.5]}  # a scalar: a one-element list
    assert check_parameters(ch5, [("widths", "33,65"), ("noise", "0.6")]) == {"widths": [33, 65], "noise": 0.6}
    assert check_parameters(ch5, [("widths", "[33, 65]"), ("width", "None")]) == {"widths": [33, 65], "width": None}
    assert check_parameters(ch5, [("task", "mul"), ("profile", "test")]) == {"task": "mul", "profile": "test"}


def test_live_controls_in_a_kernel_show_no_static_note(monkeypatch):
    monkeypatch.delenv("MEMGEN_STATIC", raising=False)
    box = widgets.live_controls(setup("test"), lambda c: None)
    assert "running kernel" not in box.children[0].value
