"""scripts/gpu_produce.sh carries a long batch's checkpoint from one lent machine to the next:
it sends the store's checkpoints back in parts, joins parts carried in .ckpt/ into the store, and
`produce` then resumes the batch where it stopped. Run here on the CPU, with no GPU step."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from memgen import results as res
from memgen import train as T
from memgen.configs import get_profile
from memgen.store import RunStore, plan_batches

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_produce.sh"


def script(cwd: Path, **env: str) -> str:
    """Run the script with no produce step (STEPS empty) in ``cwd``; its output."""
    out = subprocess.run(["bash", str(SCRIPT)], cwd=cwd, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "STEPS": "", "OUT": str(cwd / "out"),
                              "MEMGEN_STORE": str(cwd / "runs"), **env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_checkpoints_go_back_in_parts_and_come_back_whole(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "runs" / "checkpoints").mkdir(parents=True)
    data = os.urandom(10_000)
    (a / "runs" / "checkpoints" / "abc.pt").write_bytes(data)
    log = script(a, PART_BYTES="4096")
    parts = sorted((a / "out").glob("ck-abc.pt.*"))
    assert [p.name for p in parts] == ["ck-abc.pt.00", "ck-abc.pt.01", "ck-abc.pt.02"]
    assert all(p.stat().st_size <= 4096 for p in parts) and "abc.pt sent as 3 part(s)" in log
    (b / ".ckpt").mkdir(parents=True)
    for p in parts:
        shutil.copy(p, b / ".ckpt")
    (b / ".ckpt" / "ck-abc.pt.05").write_bytes(b"stray")  # after a gap: not joined, and said
    log = script(b, PART_BYTES="4096")
    assert (b / "runs" / "checkpoints" / "abc.pt").read_bytes() == data
    assert "checkpoint abc.pt restored from 3 part(s) in .ckpt (10000 bytes)" in log
    assert "1 more after a gap ignored" in log
    # nothing resumed it (no produce step): it goes back, and the log says it is as restored
    assert "abc.pt is as restored: no batch resumed it" in log
    assert sorted(p.name for p in (b / "out").glob("ck-*")) == [p.name for p in parts]


def test_the_newest_checkpoints_go_back_first_within_the_limits(tmp_path):
    ck = tmp_path / "runs" / "checkpoints"
    ck.mkdir(parents=True)
    for i, name in enumerate(["new.pt", "old.pt", "older.pt"]):
        (ck / name).write_bytes(os.urandom(3000))
        os.utime(ck / name, (1e9 - i * 3600, 1e9 - i * 3600))
    # 7 files at most: 3 parts each, so the oldest is not sent
    log = script(tmp_path, PART_BYTES="1000")
    assert sorted({p.name.rsplit(".", 1)[0] for p in (tmp_path / "out").glob("ck-*")}) == ["ck-new.pt", "ck-old.pt"]
    assert "checkpoint older.pt not sent: 3 part(s), 3000 bytes" in log
    # the bytes sent back are capped too: only the newest fits 4000 bytes
    shutil.rmtree(tmp_path / "out")
    log = script(tmp_path, MAX_SEND_BYTES="4000")
    assert [p.name for p in (tmp_path / "out").glob("ck-*")] == ["ck-new.pt.00"]
    assert "old.pt not sent" in log and "older.pt not sent" in log
    for bad in ("0", "-5", "15m"):
        out = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "STEPS": "", "PART_BYTES": bad})
        assert out.returncode == 2 and out.stderr.strip() == (
            f"gpu_produce.sh: PART_BYTES={bad} is not allowed; it must be an integer >= 1")


def test_an_interrupted_batch_resumes_on_another_machine(tmp_path, monkeypatch, capfd):
    prof = get_profile("test")
    # 5000 steps: a batch that long checkpoints every 500 steps
    configs = [prof.config(width=9, noise=a, steps=5000) for a in (0.0, 0.4)]
    monkeypatch.setattr(res, "plan", lambda profile, groups=res.GROUPS: {"grid": configs})
    monkeypatch.setattr(res, "inspected", lambda profile: [])
    assert len(plan_batches(configs)) == 1 and len(plan_batches(configs, 9)) == 2  # the cap splits batches

    # machine a: the first batch is stopped (SIGINT at the budget) after its checkpoint at step 1000
    a, b = tmp_path / "a", tmp_path / "b"
    orig = T._save_checkpoint

    def save_then_stop(*args, **kw):
        orig(*args, **kw)
        if args[2] == 1000:
            raise KeyboardInterrupt

    monkeypatch.setattr(T, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        res.produce("test", root=a / "results", store=RunStore(a / "runs"), batch_neurons=9)
    monkeypatch.setattr(T, "_save_checkpoint", orig)
    script(a)

    # machine b: the parts carried in .ckpt, joined into the store; produce resumes at step 1000
    (b / ".ckpt").mkdir(parents=True)
    for p in (a / "out").glob("ck-*"):
        shutil.copy(p, b / ".ckpt")
    script(b)
    capfd.readouterr()
    assert res.produce("test", root=b / "results", store=RunStore(b / "runs"), batch_neurons=9) == (2, 0, 0)
    err = capfd.readouterr().err
    assert "memgen: resuming 1 run(s)" in err and "at step 1000 of 5000" in err
    assert not list((b / "runs" / "checkpoints").glob("*.pt"))  # a finished batch leaves none behind

    # the same records as one machine training without a stop
    c = tmp_path / "c"
    assert res.produce("test", root=c / "results", store=RunStore(c / "runs"), batch_neurons=9) == (2, 0, 0)
    resumed, whole = res.load("test", root=b / "results"), res.load("test", root=c / "results")
    assert [r["history"] for r in resumed] == [r["history"] for r in whole]
    assert [r["test_acc"] for r in resumed] == [r["test_acc"] for r in whole]


def test_batch_neurons_is_validated(tmp_path, monkeypatch, capsys):
    from memgen.cli import main

    monkeypatch.setenv("MEMGEN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("MEMGEN_STORE", str(tmp_path / "runs"))
    for bad in (0, -3, 2.5, True, 16385):
        with pytest.raises(res.ConfigError, match=f"batch_neurons={bad!r} is not allowed"):
            res.produce("test", batch_neurons=bad)
    assert main(["produce", "--profile", "test", "--batch-neurons", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "batch_neurons=0 is not allowed; it must be an integer from 1 to 16384")
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()  # nothing written


def test_a_damaged_carried_checkpoint_is_said_and_the_batch_starts_over(tmp_path, capfd):
    c = get_profile("test").config(width=9, noise=0.4, steps=30)
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"half a checkpoint")  # e.g. a part missing when the parts were joined
    capfd.readouterr()
    run = T.train_batch([c], progress=False, checkpoint_path=ck, checkpoint_every=10)[0]
    err = capfd.readouterr().err
    assert f"memgen: not resuming from {ck}: " in err and "the batch starts over" in err
    assert run.history["step"][0] == 0 and run.history["step"][-1] == 30 and not ck.exists()


def test_a_carried_checkpoint_never_replaces_a_later_one_in_the_store(tmp_path):
    """On a machine still warm from the last call, the store may hold a later checkpoint than .ckpt."""
    import sys

    from memgen.checkpoint import atomic_save, checked_load

    store = tmp_path / "runs" / "checkpoints" / "abc.pt"
    atomic_save(store, {"step": 2000})
    os.utime(store, (1e9, 1e9))  # saved in the last call
    (tmp_path / ".ckpt").mkdir()
    carried = tmp_path / ".ckpt" / "ck-abc.pt.00"
    atomic_save(carried, {"step": 1000})
    log = script(tmp_path, PYTHON=sys.executable)
    assert "checkpoint abc.pt: the store's copy (step 2000) is not older than .ckpt's (step 1000): kept" in log
    assert checked_load(store)["step"] == 2000 and "restored from" not in log
    assert "abc.pt is as restored: no batch resumed it" in log  # the kept one is watched like the others
    log = script(tmp_path, PYTHON=sys.executable)  # the same step: the store's copy stays
    assert "the store's copy (step 2000) is not older than .ckpt's (step 1000)" in log
    carried.write_bytes(b"damaged")  # a damaged carried copy never replaces a good one
    log = script(tmp_path, PYTHON=sys.executable)
    assert "the store's copy (step 2000) is not older than .ckpt's (step -1): kept" in log
    assert checked_load(store)["step"] == 2000
    atomic_save(carried, {"step": 3000})  # a later one replaces it
    log = script(tmp_path, PYTHON=sys.executable)
    assert checked_load(store)["step"] == 3000 and "abc.pt restored from 1 part(s)" in log
    store.write_bytes(b"damaged")  # a damaged store copy is replaced too
    log = script(tmp_path, PYTHON=sys.executable)
    assert checked_load(store)["step"] == 3000 and "abc.pt restored from 1 part(s)" in log
    assert not list(store.parent.glob("*.part"))


def test_steps_joined_by_plus_run_at_the_same_time_with_their_own_selection(tmp_path):
    import sys

    steps = "1,test,grid,--widths,9,--noises,0+1,test,grid,--widths,9,--noises,0.4"
    out = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "STEPS": steps, "DEV": "cpu", "BUDGET": "240", "OUT": str(tmp_path / "out"),
                              "PYTHON": sys.executable, "PYTHONPATH": str(SCRIPT.parents[1]),
                              "MEMGEN_STORE": str(tmp_path / "runs"), "MEMGEN_RESULTS": str(tmp_path / "results")})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # each step's lines are tagged with its place in the item, and each trained only its own α
    for i in (0, 1):
        assert any(s.startswith(f"[{i}] == ") and "produce 1 test grid --widths 9" in s for s in lines), out.stdout
        assert f"[{i}] results/test: 3 record(s) written, 0 already present" in lines, out.stdout
    # at the same time: both steps began before either wrote its records
    first_written = next(i for i, s in enumerate(lines) if "record(s) written" in s)
    assert all(any(s.startswith(f"[{i}] == ") for s in lines[:first_written]) for i in (0, 1)), out.stdout
    recs = res.load("test", root=tmp_path / "results")
    assert sorted((r["noise"], r["seed"]) for r in recs) == [(a, s) for a in (0.0, 0.4) for s in (0, 1, 2)]
    assert {r["width"] for r in recs} == {9}


@pytest.mark.parametrize("steps", ["3,paper,grid+", "+3,paper,grid", "3,paper,grid++3,paper,tied", "3,paper"])
def test_a_malformed_steps_item_is_refused_in_one_line(tmp_path, steps):
    out = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "STEPS": steps, "OUT": str(tmp_path / "out")})
    assert out.returncode == 2 and out.stderr.strip() == (
        f"gpu_produce.sh: STEPS item '{steps}' is not allowed; "
        "each is MINUTES,PROFILE,GROUP[,...], several joined by '+'")
    assert not (tmp_path / "out").exists()
