"""Sweeps on a Dask cluster (memgen.distributed): a LocalCluster of 2 worker processes on the CPU.

One cluster serves the module (its scheduler gives up on a task at the first worker death, so a
killed worker's batch is reported lost at once instead of being retried).
"""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import dask
import numpy as np
import pytest
import torch
from distributed import Client

import memgen as mg
from memgen import cli
from memgen import distributed as md
from memgen.store import SweepError

DEADLINE = 240  # seconds to wait for something a busy 2-core machine does in a few


@pytest.fixture(scope="module")
def client():
    # CI may start us with SIGINT/SIGTERM ignored, which the worker processes would inherit (and
    # then not stop when the nanny terminates them): give them the default dispositions.
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if saved[signal.SIGINT] == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if saved[signal.SIGTERM] == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = md.local_cluster(2, quiet=True, dashboard_address=":0")
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
        for s, h in saved.items():
            signal.signal(s, h)


@pytest.fixture
def reports(caplog):
    """The BatchReports the sweep logs, one per finished batch."""
    caplog.set_level(logging.INFO, logger="memgen.distributed")
    return lambda: [r.memgen_report for r in caplog.records if hasattr(r, "memgen_report")]


def configs(widths, noises, seeds=(0,), steps=40):
    return mg.setup("test").grid(widths=tuple(widths), noises=tuple(noises), seeds=tuple(seeds), steps=steps)


def store_files(root):
    """Every file under the store root, relative, with (inode, mtime_ns)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (st.st_ino, st.st_mtime_ns)
    return out


def entry_files(cs):
    return {f"{c.key()[:2]}/{c.key()}.pt" for c in cs}


def wait_for(what, cond):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < DEADLINE, f"gave up waiting for {what}"
        time.sleep(0.05)


def in_thread(fn, *args, **kwargs):
    """Run ``fn`` in a thread; the returned function joins it and returns its result or exception."""
    out = {}

    def target():
        try:
            out["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: B036 - handed to the test
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()

    def join():
        t.join(DEADLINE)
        assert not t.is_alive(), "the sweep did not finish"
        return out

    return join


# ---------------------------------------------------------------------------------------------- the cluster
def test_sweep_on_two_workers_equals_the_in_process_sweep(client, reports, _isolated_store, tmp_path):
    cs = configs([9, 17], [0.0, 0.4], steps=30)
    runs = mg.sweep([*cs, cs[0]], client=client)  # the default store, a duplicate config
    assert [r.config for r in runs] == [*cs, cs[0]]
    # every run trained by exactly one task, and stored exactly once, nothing else left behind
    trained = [k for rep in reports() for k in rep.trained]
    assert sorted(trained) == sorted(c.key() for c in cs)
    assert len(reports()) == len(mg.store.plan_batches(cs)) == 2
    files = store_files(_isolated_store)
    assert set(files) == entry_files(cs)
    # the same batches in-process give the same numbers
    ref = mg.RunStore(tmp_path / "in-process").sweep(cs)
    for a, b in zip(runs, ref):
        assert a.history.keys() == b.history.keys()
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k], err_msg=f"{a.config.label()}: {k}")
        sa, sb = a.weights.to_state(), b.weights.to_state()
        assert all(torch.equal(sa[k], sb[k]) if torch.is_tensor(sa[k]) else sa[k] == sb[k] for k in sa)
    # again: everything loads, nothing is submitted or rewritten
    again = mg.RunStore(_isolated_store).sweep(cs, client=client)
    assert [r.config for r in again] == cs and len(reports()) == 2
    assert store_files(_isolated_store) == files


def test_a_run_claimed_elsewhere_is_waited_for_not_trained(client, reports, tmp_path):
    store = mg.RunStore(tmp_path / "store")
    x, y = configs([9], [0.0, 0.4], steps=30)
    held = md.Claim.acquire(store.root, x.key())  # this (live) process claims x
    assert held is not None
    join = in_thread(md.sweep, [x, y], client=client, store=store)
    wait_for("y to be stored", lambda: y in store)
    assert x not in store
    store.sweep([x])  # the claim holder trains x itself, then releases it
    mine = store_files(store.root)[f"{x.key()[:2]}/{x.key()}.pt"]
    held.release()
    out = join()
    assert "error" not in out, out.get("error")
    assert [r.config for r in out["result"]] == [x, y]
    (rep,) = reports()
    assert rep.trained == [y.key()] and rep.waited == [x.key()]
    assert store_files(store.root)[f"{x.key()[:2]}/{x.key()}.pt"] == mine  # x was not trained again
    assert not any((store.root / "claims").iterdir())


def test_a_killed_worker_loses_only_its_batch_and_a_rerun_completes(client, reports, tmp_path):
    store = mg.RunStore(tmp_path / "store")
    slow = mg.setup("test").config(width=9, noise=0.4, seed=1, steps=1500)  # killed at its first checkpoint
    fast = configs([17], [0.0, 0.4], steps=30)
    wanted = [slow, *fast]
    workers = set(client.run(os.getpid).values())
    join = in_thread(md.sweep, wanted, client=client, store=store, checkpoint_every=100)
    claim = md.Claim.path_of(store.root, slow.key())
    wait_for("the slow batch's first checkpoint",
             lambda: claim.exists() and any((store.root / "checkpoints").glob("*.pt")))
    pid = json.loads(claim.read_text())["pid"]
    assert pid in workers  # the claim names the worker process that trains the batch
    assert slow not in store
    os.kill(pid, signal.SIGKILL)
    out = join()
    assert isinstance(out.get("error"), SweepError), out
    lost = [m for m in out["error"].failures if "its batch was lost" in m]
    assert any(slow.key() in m for m in lost) and "KilledWorker" in lost[0]
    assert slow not in store and claim.exists()  # the dead worker's claim and checkpoint are left
    before = store_files(store.root)
    kept = {f for f in before if f.endswith(".pt") and not f.startswith("checkpoints")}
    assert kept <= entry_files(fast)  # whatever finished is stored (the fast batch may have been lost too)

    out = in_thread(md.sweep, wanted, client=client, store=store, checkpoint_every=100)()  # takes the claim over
    assert "error" not in out, out.get("error")
    runs = out["result"]
    assert [r.config for r in runs] == wanted and not any(r.failed for r in runs)
    trained = [k for rep in reports() for k in rep.trained]
    assert sorted(trained) == sorted(c.key() for c in wanted)  # each run trained once over both sweeps
    after = store_files(store.root)
    assert set(after) == entry_files(wanted)  # no claims, checkpoints or temporary files left
    assert all(after[f] == before[f] for f in kept)  # what was stored was not trained again


# ---------------------------------------------------------------------------------------------- the CLI
def test_cli_sweep_on_a_running_scheduler(client, reports, _isolated_store, capsys):
    addr = client.scheduler.address
    argv = ["sweep", "--profile", "test", "--widths", "9", "--noises", "0.4", "--steps", "30", "--json"]
    assert cli.main([*argv, "--scheduler", addr]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["width"], r["noise"]) for r in rows] == [(9, 0.4)]
    assert [len(rep.trained) for rep in reports()] == [1]  # trained on the cluster
    assert cli.main(argv) == 0  # without the flags: the same rows, from the store
    assert json.loads(capsys.readouterr().out)["runs"] == rows


def test_cli_workers_starts_a_local_cluster(monkeypatch, client, capsys):
    seen = {}

    class Fake:
        def __init__(self, **kw):
            seen.update(kw)

        def __enter__(self):
            return client

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(md, "connect", Fake)
    argv = ["sweep", "--profile", "test", "--widths", "9", "--noises", "0", "--steps", "20", "--json"]
    assert cli.main([*argv, "--workers", "3"]) == 0
    assert seen == {"scheduler": None, "workers": 3}
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 1


@pytest.mark.parametrize("extra, message", [
    (["--workers", "0"], "--workers: '0' is not allowed; it must be a positive integer"),
    (["--workers", "two"], "--workers: 'two' is not allowed"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with argument"),
])
def test_cli_rejects_bad_cluster_flags(extra, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["sweep", "--profile", "test", *extra])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and err.count("\n") == 1


def test_connect_names_an_unreachable_scheduler():
    with pytest.raises(mg.ConfigError, match="scheduler='tcp://127.0.0.1:9': cannot connect"):
        with md.connect(scheduler="tcp://127.0.0.1:9", timeout=1):
            pass
    with pytest.raises(mg.ConfigError, match="exactly one of scheduler"):
        with md.connect():
            pass
    with pytest.raises(mg.ConfigError, match="workers=0 is not allowed"):
        md.local_cluster(0)


# ---------------------------------------------------------------------------------------------- claims
def test_a_claim_is_exclusive_until_released(tmp_path):
    a = md.Claim.acquire(tmp_path, "k")
    assert a is not None and md.Claim.acquire(tmp_path, "k") is None  # held by a live process
    info = json.loads(a.path.read_text())
    assert info["pid"] == os.getpid() and info["host"] and info["time"] <= time.time()
    a.release()
    assert not a.path.exists()
    b = md.Claim.acquire(tmp_path, "k")
    assert b is not None and b.token != a.token


def test_a_dead_owners_claim_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    path = md.Claim.path_of(tmp_path, "k")
    path.parent.mkdir(parents=True)
    body = {"host": md.socket.gethostname(), "time": time.time(), "token": "theirs"}
    path.write_text(json.dumps({**body, "pid": int(dead.stdout)}))
    c = md.Claim.acquire(tmp_path, "k")
    assert c is not None and json.loads(path.read_text())["pid"] == os.getpid()


def test_another_hosts_claim_is_stale_only_after_the_timeout(tmp_path):
    path = md.Claim.path_of(tmp_path, "k")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": time.time(), "token": "theirs"}))
    assert md.Claim.acquire(tmp_path, "k", timeout=60) is None  # fresh: its owner may be training
    old = time.time() - 61
    os.utime(path, (old, old))  # no heartbeat for longer than the timeout
    c = md.Claim.acquire(tmp_path, "k", timeout=60)
    assert c is not None and c.owned()
    # an unreadable claim (its writer died between creating and writing it) is stale after a grace time
    path2 = md.Claim.path_of(tmp_path, "j")
    path2.write_text("")
    assert md.Claim.acquire(tmp_path, "j") is None
    os.utime(path2, (old, old))
    assert md.Claim.acquire(tmp_path, "j") is not None


def test_an_owner_never_touches_a_claim_taken_over_from_it(tmp_path):
    a = md.Claim.acquire(tmp_path, "k")
    old = time.time() - 100
    os.utime(a.path, (old, old))
    a.refresh()  # the heartbeat renews its own claim
    assert time.time() - a.path.stat().st_mtime < 50
    a.path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": time.time(), "token": "theirs"}))
    assert not a.owned()
    os.utime(a.path, (old, old))
    a.refresh()
    a.release()
    assert a.path.exists() and a.path.stat().st_mtime == pytest.approx(old)
