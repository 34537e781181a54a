import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import memgen.train as T
from memgen.checkpoint import STALE_TMP_SECONDS, atomic_save
from memgen.configs import RunConfig
from memgen.store import RunStore, SweepError, checked_load, plan_batches
from memgen.train import DivergenceError, train_batch


def cfg(**kw):
    base = dict(p=11, width=8, steps=20, lr=1e-2, noise=0.2)
    base.update(kw)
    return RunConfig(**base)


def test_round_trip_and_cache_hit(tmp_path):
    store = RunStore(tmp_path)
    c = cfg()
    run = store.train_or_load(c)
    assert c in store
    again = store.train_or_load(c)
    assert again.history == run.history
    assert torch.equal(again.weights.W, run.weights.W)
    assert "seconds" in again.meta


def test_sweep_batches_and_keeps_order(tmp_path):
    store = RunStore(tmp_path)
    configs = [cfg(seed=s, noise=a) for s in (0, 1) for a in (0.0, 0.4)] + [cfg(width=4)]
    assert sorted(len(b) for b in plan_batches(configs)) == [1, 4]
    runs = store.sweep(configs + configs[:1])
    assert [r.config for r in runs] == configs + configs[:1]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_entry_is_detected_and_recomputed(tmp_path, damage):
    store = RunStore(tmp_path)
    c = cfg()
    first = store.train_or_load(c)
    path = store.path(c)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        path.write_bytes(raw[:-10] + bytes([raw[-10] ^ 0xFF]) + raw[-9:])
    else:
        path.write_bytes(b"not a run")
    with pytest.warns(UserWarning, match="removing it and training again"):
        again = store.train_or_load(c)
    assert again.history == first.history
    checked_load(path)  # the new entry is valid


def test_failed_runs_are_not_stored_and_reported_at_the_end(tmp_path):
    store = RunStore(tmp_path)
    good, bad = cfg(optimizer="sgd"), cfg(optimizer="sgd", lr=1e9, seed=1)
    with pytest.raises(SweepError) as e:
        store.sweep([bad, good])
    assert len(e.value.failures) == 1 and "diverged" in e.value.failures[0]
    assert good in store and bad not in store
    with pytest.raises(DivergenceError, match="diverged at step"):
        store.train_or_load(bad)
    runs = store.sweep([bad, good], allow_failures=True)
    assert runs[0].failed and runs[1].failed is None


SCRIPT = textwrap.dedent("""
    import signal
    import sys
    # a background job of a non-interactive shell starts with SIGINT ignored; restore Python's
    # handler so that SIGINT raises KeyboardInterrupt here whatever the parent did
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from memgen.configs import RunConfig
    from memgen.store import RunStore
    store = RunStore(sys.argv[1])
    specs = [w.split(":") for w in sys.argv[2].split(",")]
    store.sweep([RunConfig(p=23, width=int(w), steps=int(s), lr=1e-2, noise=0.3) for w, s in specs])
    print("done", flush=True)
""")


def _run(tmp_path, specs):
    """Sweep in a subprocess; specs is "width:steps,width:steps,..."."""
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), specs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MEMGEN_PROGRESS": "off"})


def _entries(root):
    return sorted(p for p in root.rglob("*.pt") if "checkpoints" not in p.parts)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_sweep_keeps_finished_runs(tmp_path, sig):
    # widths differ, so each run is its own batch; the last one is long
    proc = _run(tmp_path, "4:50,5:50,6:50,2048:20000")
    try:
        deadline = time.time() + 120
        while len(_entries(tmp_path)) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert len(_entries(tmp_path)) == 3, proc.poll()
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    kept = _entries(tmp_path)
    assert len(kept) == 3
    for p in kept:
        checked_load(p)
    if sig == signal.SIGINT:  # a clean interrupt removes its temporary file; SIGKILL may leave one,
        assert not list(tmp_path.rglob("*.tmp"))  # which is never read as an entry
    # a re-run trains only what is missing (here: nothing of the finished ones)
    store = RunStore(tmp_path)
    assert sum(RunConfig(p=23, width=w, steps=50, lr=1e-2, noise=0.3) in store for w in (4, 5, 6)) == 3


def test_two_writers_end_with_one_valid_entry(tmp_path):
    procs = [_run(tmp_path, "32:300") for _ in range(2)]
    try:
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            p.kill()
    entries = _entries(tmp_path)
    assert len(entries) == 1
    checked_load(entries[0])
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_entry_of_another_config_is_damage_not_a_hit(tmp_path):
    store = RunStore(tmp_path)
    c, other = cfg(width=33), cfg(width=9)
    store.train_or_load(other)
    store.path(c).parent.mkdir(parents=True, exist_ok=True)
    store.path(c).write_bytes(store.path(other).read_bytes())  # valid checksum, wrong run
    with pytest.warns(UserWarning, match=r"holds the run of another config \(differs in width\)"):
        run = store.train_or_load(c)
    assert run.weights.width == 33
    assert checked_load(store.path(c))["config"] == c.identity()


def test_stale_temporary_files_are_removed_when_the_store_is_used(tmp_path):
    store = RunStore(tmp_path)
    c = cfg()
    folder = store.path(c).parent
    folder.mkdir(parents=True)
    stale, fresh = folder / f".{c.key()}.pt.abc123.tmp", folder / f".{c.key()}.pt.def456.tmp"
    stale.write_bytes(b"half a run")
    fresh.write_bytes(b"a save in progress")
    old = time.time() - STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    store.train_or_load(c)
    assert not stale.exists() and fresh.exists()  # a younger one may belong to a live writer


def test_resume_says_so_and_keeps_the_total_training_time(tmp_path, capfd, monkeypatch):
    c = cfg(steps=60)
    ck = tmp_path / "ck.pt"
    orig = T._save_checkpoint

    def save_then_stop(*a, **k):
        orig(*a, **k)
        if a[2] == 40:
            raise KeyboardInterrupt

    monkeypatch.setattr(T, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_batch([c], progress=False, checkpoint_path=ck, checkpoint_every=20)
    monkeypatch.setattr(T, "_save_checkpoint", orig)
    saved = checked_load(ck)
    assert saved["seconds"] > 0
    saved["seconds"] = 1000.0  # as if the part before the interruption had taken 1000 s
    atomic_save(ck, saved)
    capfd.readouterr()
    run = train_batch([c], progress=False, checkpoint_path=ck, checkpoint_every=20)[0]
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memgen: resuming 1 run(s)") and "at step 40 of 60" in err[0]
    assert run.meta["seconds"] > 1000.0
    assert not ck.exists()


SHARED_SWEEP = textwrap.dedent("""
    import sys
    import memgen.store as st
    from memgen.configs import RunConfig

    trained = []
    real = st.train_batch
    def counting(batch, **kw):
        trained.extend(c.width for c in batch)
        return real(batch, **kw)
    st.train_batch = counting
    configs = [RunConfig(p=11, width=w, steps=2000, noise=0.3) for w in (5, 9, 13, 17)]
    if sys.argv[2] == "reversed":
        configs = configs[::-1]
    runs = st.RunStore(sys.argv[1]).sweep(configs, progress=False)
    assert all(r.weights is not None for r in runs)
    print(sorted(trained))
""")


def test_processes_sharing_a_store_train_each_run_once(tmp_path):
    """Two chapters executing side by side (MEMGEN_SHARED_STORE=1): every run is trained by one of
    them, the other waits for it and loads it."""
    env = {**os.environ, "MEMGEN_SHARED_STORE": "1", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", SHARED_SWEEP, str(tmp_path), order], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for order in ("forward", "reversed")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    trained = [eval(o[0].strip().splitlines()[-1]) for o in outs]
    assert sorted(trained[0] + trained[1]) == [5, 9, 13, 17]  # nothing trained twice, nothing missing
    assert not list((tmp_path / "claims").glob("*.claim"))  # every claim released


def test_claimed_sweep_in_one_process_is_the_plain_sweep(tmp_path, monkeypatch):
    cs = [cfg(width=w) for w in (5, 9)]
    plain = RunStore(tmp_path / "a").sweep(cs, progress=False)
    claimed = RunStore(tmp_path / "b").sweep(cs, progress=False, claims=True)
    for a, b in zip(plain, claimed):
        assert a.config == b.config and torch.equal(a.weights.W, b.weights.W)
    monkeypatch.setenv("MEMGEN_SHARED_STORE", "yes")
    with pytest.raises(ValueError, match="MEMGEN_SHARED_STORE='yes' is not allowed; use 0 or 1"):
        RunStore(tmp_path / "c").sweep(cs, progress=False)
