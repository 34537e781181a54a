"""Results that ship with the repository: what memgen trained (e.g. on a GPU at the paper's
scale), in a compact, checksummed form that the book reads without training.

Layout, under ``results/<profile>/`` at the top of the project::

    runs/<key>.json         one record per two-layer run (config, provenance, history, every summary metric)
    weights/<key>.pt        float16 weights, only for the runs a chapter inspects neuron by neuron
    transformer/<key>.json  one record per Transformer run of chapter 9 (``"kind": "transformer"``)
    images/<key>.json       one record per image run of chapter 10 (``"kind": "images"``)

A record file is ``{"format": 1, "sha256": <hex>, "record": {...}}`` where the digest is taken
over the record's canonical JSON (sorted keys, no spaces); a file whose digest does not match is
reported by :class:`ResultsError` naming the file. Weight files use the run store's checked
format (:mod:`memgen.checkpoint`).

``python -m memgen produce --profile paper --device cuda`` trains (through the run store, so it is
resumable) every run of :func:`plan` that has no record yet and writes its record;
``python -m memgen results --profile paper --json`` prints them. A record's flat keys are the
config fields plus ``train_acc``, ``clean_acc``, ``noisy_acc``, ``noisy_true_acc``, ``test_acc``,
``G_*`` and ``R_*`` (the same under frequency filtration), ``swap_<activation>_test_acc`` and
``swap_<activation>_noisy_acc``, ``phase_error``, ``n_train``, ``n_test``, ``n_noisy``, the per-run analyses of
:mod:`memgen.analysis` (every run: neuron, control and mirror records; runs at the profile's
default width at its α and at :data:`PARTITION_NOISES`: the partition record); the
nested ``history`` and ``provenance`` (profile, engine version, device, torch version, seconds,
date).

A Transformer record (:func:`transformer_record_of`) has the :class:`~memgen.transformer.TransformerConfig`
fields, ``kind``, the accuracies before filtration (``train_acc``, ``clean_acc``, ``noisy_acc``,
``noisy_true_acc``, ``test_acc``) and after it at the profile's ``n_keep`` (the same names with an
``ff_`` prefix), ``kept``, the ``n_keep`` sweep ``keep_table``, the power of ``W_U`` per frequency
``power``, the sizes, ``history`` and ``provenance``. An image record (:func:`image_record_of`) has the
:class:`~memgen.images.ImageConfig` fields, ``kind``, ``data`` (``digits`` or ``mnist``: the paper's
scale is MNIST, which ``produce`` reads from ``mnist_path``), ``source``, the sizes, the per-epoch
``history`` and ``provenance``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import numbers
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from . import experiments
from . import images as img
from . import transformer as tfm
from .analysis import control_record, mirror_record, neuron_record, partition_record
from .checkpoint import StoreError, atomic_save, checked_load
from .configs import ENGINE_VERSION, ConfigError, RunConfig, get_profile, validate_noise, validate_width
from .diagnostics import available, default_series_width, diagnostic_record, series_steps
from .experiments import summarize
from .metrics import METRICS, json_safe
from .model import Weights
from .optimizers import comparison_configs
from .phases import phase_configs, phase_record, prune_curves
from .progress import measured_runs, progress_configs
from .store import MAX_BATCH_NEURONS, RunStore, default_store, plan_batches
from .train import Run

FORMAT = 1
#: The flat keys every record has besides the config fields (``memgen results --json``).
RECORD_KEYS = ("train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc", "G_test_acc", "G_noisy_acc",
               "G_clean_acc", "G_noisy_true_acc", "R_test_acc", "R_noisy_acc", "R_clean_acc", "R_noisy_true_acc",
               "phase_error", "n_train", "n_test", "n_noisy")
GROUPS = ("grid", "activations", "weight_decay", "tasks", "noise_first", "tied", "optimizers", "series", "phases",
          "progress", "transformer", "images")
#: Groups whose records also carry chapters 14-16's numbers (:func:`memgen.diagnostics.diagnostic_record`).
DIAGNOSED = ("grid", "series")
#: Record kinds and their folders under ``results/<profile>/``.
KINDS = {"runs": "runs", "transformer": "transformer", "images": "images"}
Config = RunConfig | tfm.TransformerConfig | img.ImageConfig
#: Every planned group is trained over these seeds (the book judges differences over three).
PLAN_SEEDS = (0, 1, 2)


class ResultsError(RuntimeError):
    """A shipped results file is damaged or does not match what was asked for."""


def default_root() -> Path:
    """``results/`` in the project folder (``$MEMGEN_RESULTS`` overrides it).

    Returns
    -------
    pathlib.Path
        The default results root.
    """
    env = os.environ.get("MEMGEN_RESULTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "results"


# ---------------------------------------------------------------------------- what to produce
def plan(profile: str, groups: Iterable[str] = GROUPS) -> dict[str, list[Config]]:
    """The runs the chapters read at ``profile``, by group (the chapters' default parameters).

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}
        The profile whose defaults and grids are used.
    groups : iterable of str, default=GROUPS
        Which groups to plan, each over :data:`PLAN_SEEDS`:

        - ``grid``: ReLU, addition, every width x noise (chapters 2, 3, 5, 6);
        - ``activations``: quadratic and GeLU at every other width and the highest noise
          (chapter 2);
        - ``weight_decay``: the first four widths at the highest noise with the profile's weight
          decay tripled (chapter 2; the profile's own is in ``grid``);
        - ``tasks``: subtraction and multiplication at the default width and every noise
          (chapters 4, 5, 6);
        - ``noise_first``: chapter 3's early-phase runs (Adam, no weight decay, 500 steps,
          α = 0.3, every width);
        - ``tied``: U = V with wrong and with symmetric noise at every other width, α = 0.4
          (chapter 7; its untied runs are in ``grid``);
        - ``optimizers``: AdamW, Adam, Muon and SGD side by side at α = 0.4
          (chapter 11; :func:`memgen.optimizers.comparison_configs`);
        - ``series``: the runs of chapters 14 and 16 "over training": the middle width at the lowest
          and at the highest α, first seed, stopped at :func:`memgen.diagnostics.series_steps`
          (their full-length runs are in ``grid``);
        - ``phases``: chapter 12's Doshi et al. grid (weight decay x corruption, first seed) and
          its pruning cell over every seed (:func:`memgen.phases.phase_configs`);
        - ``progress``: chapter 13's clean and noisy runs per seed, measured at snapshots taken
          during training (:func:`memgen.progress.measured_runs`);
        - ``transformer``: chapter 9's one-layer Transformers (its α grid at the first seed, every
          seed at its main α; :class:`memgen.transformer.TransformerConfig`, not RunConfig);
        - ``images``: chapter 10's image networks (the paper's two α, every seed of the profile;
          :class:`memgen.images.ImageConfig`), on the data of :data:`memgen.images.SHIPPED_DATA`.

    Returns
    -------
    dict of str to list of RunConfig, TransformerConfig or ImageConfig
        The planned configs per group, in a stable order.
    """
    prof = get_profile(profile)
    groups = list(groups)
    for g in groups:
        if g not in GROUPS:
            raise ConfigError(f"groups={g!r} is not allowed; choose from {', '.join(GROUPS)}")
    out: dict[str, list[Config]] = {}
    w, seeds, noises = prof.width, PLAN_SEEDS, prof.noises
    heavy, every_other = max(noises), prof.widths[::2]
    make = {
        "grid": lambda: [prof.config(width=m, noise=a, seed=s) for m in prof.widths for a in noises for s in seeds],
        "activations": lambda: [prof.config(width=m, noise=heavy, activation=act, seed=s)
                                for act in ("quadratic", "gelu") for m in every_other for s in seeds],
        "weight_decay": lambda: [prof.config(width=m, noise=heavy, weight_decay=3 * prof.base["weight_decay"],
                                             seed=s) for m in prof.widths[:4] for s in seeds],
        "tasks": lambda: [prof.config(width=w, noise=a, task=t, seed=s)
                          for t in ("sub", "mul") for a in noises for s in seeds],
        "noise_first": lambda: [prof.config(width=m, noise=0.3, steps=500, optimizer="adam", weight_decay=0.0,
                                            seed=s) for m in prof.widths for s in seeds],
        "tied": lambda: [prof.config(width=m, noise=0.4, tied=True, noise_mode=mode, seed=s)
                         for mode in ("wrong", "symmetric") for m in every_other for s in seeds],
        "optimizers": lambda: [c for cs in comparison_configs(profile, seeds=seeds).values() for c in cs],
        "transformer": lambda: tfm.sweep_configs(tfm.profile_config(profile), None, list(seeds), profile),
        "images": lambda: img.plan_configs(profile),
        "series": lambda: _series_configs(profile),
        "progress": lambda: progress_configs(profile, seeds),
        "phases": lambda: list(dict.fromkeys(sum(phase_configs(profile, seeds), []))),
    }
    for g in GROUPS:
        if g in groups:
            out[g] = make[g]()
    return out


def _all_valid(values: list[Any], check: Callable[[Any], Any]) -> bool:
    """True when ``values`` is not empty and ``check`` accepts each of them."""
    try:
        for v in values:
            check(v)
    except ConfigError:
        return False
    return bool(values)


def select(planned: dict[str, list[Config]], widths: Iterable[int] | None = None,
           noises: Iterable[float] | None = None) -> dict[str, list[Config]]:
    """The planned runs of the given widths and noise levels only (the headline cells first, when
    a lent machine has minutes rather than hours).

    Parameters
    ----------
    planned : dict of str to list
        Runs by group, as from :func:`plan`.
    widths : iterable of int or None, default=None
        Keep the runs of these widths; runs without a width (Transformers, image networks) are
        kept. None: every width.
    noises : iterable of float or None, default=None
        Keep the runs at these α. None: every α.

    Returns
    -------
    dict of str to list
        The same groups, each with the runs kept (a group left empty is dropped).

    Raises
    ------
    ConfigError
        When a width is not an integer >= 1, an α is not in [0, 1), or nothing planned is kept.
    """
    ws = None if widths is None else list(widths)
    ns = None if noises is None else list(noises)
    if ws is not None and not _all_valid(ws, validate_width):
        raise ConfigError(f"widths={ws!r} is not allowed; give one or more integers >= 1")
    if ns is not None and not _all_valid(ns, validate_noise):
        raise ConfigError(f"noises={ns!r} is not allowed; give one or more α in [0, 1)")

    def keep(c: Config) -> bool:
        width = getattr(c, "width", None)
        return ((ws is None or width is None or width in ws)
                and (ns is None or any(abs(c.noise - a) < 1e-9 for a in ns)))

    out = {g: [c for c in cs if keep(c)] for g, cs in planned.items()}
    out = {g: cs for g, cs in out.items() if cs}
    if not out:
        have_w = sorted({c.width for cs in planned.values() for c in cs if getattr(c, "width", None)})
        have_a = sorted({c.noise for cs in planned.values() for c in cs})
        raise ConfigError(f"widths={ws!r}, noises={ns!r} select no planned run; planned widths {have_w}, "
                          f"α {have_a}")
    return out


def _series_configs(profile: str) -> list[RunConfig]:
    """Chapters 14 and 16's runs over training at their defaults (as their chapters build them)."""
    S = experiments.setup(profile, task="add", widths=None, noises=None, seeds=list(PLAN_SEEDS), width=None)
    w = default_series_width(S)
    return [S.config(width=w, noise=a, seed=PLAN_SEEDS[0], steps=s)
            for a in dict.fromkeys([min(S.noises), max(S.noises)]) for s in series_steps(S.base.steps)]


def inspected(profile: str) -> list[RunConfig]:
    """Runs whose weights ship too: the ones chapters 4 and 6 read neuron by neuron.

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}
        The profile.

    Returns
    -------
    list of RunConfig
        The default width and first seed at noise 0.2 and at the profile's default noise.
    """
    prof = get_profile(profile)
    return [prof.config(width=prof.width, noise=a, seed=prof.seeds[0]) for a in (0.2, prof.noise)]


# ---------------------------------------------------------------------------- records
def _provenance(profile: str, meta: dict[str, Any], version: int, engine: str | None = None) -> dict[str, Any]:
    """A record's ``provenance``: the profile, the engine and its version, and the run's ``meta``
    (device, torch, seconds, batch size and, where the meta says so, ``compiled``: whether the
    compiled step was in use at the end of the batch), dated today; on a GPU also the card's name
    (``card``)."""
    dev = str(meta.get("device"))
    card = {"card": torch.cuda.get_device_name(torch.device(dev))} if dev.startswith("cuda") else {}
    out = {"profile": profile, "engine_version": version, "device": meta.get("device"), **card,
           "torch": meta.get("torch", str(torch.__version__)), "seconds": meta.get("seconds"),
           "batch_size": meta.get("batch_size", 1), "date": datetime.date.today().isoformat()}
    if "compiled" in meta:
        out["compiled"] = bool(meta["compiled"])
    return {**out, "engine": engine} if engine else out


def record_of(run: Run, profile: str) -> dict[str, Any]:
    """The shipped record of a finished run: flat config + metrics, history and provenance.

    Parameters
    ----------
    run : Run
        A finished run (with weights).
    profile : str
        The profile it was produced under (provenance).

    Returns
    -------
    dict
        JSON-ready; see the module docstring for its keys.
    """
    s = summarize(run)
    rec: dict[str, Any] = {**run.config.identity(), "key": run.config.key()}
    rec.update({k: s[k] for k in METRICS})
    for part in ("G", "R"):
        rec.update({f"{part}_{k}": v for k, v in s["ff"][part].items()})
    for act, acc in s["act_swap"].items():
        rec[f"swap_{act}_test_acc"] = acc
    for act, acc in s.get("act_swap_noisy", {}).items():
        rec[f"swap_{act}_noisy_acc"] = acc
    rec["phase_error"] = s["phase_error"]
    # the chapters' per-run analyses, so that they judge shipped runs with the same numbers
    extras = {**neuron_record(run), **control_record(run), **mirror_record(run)}
    if wants_partition(run.config, profile):
        extras.update({k: v for k, v in partition_record(run).items() if k not in rec})
    rec.update(extras)
    d = run.data
    rec.update(n_train=int(len(d.train_idx)), n_test=int(len(d.test_idx)), n_noisy=int(d.noisy.sum()))
    rec["history"] = run.history
    rec["provenance"] = _provenance(profile, run.meta, ENGINE_VERSION)
    return json_safe(rec)


def transformer_record_of(run: tfm.TransformerRun, profile: str) -> dict[str, Any]:
    """The shipped record of a trained Transformer (chapter 9): config, accuracies before and after
    filtration, the ``n_keep`` sweep, the power of ``W_U``, history and provenance.

    Parameters
    ----------
    run : TransformerRun
        A trained run.
    profile : str
        The profile it was produced under (provenance; its ``n_keeps`` are swept).

    Returns
    -------
    dict
        JSON-ready; see the module docstring for its keys.
    """
    c, d = run.config, run.data
    ff = run.filtration()
    n_keeps = sorted({k for k in (*tfm.PROFILES[profile]["n_keeps"], c.n_keep, c.n_freq) if 1 <= k <= c.n_freq})
    rec: dict[str, Any] = {**c.identity(), "key": c.key(), "kind": "transformer", "n_keep": c.n_keep,
                           "keep_dc": c.keep_dc, "n_freq": c.n_freq, **ff["before"],
                           **{f"ff_{k}": v for k, v in ff["after"].items()}, "kept": ff["kept"],
                           "keep_table": tfm.keep_table([run], n_keeps),
                           "power": tfm.unembed_spectrum(run.params["W_U"].float().numpy(), c.task).tolist(),
                           "n_train": int(len(d.train_idx)), "n_test": int(len(d.test_idx)),
                           "n_noisy": int(d.noisy.sum()), "history": run.history}
    rec["provenance"] = _provenance(profile, run.meta, tfm.TRANSFORMER_VERSION, "transformer")
    return json_safe(rec)


def image_record_of(run: img.ImageRun, data: str, profile: str) -> dict[str, Any]:
    """The shipped record of a trained image network (chapter 10): config, data, sizes, the
    per-epoch history and provenance.

    Parameters
    ----------
    run : ImageRun
        A trained run.
    data : {"digits", "mnist"}
        The data set it was trained on (part of the record's key).
    profile : str
        The profile it was produced under (provenance).

    Returns
    -------
    dict
        JSON-ready; see the module docstring for its keys.
    """
    m = run.meta
    rec: dict[str, Any] = {**run.config.identity(), "key": img.record_key(run.config, data), "kind": "images",
                           "data": data, "source": run.source, "n_train": m["n_train"], "n_test": m["n_test"],
                           "n_noisy": m["n_noisy"], "n_classes": int(m.get("n_classes", 10)), "history": run.history}
    rec["provenance"] = _provenance(profile, run.meta, img.IMAGES_VERSION, "images")
    return json_safe(rec)


def phase_extras(run: Run, pruned: bool) -> dict[str, Any]:
    """Chapter 12's numbers for a run of the ``phases`` group, added to its record.

    Parameters
    ----------
    run : Run
        A finished run.
    pruned : bool
        Whether it is a run of the pruning cell (its IPR pruning curves are added too).

    Returns
    -------
    dict
        ``doshi``: the accuracies and counts of :func:`memgen.phases.phase_record` (changed labels
        only counted as corrupted) with ``phase`` and ``phase_note``; ``prune``: the curves of
        :func:`memgen.phases.prune_curves` (pruning cell only).
    """
    keys = ("test_acc", "train_acc", "clean_acc", "mem_acc", "inv_acc", "n_test", "n_changed", "n_clean", "phase",
            "phase_note")
    rec = phase_record(run)
    out: dict[str, Any] = {"doshi": {k: rec[k] for k in keys}}
    if pruned:
        out["prune"] = prune_curves(run)
    return json_safe(out)


def _kind(config: Config) -> str:
    if isinstance(config, tfm.TransformerConfig):
        return "transformer"
    return "images" if isinstance(config, img.ImageConfig) else "runs"


def _digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Results:
    """The shipped results of one profile (a folder ``<root>/<profile>``).

    Parameters
    ----------
    profile : str
        The profile name (the folder name).
    root : str or path-like or None, default=None
        The results root; None means :func:`default_root`.
    """

    def __init__(self, profile: str, root: str | os.PathLike | None = None) -> None:
        get_profile(profile)
        self.profile = profile
        self.dir = (Path(root) if root is not None else default_root()) / profile

    def _run_path(self, key: str, kind: str = "runs") -> Path:
        return self.dir / KINDS[kind] / f"{key}.json"

    def _weights_path(self, key: str) -> Path:
        return self.dir / "weights" / f"{key}.pt"

    def key_of(self, config: Config) -> str:
        """The record name of ``config`` (an image run's also names this profile's data set).

        Parameters
        ----------
        config : RunConfig, TransformerConfig or ImageConfig
            A planned run.

        Returns
        -------
        str
            Its key.
        """
        if isinstance(config, img.ImageConfig):
            return img.record_key(config, img.SHIPPED_DATA[self.profile])
        return config.key()

    def __contains__(self, config: Config) -> bool:
        return self._run_path(self.key_of(config), _kind(config)).exists()

    def write(self, record: dict[str, Any], weights: Weights | None = None) -> Path:
        """Write one record (and optionally float16 weights) atomically.

        Parameters
        ----------
        record : dict
            From :func:`record_of`, :func:`transformer_record_of` (written under ``transformer/``) or
            :func:`image_record_of` (under ``images/``).
        weights : Weights or None, default=None
            Shipped too when given (stored as float16).

        Returns
        -------
        Path
            The record file.
        """
        path = self._run_path(record["key"], record.get("kind", "runs"))
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = json.dumps({"format": FORMAT, "sha256": _digest(record), "record": record}, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(blob + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if weights is not None:
            state = {k: (v.half() if isinstance(v, torch.Tensor) else v) for k, v in weights.to_state().items()}
            atomic_save(self._weights_path(record["key"]), state)
        return path

    def read(self, path: Path) -> dict[str, Any]:
        """One record file, verified; raises :class:`ResultsError` naming a damaged file.

        Parameters
        ----------
        path : pathlib.Path
            A record file under ``runs/``.

        Returns
        -------
        dict
            The record.

        Raises
        ------
        ResultsError
            When the file is unreadable, of another format, or fails its checksum.
        """
        try:
            doc = json.loads(path.read_text())
            rec = doc["record"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ResultsError(f"{path}: not a memgen results file ({e.__class__.__name__}: {e})") from None
        if doc.get("format") != FORMAT:
            raise ResultsError(f"{path}: format {doc.get('format')!r} is not supported (expected {FORMAT})")
        if _digest(rec) != doc.get("sha256"):
            raise ResultsError(f"{path}: checksum mismatch (the file was edited or damaged); "
                               f"produce it again with `python -m memgen produce --profile {self.profile}`")
        return rec

    def records(self, kind: str = "runs") -> list[dict[str, Any]]:
        """Every shipped record of one kind of this profile.

        Parameters
        ----------
        kind : {"runs", "transformer", "images"}, default="runs"
            Two-layer runs, chapter 9's Transformers or chapter 10's image networks.

        Returns
        -------
        list of dict
            The verified records (two-layer runs sorted by task, activation, tied, noise mode,
            width, noise, seed; Transformers by task, noise, seed; images by noise, seed); empty
            when none were produced.
        """
        if kind not in KINDS:
            raise ConfigError(f"kind={kind!r} is not allowed; choose one of {', '.join(KINDS)}")
        folder = self.dir / KINDS[kind]
        recs = [self.read(p) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
        if kind == "transformer":
            return sorted(recs, key=lambda r: (r["task"], r["noise"], r["seed"]))
        if kind == "images":
            return sorted(recs, key=lambda r: (r["data"], r["noise"], r["seed"]))
        order = lambda r: (r["task"], r["activation"], r["tied"], r["noise_mode"], r["width"], r["noise"], r["seed"])  # noqa: E731
        return sorted(recs, key=order)

    def record(self, config: Config) -> dict[str, Any] | None:
        """The record of ``config``, or None when it was not shipped.

        Parameters
        ----------
        config : RunConfig, TransformerConfig or ImageConfig
            The run.

        Returns
        -------
        dict or None
            The verified record.
        """
        path = self._run_path(self.key_of(config), _kind(config))
        return self.read(path) if path.exists() else None

    def weights(self, config: RunConfig) -> Weights | None:
        """The shipped weights of ``config`` (float32 again), or None when not shipped.

        Parameters
        ----------
        config : RunConfig
            The run.

        Returns
        -------
        Weights or None
            The weights converted back to float32.

        Raises
        ------
        ResultsError
            When the weight file is damaged.
        """
        path = self._weights_path(config.key())
        if not path.exists():
            return None
        try:
            state = checked_load(path)
        except StoreError as e:
            raise ResultsError(str(e)) from None
        return Weights.from_state({k: (v.float() if isinstance(v, torch.Tensor) else v) for k, v in state.items()})


def load(profile: str, root: str | os.PathLike | None = None, kind: str = "runs") -> list[dict[str, Any]]:
    """Every shipped record of ``profile`` (an empty list when none was produced).

    Parameters
    ----------
    profile : str
        ``test``, ``book`` or ``paper``.
    root : str or path-like or None, default=None
        The results root; None means :func:`default_root`.
    kind : {"runs", "transformer", "images"}, default="runs"
        Two-layer runs, chapter 9's Transformers or chapter 10's image networks.

    Returns
    -------
    list of dict
        The verified records, sorted as by :meth:`Results.records`.
    """
    return Results(profile, root).records(kind)


def provenance(records: list[dict[str, Any]]) -> str:
    """One line saying where ``records`` come from: profile, P, steps, devices (with how many runs
    each trained, when there are several), torch, seeds, and how many runs used the compiled step
    (when any did).

    Parameters
    ----------
    records : list of dict
        Records as from :func:`load`.

    Returns
    -------
    str
        The line (``no shipped results`` when ``records`` is empty).
    """
    if not records:
        return "no shipped results"
    pv = [r["provenance"] for r in records]
    machines: dict[tuple[str, str], list[str]] = {}  # (device, card): torch version of each run
    for p in pv:
        machines.setdefault((str(p["device"]), p.get("card") or ""), []).append(str(p["torch"]))
    if len(machines) == 1:
        (dev, card), torches = next(iter(machines.items()))
        where = f"{dev}{f' ({card})' if card else ''} with torch {', '.join(sorted(set(torches)))}"
    else:  # which machine trained how many
        where = " and ".join(f"{dev}{f' on an {card}' if card else ''} ({len(t)} runs, torch "
                             f"{', '.join(sorted(set(t)))})" for (dev, card), t in sorted(machines.items()))
    steps = sorted({r["steps"] if "steps" in r else r["epochs"] for r in records})
    seeds = sorted({r["seed"] for r in records})
    dates = sorted({p["date"] for p in pv})
    engine = {"transformer": "Transformer engine", "images": "image engine"}.get(pv[0].get("engine"), "engine")
    ps = sorted({r["p"] for r in records if "p" in r})
    what = (f"{records[0]['source']}, {' or '.join(map(str, steps))} full-batch epochs" if "source" in records[0]
            else f"P = {' or '.join(map(str, ps))}, {' or '.join(map(str, steps))} steps")
    n_compiled = sum(bool(p.get("compiled")) for p in pv)
    compiled = f", {n_compiled} with the compiled step" if n_compiled else ""
    return (f"profile {pv[0]['profile']}: {what}, "
            f"seeds {seeds}, {len(records)} runs trained by memgen ({engine} {pv[0]['engine_version']}{compiled}) on "
            f"{where}, "
            f"{dates[0] if dates[0] == dates[-1] else f'{dates[0]}–{dates[-1]}'}")


#: the label-noise levels, besides the profile's own α, whose runs at the profile's width and length
#: also get the partition record (chapter 6): at α = 0.8 the raw network is at chance and the
#: partition has little to find, at α = 0.2 it still generalizes in part
PARTITION_NOISES = (0.2,)


def wants_partition(config: Config, profile: str) -> bool:
    """Whether the record of ``config`` at ``profile`` carries the partition record (chapter 6).

    Parameters
    ----------
    config : RunConfig or other config
        The run's config (only an untied two-layer run at the profile's width and steps qualifies).
    profile : str
        The profile the record is made for.

    Returns
    -------
    bool
        True at the profile's α and at :data:`PARTITION_NOISES`.
    """
    if not isinstance(config, RunConfig):
        return False
    prof = get_profile(profile)
    noises = (prof.noise, *PARTITION_NOISES)
    return (config.width == prof.width and config.steps == prof.base["steps"] and not config.tied
            and any(abs(config.noise - a) < 1e-9 for a in noises))


def _complete(res: Results, group: str, config: Config, pruned: set[str], have: dict[str, bool]) -> bool:
    """Whether ``config`` has a record with every number its group records (a record made by older
    code, or without the packages of ``have`` (:func:`memgen.diagnostics.available`) that are
    installed now, is produced again)."""
    if config not in res:
        return False
    if group not in (*DIAGNOSED, "phases", "progress"):
        return True
    rec = res.record(config)
    if group == "phases":
        return "doshi" in rec and (config.key() not in pruned or "prune" in rec)
    if group == "progress":
        return "key_power" in rec.get("measured", {})  # measured before version 3: again
    return ("ncc_test_acc" in rec and ("h1_mean" in rec or not have["topology"])
            and ("pl_p_U" in rec or not have["powerlaw"])
            and ("strength_G_test" in rec or not wants_partition(config, res.profile)))


def to_produce(profile: str, planned: dict[str, list[Config]], root: str | os.PathLike | None = None
               ) -> dict[str, list[Config]]:
    """The planned runs that :func:`produce` would train now, by group: those with no record, or
    with a record that lacks numbers its group records now (what ``produce --dry-run`` lists).

    Parameters
    ----------
    profile : str
        The profile of the results.
    planned : dict of str to list
        Group: configs, as :func:`plan` (or :func:`select`) gives them.
    root : str or path-like or None, default=None
        The results root; None means :func:`default_root`.

    Returns
    -------
    dict of str to list
        The same groups, each with the configs still to produce, in their order.
    """
    res = Results(profile, root)
    pruned = {c.key() for c in phase_configs(profile)[1]}
    have = available()
    return {g: [c for c in cs if not _complete(res, g, c, pruned, have)] for g, cs in planned.items()}


def check_produce(profile: str, *, max_minutes: float | None = None,
                  mnist_path: str | os.PathLike | None = None,
                  batch_neurons: int = MAX_BATCH_NEURONS) -> None:
    """Refuse :func:`produce`'s arguments that are not allowed, before anything is trained or listed.

    The command line's ``produce --dry-run`` calls it too, so a plan is printed only for
    arguments that a real run would accept.

    Parameters
    ----------
    profile : str
        A profile name (:data:`memgen.configs.PROFILES`).
    max_minutes : float or None, default=None
        As :func:`produce`'s: a number > 0, or None.
    mnist_path : str or path-like or None, default=None
        As :func:`produce`'s: a folder holding MNIST's IDX files, only at a profile whose shipped
        images are MNIST.
    batch_neurons : int, default=MAX_BATCH_NEURONS
        As :func:`produce`'s: an integer from 1 to :data:`~memgen.store.MAX_BATCH_NEURONS`.

    Raises
    ------
    ConfigError
        One line naming the first argument that is not allowed.
    """
    get_profile(profile)
    if (isinstance(batch_neurons, bool) or not isinstance(batch_neurons, numbers.Integral)
            or not 1 <= batch_neurons <= MAX_BATCH_NEURONS):
        raise ConfigError(f"batch_neurons={batch_neurons!r} is not allowed; it must be an integer from 1 to "
                          f"{MAX_BATCH_NEURONS}")
    if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and not isinstance(max_minutes, bool)
                                        and max_minutes > 0):
        raise ConfigError(f"max_minutes={max_minutes!r} is not allowed; it must be a number > 0 (or None)")
    if mnist_path is not None:  # checked before hours of training, not when the images group comes up
        if img.SHIPPED_DATA[profile] != "mnist":
            raise ConfigError(f"mnist_path={str(mnist_path)!r} is not allowed at profile {profile}: its images are "
                              f"{img.SHIPPED_DATA[profile]} (MNIST is the paper profile's)")
        try:
            img.find_mnist(mnist_path)
        except ConfigError as e:
            raise ConfigError("mnist_" + str(e)) from None


def produce(profile: str, groups: Iterable[str] = GROUPS, *, device: str = "auto",
            root: str | os.PathLike | None = None, store: RunStore | None = None,
            progress: bool | None = None, max_minutes: float | None = None,
            mnist_path: str | os.PathLike | None = None,
            batch_neurons: int = MAX_BATCH_NEURONS, widths: Iterable[int] | None = None,
            noises: Iterable[float] | None = None) -> tuple[int, int, int]:
    """Train (through the run store) and record every planned run that has no record yet.

    Batches are trained one after the other, in the order of :func:`plan` (the main grid first),
    and each finished batch's records are written at once, so an interrupted call keeps them and
    the next call trains only what is missing (or a record that lacks numbers its group records
    now). A run that diverges is reported on stderr and not recorded (the next call tries it again).

    Parameters
    ----------
    profile : str
        ``test``, ``book`` or ``paper``.
    groups : iterable of str, default=GROUPS
        The groups of :func:`plan` to produce.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train.
    root : str or path-like or None, default=None
        The results root; None means :func:`default_root`.
    store : RunStore or None, default=None
        The run store that keeps finished runs (resumability); None means the default store.
    progress : bool or None, default=None
        Progress bars (see :func:`memgen.train.train_batch`).
    max_minutes : float or None, default=None
        Start no new batch after this many minutes (for machines lent for a limited time); the
        runs left are counted in the result. None: no limit.
    mnist_path : str or path-like or None, default=None
        MNIST's folder (the IDX files), for the ``images`` group of a profile whose shipped data is
        MNIST (:data:`memgen.images.SHIPPED_DATA`: ``paper``; checked first, and refused at the
        other profiles); without it that group is skipped with a note on stderr and its runs are
        counted as left.
    batch_neurons : int, default=MAX_BATCH_NEURONS
        Most neurons (runs × width) trained as one batch (:func:`memgen.store.plan_batches`; at
        most :data:`~memgen.store.MAX_BATCH_NEURONS`). A batch of 5000 steps or more checkpoints
        every tenth of its steps into the store (``checkpoints/``) and resumes from there; a
        smaller cap keeps that file small enough to carry from one lent machine to the next
        (``scripts/gpu_produce.sh``). The groups ``progress``, ``transformer`` and ``images`` are
        neither capped nor checkpointed.
    widths, noises : iterable or None, default=None
        Produce only the planned runs of these widths and α (:func:`select`); the counts returned
        are over those. None: all.

    Returns
    -------
    tuple of int
        (records written now, records already present, runs left for a later call).

    Raises
    ------
    ConfigError
        Before anything is trained or written: ``max_minutes``, ``batch_neurons``, ``widths`` or
        ``noises`` out of range, a selection that keeps no planned run, or an ``mnist_path`` that
        is refused at ``profile`` or holds no MNIST files.
    """
    check_produce(profile, max_minutes=max_minutes, mnist_path=mnist_path, batch_neurons=batch_neurons)
    planned = select(plan(profile, groups), widths, noises)  # checked before anything is trained
    res = Results(profile, root)
    store = store or default_store()
    keep = set(inspected(profile))
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes
    out = {"written": 0, "left": 0}
    present = 0
    pruned = {c.key() for c in phase_configs(profile)[1]}
    have = available()

    def late() -> bool:
        return deadline is not None and time.monotonic() > deadline

    def skip(n: int, why: str | None = None) -> None:
        out["left"] += n
        if why:
            print(f"memgen produce: not recorded: {why}", file=sys.stderr)

    def write(rec: dict[str, Any], weights: Weights | None = None) -> None:
        res.write(rec, weights)
        out["written"] += 1

    planned = {g: [c if isinstance(c, img.ImageConfig) else c.replace(device=device) for c in cs]
               for g, cs in planned.items()}
    todos = to_produce(profile, planned, root)
    for group, configs in planned.items():
        todo = todos[group]
        present += len(configs) - len(todo)
        if not todo:
            continue
        if group == "images":
            data_name = img.SHIPPED_DATA[profile]
            if data_name == "mnist" and mnist_path is None:
                print(f"memgen produce: images (chapter 10) at profile {profile} are trained on MNIST, which memgen "
                      "does not ship: pass --mnist-path DIR (the folder of its IDX files; `python -m memgen "
                      "fetch-mnist` downloads them into data/mnist); skipped", file=sys.stderr)
                skip(len(todo))
                continue
            data = img.load_images(data_name, mnist_path)
            for c in todo:
                if late():
                    skip(1)
                    continue
                try:
                    run = img.train_mlp(data, dataclasses.replace(c, device=device))
                except ConfigError as e:  # the loss diverged: left for the next call
                    skip(1, str(e))
                    continue
                run.meta["n_classes"] = data.n_classes
                write(image_record_of(run, data_name, profile))
            continue
        if group == "transformer":
            batches: dict[tuple, list] = {}
            for c in todo:
                batches.setdefault(c.batch_key(), []).append(c)
            for batch in batches.values():
                if late():
                    skip(len(batch))
                    continue
                # a diverged run stops its whole batch: then each run alone, and the diverged ones are
                # left for the next call
                for part in ([batch] + [[c] for c in batch]) if len(batch) > 1 else [batch]:
                    try:
                        truns = tfm.train_or_load(part, root=store.root / "transformers", progress=progress)
                    except ConfigError as e:
                        if len(part) == 1:
                            skip(1, str(e))
                        continue
                    for trun in truns:
                        write(transformer_record_of(trun, profile))
                    if part is batch:
                        break
            continue
        if group in DIAGNOSED and not all(have.values()):
            print("memgen produce: ripser, persim or powerlaw is not installed: the records get chapter 16's numbers "
                  "but not chapters 14-15's (pip install ripser persim powerlaw)", file=sys.stderr)
        for batch in plan_batches(todo, batch_neurons):
            if late():
                skip(len(batch))
                continue
            measured = {}
            if group == "progress":  # trained here with snapshots (then found in the store below)
                try:
                    measured = {RunConfig.from_dict(m["config"]).key(): m
                                for m in measured_runs(batch, store=store, progress=progress)}
                except ValueError as e:  # a run diverged
                    skip(len(batch), str(e))
                    continue
            for run in store.sweep(batch, progress=progress, allow_failures=True):
                if run.failed:
                    skip(1, run.failed)
                    continue
                rec = record_of(run, profile)
                if group == "phases":
                    rec.update(phase_extras(run, run.config.key() in pruned))
                if group == "progress":  # chapter 13's curves over the snapshots
                    m = measured[run.config.key()]
                    rec["measured"] = json_safe({k: v for k, v in m.items() if k not in ("config", "history")})
                if group in DIAGNOSED:
                    rec.update({k: v for k, v in json_safe(diagnostic_record(run.weights, run.data,
                                                                             task=run.config.task)).items()
                                if k not in rec})
                write(rec, run.weights if run.config in keep else None)
    return out["written"], present, out["left"]
