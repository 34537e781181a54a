"""Executing the book's chapters in parallel into the execution cache, before the book build.

``python -m memgen.book.prefill [--jobs 2]``
    executes every notebook of ``_toc.yml`` whose code is not in the jupyter-cache of the build
    (``_build/.jupyter_cache``) with ``--jobs`` kernels at a time, the machine's cores shared
    among them (torch threads per kernel: cores // jobs), and stores the executed notebooks in
    that cache. The kernels claim the runs
    they train (``MEMGEN_SHARED_STORE=1``), so a run two chapters need is trained once. The
    ``jupyter-book build`` that follows (``make book``) then finds every chapter cached, exactly
    as if it had executed them itself, one after the other.

Measured on the older 2-core build machine, two single-threaded kernels side by side built the book no
sooner than one kernel with two threads (22 min 22 s against 22 min 49 s: the wide runs that
dominate use both threads well), so ``make book`` runs this step only when ``JOBS`` > 1, for
machines with more cores than one kernel's small runs can use. Notebooks whose metadata says
``mystnb: execution_mode: force`` (the intro, which reads every chapter's findings) are left to
the build, which always executes them. A notebook that fails here is not cached, so the build
executes it again and reports the error as usual. Stopped by SIGTERM or SIGINT, it stops its
workers too (their kernels follow their parent), caches nothing more and exits with 128 + the signal.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "_build" / ".jupyter_cache"
#: Per-cell timeout (seconds), as ``execute: timeout`` in ``_config.yml``.
TIMEOUT = 1800


def toc_notebooks(toc: Path = ROOT / "_toc.yml") -> list[Path]:
    """The notebooks of a Jupyter Book table of contents, in its order (globs expanded).

    Parameters
    ----------
    toc : Path, default=ROOT / "_toc.yml"
        The ``_toc.yml`` file; entries are relative to its folder.

    Returns
    -------
    list of Path
        Every ``file`` or ``glob`` entry (``root`` included) that names an ``.ipynb``.
    """
    base, found = toc.parent, []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(base / f"{node[key]}.ipynb")
            if isinstance(node.get("glob"), str):
                found.extend(sorted(base.glob(f"{node['glob']}.ipynb")))
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc.read_text()))
    return [p for p in dict.fromkeys(found) if p.exists()]


def _forced(nb: nbformat.NotebookNode) -> bool:
    return nb.metadata.get("mystnb", {}).get("execution_mode") == "force"


def _execute(path: Path, timeout: int, threads: int = 1) -> tuple[Path, nbformat.NotebookNode, float, str | None]:
    """Execute one notebook in its folder with a kernel of ``threads`` torch threads (a worker process)."""
    from jupyter_cache.executors.utils import single_nb_execution

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # inherited by the kernel it starts
        os.environ[var] = str(threads)
    os.environ["MEMGEN_SHARED_STORE"] = "1"  # chapters side by side train a shared run once
    # the kernel process's own log (not the cells' output) would interleave with the other
    # worker's: silenced; what matters comes back as the result
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(path.parent), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    err = None
    if result.err is not None:  # the exception's last line, without the terminal colours
        last = re.sub(r"\x1b\[[0-9;]*m", "", str(result.err)).strip().splitlines()[-1]
        err = f"{type(result.err).__name__}: {last[:200]}"
    return path, nb, result.time, err


def _worker_init() -> None:
    """A worker dies of SIGTERM (whatever its parent inherited); its kernel, which polls its parent,
    exits with it."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])


class Stopped(SystemExit):
    """Raised in the main thread by SIGTERM or SIGINT during :func:`prefill` (exit status 128 + signal).

    Parameters
    ----------
    signum : int
        The signal's number, kept as ``signum``.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _raise_on_signals() -> dict[int, Any]:
    """Make SIGTERM and SIGINT raise :class:`Stopped` in the main thread (the handler only raises:
    the cleanup happens where it is caught). Returns the handlers replaced, to restore; nothing when
    called outside the main thread, which takes no signals."""

    def stop(signum: int, frame: Any) -> None:
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, stop) for sig in _SIGNALS}


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGTERM and SIGINT held back (delivered at the end) while a cache entry is written whole."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def prefill(paths: list[Path], jobs: int = 2, cache: Path = CACHE, timeout: int = TIMEOUT) -> list[Path]:
    """Execute the notebooks not yet in ``cache``, ``jobs`` at a time, and cache them.

    Parameters
    ----------
    paths : list of Path
        Candidate notebooks (those forcing execution, or already cached, are skipped).
    jobs : int, default=2
        Kernels at a time (each with cores // jobs torch threads, at least one).
    cache : Path, default=ROOT / "_build/.jupyter_cache"
        The jupyter-cache folder the book build reads.
    timeout : int, default=1800
        Per-cell timeout in seconds.

    Returns
    -------
    list of Path
        The notebooks executed and cached (failures are reported on stderr and left out).
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} is not allowed; it must be an integer >= 1")
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    store = get_cache(str(cache))
    todo = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if _forced(nb):
            continue
        try:
            store.match_cache_notebook(nb)
        except KeyError:
            todo.append(path)
    done: list[Path] = []
    if not todo:
        return done
    print(f"prefill: executing {len(todo)} notebook(s), {jobs} at a time", flush=True)
    t0 = time.perf_counter()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the caller's, restored at the end
    before = _raise_on_signals()
    try:
        pool = ProcessPoolExecutor(min(jobs, len(todo)), mp_context=get_context("spawn"),
                                   initializer=_worker_init)
        try:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            futures = [pool.submit(_execute, p, timeout, threads) for p in todo]
            for fut in as_completed(futures):
                path, nb, seconds, err = fut.result()
                name = os.path.relpath(path) if path.is_relative_to(Path.cwd()) else path
                if err:  # not cached: the build runs it again and reports the error in full
                    print(f"prefill: {name} failed ({err}); the book build will re-execute it", file=sys.stderr)
                    continue
                with _signals_blocked():  # a cache entry is written whole or not at all
                    store.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
                                                check_validity=False, overwrite=True)
                done.append(path)
                print(f"prefill: {name} {seconds:.0f} s ({time.perf_counter() - t0:.0f} s elapsed)", flush=True)
            pool.shutdown()
        except BaseException as e:  # a signal, an error, Ctrl-C: stop the workers (their kernels follow)
            signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # no second signal in the middle of this
            workers = list((getattr(pool, "_processes", None) or {}).values())  # this pool's own processes
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers:
                proc.terminate()
            if isinstance(e, Stopped):
                print(f"prefill: stopped by signal {e.signum}; nothing more is cached", file=sys.stderr, flush=True)
            raise
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held back now meets the old handler
    return done


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m memgen.book.prefill``: execute the chapters of ``--toc`` not yet in ``--cache``.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name (``--jobs``, ``--toc``, ``--cache``); None reads
        ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 when done (a chapter that failed is reported on stderr and left to the
        build), 2 when ``--jobs`` is below 1. A signal ends it with :class:`Stopped` instead.
    """
    p = argparse.ArgumentParser(prog="python -m memgen.book.prefill",
                                description="execute the book's chapters in parallel into the build's cache")
    p.add_argument("--jobs", type=int, default=2, help="kernels at a time (default 2)")
    p.add_argument("--toc", type=Path, default=ROOT / "_toc.yml")
    p.add_argument("--cache", type=Path, default=CACHE)
    ns = p.parse_args(argv)
    if ns.jobs < 1:
        print(f"prefill: --jobs={ns.jobs} is not allowed; it must be an integer >= 1", file=sys.stderr)
        return 2
    prefill(toc_notebooks(ns.toc), ns.jobs, ns.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
