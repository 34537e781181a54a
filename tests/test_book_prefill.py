"""The parallel pre-execution of the book's chapters into the build's jupyter-cache."""

import os

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
