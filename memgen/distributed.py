"""Sweeps on a Dask cluster: each planned batch is one task, results go through the run store.

:func:`sweep` plans the missing runs with :func:`memgen.store.plan_batches` exactly as the
in-process sweep does, submits each batch as one task to a ``dask.distributed`` client, and loads
every run from the store once the tasks are done. A task trains its batch with
:func:`memgen.train.train_batch` (through :meth:`RunStore.sweep`, so long runs checkpoint and
resume as in-process) and saves the runs into the store, which must therefore be one shared
filesystem, mounted at the same path on every worker.

Several workers (or several sweeps) writing one store
    Store entries are written atomically (:func:`memgen.checkpoint.atomic_save`). On top of that a
    worker *claims* a run before training it: ``<root>/claims/<key>.claim`` is created with
    ``O_CREAT | O_EXCL`` and holds the owner's host, pid and a timestamp. A run claimed by someone
    else is not trained again: the task trains what it could claim, then waits for the others to
    appear in the store. A claim is refreshed (its mtime) every :data:`HEARTBEAT` seconds while
    its run trains; it is stale, and is taken over, when its owner process is dead on this host or
    when it has not been refreshed for :data:`CLAIM_TIMEOUT` seconds (a worker on another host
    that died; the clocks of the nodes must agree to well within that). The in-process
    :meth:`RunStore.sweep` claims the same way when asked (``claims=True`` or
    ``MEMGEN_SHARED_STORE=1``: several processes on one machine, e.g. chapters executed side
    by side); otherwise it neither reads nor writes claims.

A worker that dies loses only its batch
    Dask reschedules a task whose worker died (up to ``distributed.scheduler.allowed-failures``
    times); the new attempt takes the dead worker's claims over and resumes from the batch's
    checkpoint when there is one. A batch that fails for good is reported in a
    :class:`~memgen.store.SweepError` after every other batch is stored; running the sweep again
    trains only what is missing.

``dask[distributed]`` is an optional dependency (``pip install 'memgen[distributed]'``); it is
imported only when a function here needs it, never by the training core.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .configs import ConfigError, RunConfig
from .store import RunStore, SweepError, default_store, plan_batches
from .train import Run

if TYPE_CHECKING:  # dask is optional: imported only when a function here needs it
    import distributed

logger = logging.getLogger(__name__)

#: Seconds without a heartbeat after which a claim counts as abandoned (its owner on another host died).
CLAIM_TIMEOUT = 600.0
#: Seconds between two refreshes of the claims a worker holds while it trains.
HEARTBEAT = 30.0
#: Seconds between two looks at the store while a task waits for runs claimed by another worker.
POLL = 1.0
#: A claim file that cannot be read (its writer died between creating and writing it) is stale after this.
_UNREADABLE_GRACE = 10.0
#: The lock guarding the take-over of one stale claim is held for milliseconds; older ones are left over.
_TAKEOVER_GRACE = 30.0


def _dask():
    """The ``distributed`` module, or a one-line error saying how to install it."""
    try:
        import distributed
    except ImportError as e:
        raise ConfigError("client / --scheduler / --workers need dask.distributed, which is not installed: "
                          "pip install 'memgen[distributed]' (or 'dask[distributed]')") from e
    return distributed


# ---------------------------------------------------------------------------------------------- claims
def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_claim(path: Path) -> tuple[dict | None, float] | None:
    """(owner info or None when unreadable, mtime) of a claim file; None when there is none."""
    try:
        mtime = path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        info = json.loads(text)
        if not isinstance(info, dict) or not {"host", "pid", "token"} <= info.keys():
            info = None
    except ValueError:
        info = None
    return info, mtime


def _identity(seen: tuple[dict | None, float]) -> tuple:
    """What tells two looks at a claim file apart: its token, or (unreadable) its mtime."""
    info, mtime = seen
    return ("token", info["token"]) if info is not None else ("unreadable", mtime)


def _stale(info: dict | None, mtime: float, timeout: float) -> bool:
    age = time.time() - mtime
    if info is None:
        return age > min(timeout, _UNREADABLE_GRACE)
    if info["host"] == socket.gethostname() and not _pid_alive(int(info["pid"])):
        return True
    return age > timeout


@dataclass
class Claim:
    """One worker's exclusive right to train one run: the file ``<root>/claims/<key>.claim``.

    Parameters
    ----------
    path : Path
        The claim file.
    token : str
        A random string written into the file, so that the owner never touches a claim that was
        taken over from it.
    """

    path: Path
    token: str

    @staticmethod
    def path_of(root: str | os.PathLike, key: str) -> Path:
        """The claim file of the run with ``key`` in the store at ``root``.

        Parameters
        ----------
        root : str or path-like
            The run store's root folder.
        key : str
            The run's :meth:`RunConfig.key`.

        Returns
        -------
        Path
            ``<root>/claims/<key>.claim``.
        """
        return Path(root) / "claims" / f"{key}.claim"

    @classmethod
    def _create(cls, path: Path) -> Claim | None:
        token = uuid.uuid4().hex
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
                           "token": token}).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(path, token)

    @classmethod
    def acquire(cls, root: str | os.PathLike, key: str, *, timeout: float = CLAIM_TIMEOUT) -> Claim | None:
        """Claim the run with ``key``, taking a stale claim over; None when someone else holds it.

        Parameters
        ----------
        root : str or path-like
            The run store's root folder.
        key : str
            The run's :meth:`RunConfig.key`.
        timeout : float, default=CLAIM_TIMEOUT
            Seconds without a heartbeat after which another host's claim is stale. A claim of a
            process that is no longer alive on this host is stale at once.

        Returns
        -------
        Claim or None
            The claim now held by this process, or None when a live owner holds it.
        """
        path = cls.path_of(root, key)
        for _ in range(3):  # the holder may release between our create and our look
            claim = cls._create(path)
            if claim is not None:
                return claim
            seen = _read_claim(path)
            if seen is None:
                continue
            if not _stale(*seen, timeout):
                return None
            return cls._take_over(path, seen, timeout)
        return None

    @classmethod
    def _take_over(cls, path: Path, seen: tuple[dict | None, float], timeout: float) -> Claim | None:
        """Replace the stale claim ``seen`` at ``path``, under a lock so that only one taker wins."""
        lock = path.with_name(path.name + ".takeover")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - lock.stat().st_mtime > _TAKEOVER_GRACE:  # its taker died
                    lock.unlink()
            return None
        try:
            now = _read_claim(path)  # again, under the lock: still the stale claim we saw?
            if now is not None:
                if _identity(now) != _identity(seen) or not _stale(*now, timeout):
                    return None
                path.unlink(missing_ok=True)
            return cls._create(path)
        finally:
            os.close(fd)
            lock.unlink(missing_ok=True)

    def owned(self) -> bool:
        """Whether the claim file is still this claim (not released, not taken over).

        Returns
        -------
        bool
            True when the file exists and holds this claim's token.
        """
        seen = _read_claim(self.path)
        return seen is not None and seen[0] is not None and seen[0]["token"] == self.token

    def refresh(self) -> None:
        """Renew the claim's timestamp (its file's mtime), if it is still ours."""
        if self.owned():
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)

    def release(self) -> None:
        """Remove the claim file, if it is still ours."""
        if self.owned():
            self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def _heartbeat(claims: list[Claim], every: float) -> Iterator[None]:
    """Refresh ``claims`` every ``every`` seconds from a background thread while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            for c in claims:
                c.refresh()

    thread = threading.Thread(target=beat, name="memgen-claim-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# ---------------------------------------------------------------------------------------------- one task
@dataclass
class BatchReport:
    """What one batch task did, as returned by the worker and logged by :func:`sweep`.

    Parameters
    ----------
    host : str
        The worker's host name.
    pid : int
        The worker's process id.
    trained : list of str, default=[]
        Keys of the runs this task trained and stored.
    waited : list of str, default=[]
        Keys of the runs another worker had claimed; this task waited for them.
    failed : list of Run, default=[]
        Runs that diverged here (not stored), with ``failed`` set.
    seconds : float, default=0.0
        Wall time of the task.
    """

    host: str
    pid: int
    trained: list[str] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)
    failed: list[Run] = field(default_factory=list)
    seconds: float = 0.0


def train_claimed(batch: list[RunConfig], root: str | os.PathLike, *, checkpoint_every: int | None = None,
                  timeout: float = CLAIM_TIMEOUT, poll: float = POLL, progress: bool | None = False) -> BatchReport:
    """Train and store the runs of ``batch`` that are not in the store, claiming each first.

    This is the task :func:`sweep` submits, one per batch. Runs another worker has claimed are
    not trained here; they are waited for (and trained here after all when their claim turns
    stale or is released without a stored run).

    Parameters
    ----------
    batch : list of RunConfig
        One batch of :func:`memgen.store.plan_batches`.
    root : str or path-like
        The run store's root folder (the same path on every worker).
    checkpoint_every : int or None, default=None
        As in :meth:`RunStore.sweep`.
    timeout : float, default=CLAIM_TIMEOUT
        Seconds without a heartbeat after which another host's claim is stale.
    poll : float, default=POLL
        Seconds between two looks at the store while waiting for runs claimed elsewhere.
    progress : bool or None, default=False
        Progress bar while training (see :func:`memgen.train.train_batch`).

    Returns
    -------
    BatchReport
        The runs trained, waited for and failed.
    """
    t0 = time.perf_counter()
    store = RunStore(root)
    report = BatchReport(socket.gethostname(), os.getpid())
    failed: set[RunConfig] = set()
    pending = [c for c in batch if c not in store]
    while pending:
        claims: dict[RunConfig, Claim] = {}
        try:
            for c in pending:
                claim = Claim.acquire(store.root, c.key(), timeout=timeout)
                if claim is not None:
                    claims[c] = claim
            mine = [c for c in pending if c in claims and c not in store]  # stored since we looked?
            if mine:
                with _heartbeat([claims[c] for c in mine], min(HEARTBEAT, timeout / 4)):
                    runs = store.sweep(mine, progress=progress, allow_failures=True,
                                       checkpoint_every=checkpoint_every, claims=False)
                for run in runs:
                    if run.failed:
                        report.failed.append(run)
                        failed.add(run.config)
                    else:
                        report.trained.append(run.config.key())
        finally:
            for claim in claims.values():
                claim.release()
        rest = [c for c in pending if c not in store and c not in failed and c not in mine]
        report.waited.extend(c.key() for c in rest if c.key() not in report.waited)
        if rest and not mine:
            time.sleep(poll)
        pending = rest
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------------------- sweep
def _bar(items, total: int, progress: bool | None):
    mode = os.environ.get("MEMGEN_PROGRESS", "auto")
    if progress is False or mode == "off":
        return items
    if mode == "text":
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(items, total=total, desc="batches", unit="batch")


def _describe(batch: list[RunConfig]) -> str:
    c = batch[0]
    return f"batch of {len(batch)} run(s) ({c.task} P={c.p} M={c.width} {c.steps} steps, first key {c.key()})"


def sweep(configs: list[RunConfig], *, client: Any, store: RunStore | None = None, progress: bool | None = None,
          allow_failures: bool = False, checkpoint_every: int | None = None) -> list[Run]:
    """Runs for many configs, training the missing ones on a Dask cluster, one task per batch.

    The missing runs are planned with :func:`memgen.store.plan_batches` (the batches of the
    in-process :meth:`RunStore.sweep`, so the numbers are the same); each batch is one task
    (:func:`train_claimed`) that stores its runs. Then every run is loaded from the store.

    Parameters
    ----------
    configs : list of RunConfig
        The runs wanted (duplicates allowed).
    client : distributed.Client
        A client of the cluster that trains, e.g. ``Client("tcp://host:8786")`` or
        ``Client(local_cluster(4))``.
    store : RunStore or None, default=None
        The store (default :func:`memgen.store.default_store`). Its root must be the same shared
        folder on every worker.
    progress : bool or None, default=None
        A progress bar of batches done (False: none; ``MEMGEN_PROGRESS=off`` also hides it).
    allow_failures : bool, default=False
        Return diverged runs with ``failed`` set instead of raising :class:`SweepError`.
    checkpoint_every : int or None, default=None
        As in :meth:`RunStore.sweep`.

    Returns
    -------
    list of Run
        One run per config, in the order of ``configs``.

    Raises
    ------
    SweepError
        When runs diverged (unless ``allow_failures``), or when a batch was lost (its worker
        died too often, or the task raised); every other batch is stored first, and running the
        sweep again trains only what is missing.
    """
    distributed = _dask()
    store = store if store is not None else default_store()
    root = str(Path(store.root).resolve())
    found, missing = store.split_stored(configs)
    batches = plan_batches(missing)
    futures = {}
    lost: list[str] = []
    failures: list[str] = []
    try:
        for batch in batches:
            fut = client.submit(train_claimed, batch, root, checkpoint_every=checkpoint_every,
                                key=f"memgen-batch-{uuid.uuid4().hex}", pure=False)
            futures[fut] = batch
        done = distributed.as_completed(list(futures))
        for n, fut in enumerate(_bar(done, len(futures), progress), 1):
            batch = futures[fut]
            try:
                rep: BatchReport = fut.result()
            except Exception as e:  # the worker died too often, or the task raised
                why = f"{type(e).__name__}: {e}"
                logger.warning("%s was lost: %s", _describe(batch), why)
                lost += [f"{c.label()} (key {c.key()}): its batch was lost ({why}); the other batches are "
                         "stored, run the sweep again to train what is missing" for c in batch]
                continue
            logger.info("batch %d/%d: %d run(s) trained on %s:%d in %.1f s, %d waited for, %d failed",
                        n, len(futures), len(rep.trained), rep.host, rep.pid, rep.seconds, len(rep.waited),
                        len(rep.failed), extra={"memgen_report": rep})
            for run in rep.failed:
                found[run.config] = run
                failures.append(run.failed)
    except BaseException:
        client.cancel(list(futures))
        raise
    lost_batches = {c for fut, batch in futures.items() if fut.status != "finished" for c in batch}
    for c in missing:
        if c in found or c in lost_batches:
            continue
        run = store.load(c)
        if run is None:
            lost.append(f"{c.label()} (key {c.key()}) was trained but is not in {root}: the run store must be "
                        "one shared folder at the same path on every worker")
        else:
            found[c] = run
    if lost:
        raise SweepError(lost + failures)
    if failures and not allow_failures:
        raise SweepError(failures)
    return [found[c] for c in configs]


# ---------------------------------------------------------------------------------------------- clusters
def _gpu_ids() -> list[str]:
    """The CUDA devices visible here, as CUDA_VISIBLE_DEVICES entries (empty without CUDA)."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        return ids[:n]
    return [str(i) for i in range(n)]


def local_cluster(n_workers: int | None = None, *, quiet: bool = False,
                  **cluster_kwargs: Any) -> distributed.LocalCluster:
    """Start a Dask ``LocalCluster`` of worker processes on this machine and print its dashboard link.

    Each worker is a process with one thread. When CUDA devices are present, worker ``i`` sees
    only GPU ``i mod #GPUs`` (``CUDA_VISIBLE_DEVICES`` set in its environment).

    Parameters
    ----------
    n_workers : int or None, default=None
        Number of worker processes (default: one per GPU, or one per CPU core without CUDA).
    quiet : bool, default=False
        Do not print the dashboard link.
    **cluster_kwargs
        Passed on to ``distributed.LocalCluster`` (e.g. ``dashboard_address=":0"``).

    Returns
    -------
    distributed.LocalCluster
        The started cluster; use it as a context manager, or ``close()`` it. Connect with
        ``distributed.Client(cluster)``.

    Raises
    ------
    ConfigError
        When ``n_workers`` is not a positive integer, or dask.distributed is not installed.
    """
    distributed = _dask()
    gpus = _gpu_ids()
    if n_workers is None:
        n_workers = len(gpus) or os.cpu_count() or 1
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ConfigError(f"workers={n_workers!r} is not allowed; it must be a positive integer")
    cluster_kwargs.setdefault("memory_limit", 1.0 / n_workers)
    cluster = distributed.LocalCluster(n_workers=0, threads_per_worker=1, processes=True, **cluster_kwargs)
    base = cluster.new_spec
    for i in range(n_workers):  # one spec per worker: its own CUDA_VISIBLE_DEVICES
        options = dict(base["options"])
        if gpus:
            options["env"] = {**(options.get("env") or {}), "CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]}
        cluster.worker_spec[i] = {"cls": base["cls"], "options": options}
    try:
        cluster.scale(n_workers)
        cluster.wait_for_workers(n_workers, timeout=300)
    except BaseException:
        cluster.close()
        raise
    if not quiet:
        where = f"{len(gpus)} GPU(s)" if gpus else "the CPU"
        link = cluster.dashboard_link
        try:
            import bokeh  # noqa: F401  (the dashboard's pages need it)
        except ImportError:
            link += " (its pages need bokeh: pip install 'bokeh>=3.1')"
        print(f"memgen: Dask LocalCluster of {n_workers} worker process(es) on {where}; "
              f"dashboard: {link}", file=sys.stderr)
    return cluster


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, *, timeout: float = 30.0) -> Iterator[Any]:
    """A Dask client of a running scheduler, or of a new :func:`local_cluster`; closed at the end.

    Parameters
    ----------
    scheduler : str or None, default=None
        Address of a running scheduler, e.g. ``tcp://host:8786``.
    workers : int or None, default=None
        Start a local cluster of this many worker processes instead.
    timeout : float, default=30.0
        Seconds to wait for the scheduler (and for the local workers to start).

    Yields
    ------
    distributed.Client
        Connected; the client (and the local cluster, if one was started) is closed on exit.

    Raises
    ------
    ConfigError
        When neither or both of ``scheduler`` and ``workers`` are given, the scheduler cannot be
        reached, or dask.distributed is not installed.
    """
    distributed = _dask()
    if (scheduler is None) == (workers is None):
        raise ConfigError("give exactly one of scheduler (an address such as tcp://host:8786) and workers "
                          "(a number of local worker processes)")
    cluster = None
    try:
        if scheduler is not None:
            try:
                client = distributed.Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError, ValueError) as e:
                raise ConfigError(f"scheduler={scheduler!r}: cannot connect ({e}); start one with "
                                  "`dask scheduler`, or use workers=N for a local cluster") from None
        else:
            cluster = local_cluster(workers)
            client = distributed.Client(cluster)
        with client:
            yield client
    finally:
        if cluster is not None:
            cluster.close()
