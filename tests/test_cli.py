import json
import os
import subprocess
import sys

import pytest

from memgen.cli import main


def test_train_json_has_every_field(capsys):
    assert main(["train", "--profile", "test", "--width", "33", "--noise", "0.4", "--steps", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("config", "train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc", "phase_error"):
        assert k in out
    assert out["config"]["width"] == 33 and out["config"]["p"] == 23
    assert set(out["ff"]) == {"full", "G", "R"}
    assert set(out["ff"]["G"]) >= {"test_acc", "clean_acc", "noisy_acc", "noisy_true_acc"}
    assert set(out["act_swap"]) == {"relu", "quadratic", "gelu", "reverse_relu"}
    assert all(0 <= out[k] <= 1 for k in ("train_acc", "test_acc"))


def test_analytic_json(capsys):
    assert main(["analytic", "--task", "mul", "--p", "23", "--width", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["acc"] == 1.0 and out["acc_nonzero"] == 1.0


@pytest.mark.parametrize("args,name", [
    (["--noise", "1.5"], "noise"), (["--width", "0"], "width"), (["--task", "mul", "--p", "60"], "prime"),
    (["--activation", "tanh"], "activation"), (["--profile", "huge"], "profile"), (["--lr", "-1"], "lr"),
    (["--steps", "abc"], "steps"),
])
def test_bad_arguments_exit_2_with_one_line(args, name):
    r = subprocess.run([sys.executable, "-m", "memgen", "train", *args, "--json"], capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], r.stderr
    assert r.stdout == ""


def test_sweep_command(capsys):
    assert main(["sweep", "--profile", "test", "--widths", "9", "--noises", "0", "0.4", "--steps", "50"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


@pytest.mark.parametrize("args,fragment", [
    (["train", "--noise", "0.4", "--noise", "0.5"], "argument --noise: given twice"),
    (["analytic", "--p", "100000"], "needs about"),  # refused before allocating
    (["analytic", "--seed", "-1"], "seed=-1"),
    (["sweep", "--profile", "test", "--widths", "9", "--noises", "0", "--lr", "1e3", "--optimizer", "sgd",
      "--steps", "50"], "1 run(s) failed and were not stored"),
])
def test_every_subcommand_exits_2_with_one_line(args, fragment, tmp_path):
    store = tmp_path / "store"
    r = subprocess.run([sys.executable, "-m", "memgen", *args], capture_output=True, text=True,
                       env={**os.environ, "MEMGEN_STORE": str(store), "MEMGEN_PROGRESS": "off"})
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], r.stderr
    assert not list(store.rglob("*.pt"))


def test_a_reader_that_stops_early_gets_no_traceback():
    """``memgen results --json | head -c 100``: the closed pipe ends the command quietly."""
    p = subprocess.Popen([sys.executable, "-m", "memgen", "results", "--profile", "test", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.read(100).startswith(b"{")
    p.stdout.close()  # the output (MBs) is far larger than a pipe's buffer: the writer hits the closed end
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err
