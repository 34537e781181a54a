"""Preparing chapters with papermill: variants, staged books and single re-executions.

``python -m memgen.book.bookgen generate --profile book``
    writes the variants listed in ``book/variants.yml`` into ``book/generated/`` with papermill
    (parameters injected, not executed); the book build executes and caches them.
``python -m memgen.book.bookgen stage --profile test --out _build/test-book [--execute]``
    copies the whole book into ``--out`` with every chapter's ``profile`` set, optionally
    executing each chapter with papermill (the staged ``_config.yml`` then executes only the
    text-notebook intro). Used by the tests: nbval and the browser check.
``python -m memgen.book.bookgen chapter book/05_frequency_filtration.ipynb --out out -p noise 0.6``
    re-executes one chapter with new parameters (``make chapter``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"


def _papermill():
    import papermill as pm

    return pm


def load_variants(path: Path = BOOK / "variants.yml") -> list[dict[str, Any]]:
    """The variant list: each item has ``notebook``, ``name``, ``title`` and ``parameters``."""
    items = yaml.safe_load(path.read_text()) or []
    for it in items:
        missing = {"notebook", "name", "title", "parameters"} - set(it)
        if missing:
            raise ValueError(f"{path}: variant {it!r} lacks {sorted(missing)}")
    return items


def _retitle(nb_path: Path, title: str) -> None:
    """Replace the first markdown heading of a notebook by ``title``."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            rest = cell.source.lstrip().split("\n", 1)
            cell.source = f"# {title}\n" + (rest[1] if len(rest) > 1 else "")
            break
    nbformat.write(nb, nb_path)


def prepare(src: Path, dst: Path, parameters: dict[str, Any], execute: bool = False,
            title: str | None = None) -> Path:
    """Inject ``parameters`` into ``src`` and write ``dst`` (executing it when asked)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    _papermill().execute_notebook(str(src), str(dst), parameters=parameters, prepare_only=not execute,
                                  kernel_name="python3", progress_bar=False, cwd=str(dst.parent))
    if title:
        _retitle(dst, title)
    return dst


def generate(profile: str, book: Path = BOOK, out: Path | None = None, execute: bool = False) -> list[Path]:
    """Write every variant of ``book/variants.yml`` into ``out`` (default ``book/generated``)."""
    out = out or book / "generated"
    if out.exists():
        shutil.rmtree(out)
    made = []
    for v in load_variants(book / "variants.yml"):
        params = {"profile": profile, **v["parameters"]}
        made.append(prepare(book / v["notebook"], out / f"{v['name']}.ipynb", params, execute, v["title"]))
    return made


def stage(profile: str, out: Path, execute: bool = False) -> Path:
    """Copy the book into ``out`` with every chapter run under ``profile``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in ("_toc.yml", "_ext"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, out / name)
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    if execute:  # papermill executed every chapter; the build executes only the text-notebook intro
        cfg["execute"]["execute_notebooks"] = "force"
        cfg["execute"]["exclude_patterns"] = ["*.ipynb"]
    if profile == "paper":  # the paper's runs take far longer than a cell timeout allows
        cfg["execute"]["timeout"] = -1
    cfg["title"] = f"{cfg['title']} (profile: {profile})"
    (out / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    dst = out / "book"
    dst.mkdir()
    for f in sorted(BOOK.iterdir()):
        if f.suffix == ".ipynb":
            prepare(f, dst / f.name, {"profile": profile}, execute)
        elif f.suffix == ".md":  # text notebooks (the intro) carry a `profile = "book"` line
            (dst / f.name).write_text(f.read_text().replace('profile = "book"', f'profile = "{profile}"'))
        elif f.is_file():
            shutil.copy(f, dst / f.name)
    generate(profile, book=dst, out=dst / "generated", execute=execute)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m memgen.book.bookgen")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--profile", default="book")
    s = sub.add_parser("stage")
    s.add_argument("--profile", default="test")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--execute", action="store_true")
    c = sub.add_parser("chapter")
    c.add_argument("notebook", type=Path)
    c.add_argument("--out", type=Path, default=ROOT / "out")
    c.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ns = p.parse_args(argv)
    from ..configs import get_profile

    if ns.cmd == "generate":
        get_profile(ns.profile)
        for path in generate(ns.profile):
            print(f"prepared {path.relative_to(ROOT)}")
    elif ns.cmd == "stage":
        get_profile(ns.profile)
        print(f"staged {stage(ns.profile, ns.out, ns.execute)}")
    else:
        params = {k: yaml.safe_load(v) for k, v in ns.parameter}  # papermill -p typing
        suffix = "_".join(f"{k}-{v}" for k, v in params.items()) or "default"
        dst = ns.out / f"{ns.notebook.stem}__{suffix}.ipynb"
        try:
            prepare(ns.notebook, dst, params, execute=True)
        except _papermill().PapermillExecutionError as e:
            print(f"{ns.notebook} failed in cell {e.exec_count}: {e.ename}: {e.evalue} (see {dst})", file=sys.stderr)
            return 1
        print(f"executed {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
