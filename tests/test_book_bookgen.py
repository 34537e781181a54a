import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

from memgen.book.bookgen import (
    INSTALL_TAG,
    ROOT,
    generate,
    install_source,
    load_variants,
    notebook_parameters,
    sync_install_cells,
)


def test_variants_file_is_valid_and_generates_prepared_notebooks(tmp_path):
    variants = load_variants()
    assert {v["parameters"]["task"] for v in variants} >= {"sub", "mul"}
    made = generate("test", out=tmp_path / "generated")
    assert len(made) == len(variants)
    nb = nbformat.read(made[0], as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "profile = \"test\"" in injected[0].source
    first_md = next(c for c in nb.cells if c.cell_type == "markdown")
    assert first_md.source.startswith("# " + variants[0]["title"])


def test_committed_variants_are_generated_from_the_current_chapters_and_variants_file(tmp_path):
    """book/generated/ is what `make generate` writes (a stale copy would build old parameters)."""
    made = generate("book", out=tmp_path / "generated")
    for path in made:
        committed = ROOT / "book" / "generated" / path.name
        assert committed.exists(), f"{committed} is missing: run make generate"
        new, old = (nbformat.read(p, as_version=4) for p in (path, committed))
        assert [c.source for c in new.cells] == [c.source for c in old.cells], f"{committed} is stale: make generate"
        assert new.metadata.papermill.parameters == old.metadata.papermill.parameters


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


def test_every_notebook_starts_with_the_hidden_install_cell_for_the_configured_repository():
    """Colab opens a chapter without memgen: its first cell installs it from the repository that
    ``_config.yml`` names (the launch buttons' one setting); a stale URL fails here."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    expected = install_source()
    assert f'"memgen[book] @ git+{repo["url"]}@{repo["branch"]}"' in expected
    notebooks = sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "book" / "generated").glob("*.ipynb"))
    assert len(notebooks) > 10
    for path in notebooks:
        first = nbformat.read(path, as_version=4).cells[0]
        assert {"remove-cell", INSTALL_TAG} <= set(first.metadata.get("tags", [])), path
        assert first.source == expected, f"{path}: run `python -m memgen.book.bookgen install-cell`"


def test_install_cell_follows_the_config_and_is_added_once(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("repository:\n  url: https://example.org/me/fork\n  branch: dev\n")
    nb_path = tmp_path / "c.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T")]), nb_path)
    assert sync_install_cells([nb_path], cfg) == [nb_path]
    assert sync_install_cells([nb_path], cfg) == []  # already up to date
    cells = nbformat.read(nb_path, as_version=4).cells
    assert len(cells) == 2 and "git+https://example.org/me/fork@dev" in cells[0].source


def test_notebook_parameters_reads_every_spelling_of_optional(tmp_path):
    src = ('a: Optional[int] = None\nb: int | None = 3\nc: None | float = 0.5\nd: str = "x"\ne = 2\n'
           'f: "Whatever" = 1\n')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata={"tags": ["parameters"]})])
    path = tmp_path / "p.ipynb"
    nbformat.write(nb, path)
    assert notebook_parameters(path) == {
        "a": ("int", True, None), "b": ("int", True, 3), "c": ("float", True, 0.5), "d": ("str", False, "x"),
        "e": (None, True, 2), "f": (None, False, 1)}
