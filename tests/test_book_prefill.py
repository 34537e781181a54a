"""The parallel pre-execution of the book's chapters into the build's jupyter-cache."""

import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from memgen.book.prefill import main, prefill, toc_notebooks


def _write(path, code, force=False):
    nb = new_notebook(cells=[new_markdown_cell(f"# {path.stem}"), new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if force:
        nb.metadata["mystnb"] = {"execution_mode": "force"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def book(tmp_path):
    (tmp_path / "gen").mkdir()
    _write(tmp_path / "intro.ipynb", "print('intro')", force=True)
    _write(tmp_path / "a.ipynb", "import os; print(os.environ['OMP_NUM_THREADS'])")
    _write(tmp_path / "gen" / "a_1.ipynb", "print(1)")
    _write(tmp_path / "bad.ipynb", "raise ValueError('broken chapter')")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: a\n    sections:\n      - glob: gen/a_*\n"
        "  - file: bad\n  - file: missing\n")
    return tmp_path


def test_toc_order_globs_and_existing_files_only(book):
    assert [p.relative_to(book).as_posix() for p in toc_notebooks(book / "_toc.yml")] == [
        "intro.ipynb", "a.ipynb", "gen/a_1.ipynb", "bad.ipynb"]


def test_prefill_caches_what_the_build_would_execute(book, capsys):
    from jupyter_cache import get_cache

    cache = book / "_build" / ".jupyter_cache"
    done = prefill(toc_notebooks(book / "_toc.yml"), jobs=2, cache=cache, timeout=60)
    assert sorted(p.name for p in done) == ["a.ipynb", "a_1.ipynb"]
    store = get_cache(str(cache))
    # the build matches the source notebooks (code only) to the cached executed ones
    record = store.match_cache_notebook(nbformat.read(book / "a.ipynb", as_version=4))
    outputs = store.get_cache_bundle(record.pk).nb.cells[0].outputs  # the cache keeps code cells
    assert outputs[0]["text"].strip() == str(max(1, (os.cpu_count() or 1) // 2))  # the cores shared by 2 kernels
    for name in ("intro.ipynb", "bad.ipynb"):  # forced: the build runs it; failed: not cached
        with pytest.raises(KeyError):
            store.match_cache_notebook(nbformat.read(book / name, as_version=4))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("prefill:")]
    assert len(err) == 1 and err[0].endswith(
        "bad.ipynb failed (CellExecutionError: ValueError: broken chapter); the book build will re-execute it")
    # a second call finds everything cached and executes nothing
    assert prefill(toc_notebooks(book / "_toc.yml"), jobs=2, cache=cache, timeout=60) == []


def test_jobs_must_be_positive(capsys):
    assert main(["--jobs", "0"]) == 2
    assert capsys.readouterr().err.strip() == "prefill: --jobs=0 is not allowed; it must be an integer >= 1"
    with pytest.raises(ValueError, match="jobs=0 is not allowed"):
        prefill([], jobs=0)


def _alive(pid):
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_workers_and_their_kernels(tmp_path, signame):
    """Stopping prefill (SIGTERM, or SIGINT as Ctrl-C sends) leaves no worker or kernel running on:
    the handler it relies on is its own (set whatever the parent shell ignores)."""
    import signal
    import subprocess
    import sys
    import time

    pids = tmp_path / "pids"
    _write(tmp_path / "slow.ipynb", f"import os, time\nopen({str(pids)!r}, 'w').write(f'{{os.getpid()}} "
                                    f"{{os.getppid()}}')\ntime.sleep(300)")
    code = ("import sys; from pathlib import Path; from memgen.book.prefill import prefill; "
            f"prefill([Path({str(tmp_path / 'slow.ipynb')!r})], jobs=1, cache=Path({str(tmp_path / 'cache')!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    kernel = worker = None
    try:
        deadline = time.monotonic() + 120
        while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        kernel, worker = map(int, pids.read_text().split())
        assert _alive(kernel) and _alive(worker)
        sig = getattr(signal, signame)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 128 + sig
        assert "prefill: stopped by signal" in proc.stderr.read()
        deadline = time.monotonic() + 20
        while (_alive(kernel) or _alive(worker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker) and not _alive(kernel)
    finally:  # whatever happened, nothing of this test runs on
        proc.kill()
        for pid in (kernel, worker):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_kernels_do_not_warn_about_local_tcp(tmp_path):
    """The venv's kernel config (``_ext/ipython_kernel_config.py``, installed by ``make install``)
    drops ipykernel's "TCP without encryption" warning from every kernel's log, and only that; and
    its kernels skip jsonschema's IRI format checker (``rfc3987_syntax``, 2.7 s per kernel start
    where ``make lab`` installed it) while plotly, nbformat and notebook validation work as before.
    Without the config the kernel prints the module, or ``absent`` where it is not installed."""
    import subprocess
    import sys

    from memgen.book.prefill import ROOT

    installed = Path(sys.prefix) / "etc" / "ipython" / "ipython_kernel_config.py"
    assert installed.read_text() == (ROOT / "_ext" / "ipython_kernel_config.py").read_text()
    code = ("import logging, sys; logging.getLogger('IPKernelApp').warning('kept')\n"
            "import plotly.io, nbformat, nbformat.v4\n"
            "nbformat.validate(nbformat.v4.new_notebook())\n"
            "print('rfc3987_syntax:', sys.modules.get('rfc3987_syntax', 'absent'))")
    nb = _write(tmp_path / "k.ipynb", code)
    out = subprocess.run([sys.executable, "-m", "papermill", str(nb), str(tmp_path / "out.ipynb")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "without encryption" not in out.stderr and "kept" in out.stderr
    printed = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[1].outputs
    assert [o.get("text") for o in printed if o.get("name") == "stdout"] == ["rfc3987_syntax: None\n"]
