import subprocess
import sys
from pathlib import Path

import nbformat

from memgen.book.bookgen import ROOT, generate, load_variants


def test_variants_file_is_valid_and_generates_prepared_notebooks(tmp_path):
    variants = load_variants()
    assert {v["parameters"]["task"] for v in variants} >= {"sub", "mul"}
    made = generate("test", out=tmp_path / "generated")
    assert len(made) == len(variants)
    nb = nbformat.read(made[0], as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "profile = \"test\"" in injected[0].source
    assert nb.cells[0].source.startswith("# " + variants[0]["title"])


def test_every_chapter_has_a_parameters_cell_and_no_outputs():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        assert any("parameters" in t for t in tags), path
        assert "profile: str" in next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path} has outputs"


def test_bad_parameter_fails_in_the_first_cell_with_a_clear_message(tmp_path):
    r = subprocess.run([sys.executable, "-m", "memgen.book.bookgen", "chapter", "book/01_testbed.ipynb", "--out",
                        str(tmp_path), "-p", "profile", "test", "-p", "noise", "1.5"],
                       cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)})
    assert r.returncode != 0
    assert "noise=1.5 is not allowed; it must lie in [0, 1)" in r.stderr
    assert "ConfigError" in r.stderr
