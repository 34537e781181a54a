"""The run store: trained runs on disk, keyed by the config's hash.

Each entry is one file ``<root>/<key[:2]>/<key>.pt``: a magic line, the SHA-256 of the payload,
then the payload (``torch.save`` of config, history, final weights and metadata). Files are
written to a temporary name in the same folder, flushed to disk and renamed into place
(``os.replace`` is atomic), so a crash never leaves a half entry, and two processes that train
the same config at once both end with the same single valid file. On load the checksum is
verified; a corrupt or truncated entry is reported, removed and recomputed, never used.

The default root is ``runs/`` in the project folder (git-ignored); the environment variable
``MEMGEN_STORE`` overrides it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from .checkpoint import StoreError, atomic_save, checked_load, remove_stale_temps
from .configs import RunConfig
from .model import Weights
from .train import DivergenceError, Run, batch_label, estimate_bytes, pad_key, pad_widths_up_to, train_batch

#: Upper bound on neurons (runs x width) trained as one batch, so that a long sweep stores
#: finished batches as it goes (an interrupted sweep keeps them).
MAX_BATCH_NEURONS = 16_384
MAX_BATCH_BYTES = 3 * 2**30


class SweepError(RuntimeError):
    """Some runs of a sweep failed; the others were stored.

    Parameters
    ----------
    failures : list of str
        One message per failed run; kept as the ``failures`` attribute.
    """

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(f"{len(failures)} run(s) failed:\n" + "\n".join(failures))


def default_root() -> Path:
    """``$MEMGEN_STORE`` or ``runs/`` next to the memgen package (the project folder).

    Returns
    -------
    pathlib.Path
        The default store root.
    """
    env = os.environ.get("MEMGEN_STORE")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "runs"


class RunStore:
    """Trained runs on disk. ``train_or_load`` returns the stored run or trains and stores it.

    Parameters
    ----------
    root : str or os.PathLike or None, default=None
        The store's folder; None means :func:`default_root`.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._tidied = False  # stale temporary files removed (once, on first use)

    def path(self, config: RunConfig) -> Path:
        """The entry file of ``config``, ``<root>/<key[:2]>/<key>.pt`` (it may not exist).

        Parameters
        ----------
        config : RunConfig
            The run.

        Returns
        -------
        pathlib.Path
            Where its entry is (or would be) stored.
        """
        key = config.key()
        return self.root / key[:2] / f"{key}.pt"

    def __contains__(self, config: RunConfig) -> bool:
        return self.path(config).exists()

    # -------------------------------------------------------------- single entries
    def load(self, config: RunConfig) -> Run | None:
        """The stored run of ``config``, or None (a damaged entry is reported and removed).

        Parameters
        ----------
        config : RunConfig
            The run to look up.

        Returns
        -------
        Run or None
            The stored run, or None when there is no (intact) entry; a damaged one is removed
            with a warning.
        """
        if not self._tidied:  # temporary files of saves killed midway (kill -9) are never entries
            self._tidied = True
            if self.root.is_dir():
                remove_stale_temps(self.root)
        path = self.path(config)
        if not path.exists():
            return None
        try:
            d = checked_load(path)
            _check_identity(path, d, config)
        except StoreError as e:
            warnings.warn(f"run store: {e}; removing it and training again", stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        return Run(config, d["history"], Weights.from_state(d["weights"]), d["meta"])

    def save(self, run: Run) -> Path:
        """Store a finished run (failed runs are refused).

        Parameters
        ----------
        run : Run
            A run with weights and no failure.

        Returns
        -------
        pathlib.Path
            The entry's file.

        Raises
        ------
        ValueError
            When the run failed or has no weights.
        """
        if run.failed or run.weights is None:
            raise ValueError(f"refusing to store a failed run: {run.failed}")
        path = self.path(run.config)
        atomic_save(path, {"config": run.config.identity(), "history": run.history,
                           "weights": run.weights.to_state(), "meta": run.meta})
        return path

    def split_stored(self, configs: list[RunConfig]) -> tuple[dict[RunConfig, Run], list[RunConfig]]:
        """The stored runs of ``configs`` and the (distinct) configs still to train.

        Parameters
        ----------
        configs : list of RunConfig
            Duplicates are looked up once.

        Returns
        -------
        found : dict of RunConfig to Run
            The runs already in the store.
        missing : list of RunConfig
            The others, in first-seen order.
        """
        found: dict[RunConfig, Run] = {}
        missing = []
        for c in dict.fromkeys(configs):
            run = self.load(c)
            if run is None:
                missing.append(c)
            else:
                found[c] = run
        return found, missing

    # -------------------------------------------------------------- training
    def train_or_load(self, config: RunConfig, *, progress: bool | None = None) -> Run:
        """The run of ``config``: from the store, or trained now and stored.

        Parameters
        ----------
        config : RunConfig
            The run.
        progress : bool or None, default=None
            Progress bar while training (see :func:`~memgen.train.train_batch`).

        Returns
        -------
        Run
            The stored or freshly trained run.

        Raises
        ------
        DivergenceError
            When training diverges (nothing is stored).
        """
        try:
            return self.sweep([config], progress=progress)[0]
        except SweepError as e:
            raise DivergenceError(e.failures[0]) from None

    def sweep(self, configs: list[RunConfig], *, progress: bool | None = None,
              allow_failures: bool = False, checkpoint_every: int | None = None,
              client: Any = None, claims: bool | None = None) -> list[Run]:
        """Runs for many configs, training only the missing ones, batched by shape.

        Missing runs are grouped by :meth:`RunConfig.batch_key` and trained in batches of at most
        :data:`MAX_BATCH_NEURONS` neurons; each finished batch is stored before the next starts,
        so an interrupted sweep keeps what finished. Long runs (>= 5000 steps) checkpoint every
        ``checkpoint_every`` steps (default steps // 10) and resume after an interruption.

        Failed (diverged) runs are not stored. They are reported together at the end with a
        :class:`SweepError`, unless ``allow_failures`` is set, in which case they are returned
        with ``failed`` set.

        Parameters
        ----------
        configs : list of RunConfig
            The runs; duplicates are trained once.
        progress : bool or None, default=None
            Progress bar while training (see :func:`~memgen.train.train_batch`).
        allow_failures : bool, default=False
            Return failed runs instead of raising :class:`SweepError`.
        checkpoint_every : int or None, default=None
            Steps between checkpoints; when given, batches of any length checkpoint.
        client : distributed.Client or None, default=None
            Train the batches on this Dask cluster instead, one task per batch
            (:func:`memgen.distributed.sweep`; the store must be a shared folder).
        claims : bool or None, default=None
            Claim each run before training it, so that several processes sweeping into this store
            at once (two chapters executing side by side) never train a run twice: a run another
            process has claimed is waited for and loaded (see :mod:`memgen.distributed`). None:
            when the environment variable ``MEMGEN_SHARED_STORE`` is ``1``.

        Returns
        -------
        list of Run
            One run per config, in the order of ``configs``.

        Raises
        ------
        SweepError
            When some runs failed and ``allow_failures`` is False (the others are stored).
        """
        if client is not None:  # on a Dask cluster (optional dependency, imported only here)
            from .distributed import sweep as distributed_sweep

            return distributed_sweep(configs, client=client, store=self, progress=progress,
                                     allow_failures=allow_failures, checkpoint_every=checkpoint_every)
        found, missing = self.split_stored(configs)
        if claims is None:
            claims = shared_store()
        if claims and missing:
            return self._sweep_claimed(configs, found, missing, progress, allow_failures, checkpoint_every)
        failures, done = [], 0
        batches = plan_batches(missing)
        for i, batch in enumerate(batches, 1):
            label = f"{done}/{len(missing)} runs done, batch {i}/{len(batches)}: {batch_label(batch)}"
            ck, every = None, 0
            steps = batch[0].steps
            if steps >= 5000 or checkpoint_every:
                every = checkpoint_every or steps // 10
                tag = hashlib.sha256(json.dumps([c.key() for c in batch]).encode()).hexdigest()[:20]
                ck = self.root / "checkpoints" / f"{tag}.pt"
            for run in train_batch(batch, progress=progress, checkpoint_path=ck, checkpoint_every=every, label=label):
                done += 1
                if run.failed:
                    failures.append(run.failed)
                else:
                    self.save(run)
                found[run.config] = run
        if failures and not allow_failures:
            raise SweepError(failures)
        return [found[c] for c in configs]

    def _sweep_claimed(self, configs, found, missing, progress, allow_failures, checkpoint_every) -> list[Run]:
        """:meth:`sweep` with a claim on every run trained here (other processes share the store)."""
        from .distributed import train_claimed

        failures = []
        for batch in plan_batches(missing):
            report = train_claimed(batch, self.root, checkpoint_every=checkpoint_every, progress=progress)
            for run in report.failed:
                failures.append(run.failed)
                found[run.config] = run
        for c in missing:
            if c not in found:
                found[c] = self.load(c)
        if failures and not allow_failures:
            raise SweepError(failures)
        return [found[c] for c in configs]


def shared_store() -> bool:
    """Whether sweeps claim their runs (``MEMGEN_SHARED_STORE=1``; ``0`` or unset: no).

    Returns
    -------
    bool
        True when several processes may sweep into one store at once.

    Raises
    ------
    ValueError
        When the variable is set to anything but 0 or 1.
    """
    raw = os.environ.get("MEMGEN_SHARED_STORE", "0").strip()
    if raw not in ("0", "1"):
        raise ValueError(f"MEMGEN_SHARED_STORE={raw!r} is not allowed; use 0 or 1")
    return raw == "1"


def _check_identity(path: Path, entry: object, config: RunConfig) -> None:
    """Raise :class:`StoreError` unless ``entry`` is the stored run of ``config`` (an entry copied
    or renamed onto another config's path is damage, not a cache hit)."""
    want = config.identity()
    have = entry.get("config") if isinstance(entry, dict) else None
    if not isinstance(have, dict):
        raise StoreError(f"{path}: not a run entry (no config)")
    if have != want:
        diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
        raise StoreError(f"{path}: holds the run of another config (differs in {', '.join(diff)})")


def plan_batches(configs: list[RunConfig], max_neurons: int = MAX_BATCH_NEURONS) -> list[list[RunConfig]]:
    """Group configs that can share a batch, in chunks small enough to store progressively.

    Parameters
    ----------
    configs : list of RunConfig
        The runs to train.
    max_neurons : int, default=MAX_BATCH_NEURONS
        Most neurons (runs × width) per batch; a smaller cap makes smaller checkpoints
        (≈ 4 kB per neuron at P = 113: weights and AdamW state in float32).

    Returns
    -------
    list of list of RunConfig
        Batches of configs with one :meth:`~memgen.configs.RunConfig.batch_key`, each of at most
        ``max_neurons`` neurons and :data:`MAX_BATCH_BYTES` estimated bytes (a single
        run may exceed them). Where :func:`~memgen.train.pad_widths_up_to` allows (by default on
        CUDA, up to width 1025), runs that differ only in width share batches, widest first, each
        batch padded to its widest run.
    """
    groups: dict[tuple, list[RunConfig]] = defaultdict(list)
    for c in configs:
        padded = pad_key(c) if c.width <= pad_widths_up_to(c.device) else None
        groups[padded or c.batch_key()].append(c)
    batches = []
    for group in groups.values():
        chunk: list[RunConfig] = []
        for c in sorted(group, key=lambda c: -c.width):  # widest first: a chunk's width is its first run's
            if chunk and ((len(chunk) + 1) * chunk[0].width > max_neurons
                          or estimate_bytes(chunk + [c]) > MAX_BATCH_BYTES):
                batches.append(chunk)
                chunk = []
            chunk.append(c)
        batches.append(chunk)
    return batches


_DEFAULT: RunStore | None = None


def default_store() -> RunStore:
    """The store at :func:`default_root` (re-read when ``MEMGEN_STORE`` changes).

    Returns
    -------
    RunStore
        The shared default store.
    """
    global _DEFAULT
    if _DEFAULT is None or _DEFAULT.root != default_root():
        _DEFAULT = RunStore()
    return _DEFAULT


def train_or_load(config: RunConfig, *, progress: bool | None = None) -> Run:
    """:meth:`RunStore.train_or_load` on the default store.

    Parameters
    ----------
    config : RunConfig
        The run.
    progress : bool or None, default=None
        Progress bar while training.

    Returns
    -------
    Run
        The stored or freshly trained run.
    """
    return default_store().train_or_load(config, progress=progress)


def sweep(configs: list[RunConfig], *, progress: bool | None = None,
          allow_failures: bool = False, client: Any = None) -> list[Run]:
    """:meth:`RunStore.sweep` on the default store.

    Parameters
    ----------
    configs : list of RunConfig
        The runs.
    progress : bool or None, default=None
        Progress bar while training.
    allow_failures : bool, default=False
        Return failed runs instead of raising :class:`SweepError`.
    client : distributed.Client or None, default=None
        Train the missing batches on this Dask cluster (see :func:`memgen.distributed.sweep`).

    Returns
    -------
    list of Run
        One run per config, in order.
    """
    return default_store().sweep(configs, progress=progress, allow_failures=allow_failures, client=client)
