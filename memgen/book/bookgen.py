"""Preparing chapters with papermill: variants, staged books and single re-executions.

``python -m memgen.book.bookgen generate --profile book``
    writes the variants listed in ``book/variants.yml`` into ``book/generated/`` with papermill
    (parameters injected, not executed); the book build executes and caches them.
``python -m memgen.book.bookgen stage --profile test --out _build/test-book [--execute]``
    copies the whole book into ``--out`` with every chapter's ``profile`` set, optionally
    executing each chapter with papermill (the staged ``_config.yml`` then executes only the
    text-notebook intro). Used by the tests: nbval and the browser check.
``python -m memgen.book.bookgen install-cell``
    writes (or updates) the first, hidden cell of every chapter that installs memgen from the
    repository named in ``_config.yml`` when it is not importable (Colab); locally it does nothing.
``python -m memgen.book.bookgen chapter book/05_frequency_filtration.ipynb --out out -p noise 0.6``
    re-executes one chapter with new parameters (``make chapter``). The parameters are checked
    against the chapter's ``parameters`` cell before anything runs: an unknown or repeated name,
    a value of the wrong type or one memgen refuses is one line (exit 2), and nothing is written.
    A list parameter takes ``"[33, 65]"``, ``33,65`` or a single value (a one-element list).
    The executed notebook appears in ``--out`` only when every cell ran.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import math
import os
import re
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
    """The variant list: each item has ``notebook``, ``name``, ``title`` and ``parameters``.

    Parameters
    ----------
    path : Path, default=BOOK / "variants.yml"
        The YAML file listing the variants (``book/variants.yml``).

    Returns
    -------
    list of dict
        The variants in file order (an empty file gives an empty list).

    Raises
    ------
    ValueError
        When a variant lacks one of the four keys.
    """
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
    """Inject ``parameters`` into ``src`` and write ``dst`` (executing it when asked).

    Parameters
    ----------
    src : Path
        The chapter notebook.
    dst : Path
        Where the prepared notebook is written (its folder is created); papermill's paths in it are
        kept relative and the injected cell is hidden.
    parameters : dict of str to Any
        The values papermill injects after the chapter's ``parameters`` cell.
    execute : bool, default=False
        Execute the notebook with papermill (kernel ``python3``, in ``dst``'s folder); False only
        injects the parameters.
    title : str or None, default=None
        A new first markdown heading; None (or "") keeps the chapter's.

    Returns
    -------
    Path
        ``dst``.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    _papermill().execute_notebook(str(src), str(dst), parameters=parameters, prepare_only=not execute,
                                  kernel_name="python3", progress_bar=False, cwd=str(dst.parent))
    if title:
        _retitle(dst, title)
    _portable(src, dst)
    return dst


def _portable(src: Path, dst: Path) -> None:
    """Papermill records absolute paths; keep them relative so that committed variants are the
    same on every machine (``book/generated/`` is committed for the launch buttons). The cell
    papermill injects is collapsed on the page like the parameters cell it overrides."""
    import nbformat

    nb = nbformat.read(dst, as_version=4)
    pm = nb.metadata.get("papermill", {})
    if pm:
        pm["input_path"] = os.path.relpath(src.resolve(), dst.parent.resolve())
        pm["output_path"] = dst.name
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            cell.id = f"{dst.stem[:40]}-injected"  # stable: a regenerated variant is the same file
            if "hide-input" not in tags:
                cell.metadata["tags"] = [*tags, "hide-input"]
    nbformat.write(nb, dst)


def generate(profile: str, book: Path = BOOK, out: Path | None = None, execute: bool = False) -> list[Path]:
    """Write every variant of ``book/variants.yml`` into ``out`` (default ``book/generated``).

    Parameters
    ----------
    profile : str
        The profile every variant runs under (under ``test``, a chapter with a ``results``
        parameter reads ``results/test``); a variant's own parameters take precedence.
    book : Path, default=BOOK
        The book folder holding ``variants.yml`` and the chapters.
    out : Path or None, default=None
        The output folder, removed first when it exists; None: ``book / "generated"``.
    execute : bool, default=False
        Execute each variant with papermill instead of only injecting its parameters.

    Returns
    -------
    list of Path
        The variant notebooks written, in the order of ``variants.yml``.
    """
    out = out or book / "generated"
    if out.exists():
        shutil.rmtree(out)
    made = []
    for v in load_variants(book / "variants.yml"):
        params = {**_profile_params(book / v["notebook"], profile), **v["parameters"]}
        made.append(prepare(book / v["notebook"], out / f"{v['name']}.ipynb", params, execute, v["title"]))
    return made


def _profile_params(nb_path: Path, profile: str) -> dict[str, Any]:
    """The parameters that put a chapter under ``profile``; under ``test`` its shipped section
    reads the CPU-made ``results/test`` (the book's ``paper`` results may not exist yet)."""
    params: dict[str, Any] = {"profile": profile}
    if profile == "test" and "results" in notebook_parameters(nb_path):
        params["results"] = "test"
    return params


def stage(profile: str, out: Path, execute: bool = False) -> Path:
    """Copy the book into ``out`` with every chapter run under ``profile``.

    Parameters
    ----------
    profile : str
        The profile set in every chapter (and variant) and in the staged book's title.
    out : Path
        The staged book's folder, removed first when it exists.
    execute : bool, default=False
        Execute every chapter and variant with papermill; the staged ``_config.yml`` then executes
        only the text notebooks.

    Returns
    -------
    Path
        ``out``.
    """
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
    if profile.startswith("paper"):  # the paper's runs take far longer than a cell timeout allows
        cfg["execute"]["timeout"] = -1
    cfg["title"] = f"{cfg['title']} (profile: {profile})"
    (out / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    dst = out / "book"
    dst.mkdir()
    for f in sorted(BOOK.iterdir()):
        if f.suffix == ".ipynb":
            prepare(f, dst / f.name, _profile_params(f, profile), execute)
        elif f.suffix == ".md":  # text notebooks (the intro) carry a `profile = "book"` line
            (dst / f.name).write_text(f.read_text().replace('profile = "book"', f'profile = "{profile}"'))
        elif f.is_file():
            shutil.copy(f, dst / f.name)
    generate(profile, book=dst, out=dst / "generated", execute=execute)
    return out


INSTALL_TAG = "install-memgen"


def install_source(config: Path = ROOT / "_config.yml") -> str:
    """The install cell's code, from ``repository.url`` and ``repository.branch`` of ``config``.

    Parameters
    ----------
    config : Path, default=ROOT / "_config.yml"
        The Jupyter Book configuration with a ``repository`` entry (``branch`` defaults to ``main``).

    Returns
    -------
    str
        The cell's source: a ``%pip install`` of ``memgen[book]`` from the repository, run only when
        memgen is not importable.
    """
    repo = yaml.safe_load(config.read_text())["repository"]
    url = f"git+{repo['url']}@{repo.get('branch', 'main')}"
    return ("# Colab or a fresh kernel: install memgen from its repository when it is not importable\n"
            "import importlib.util\n\n"
            'if importlib.util.find_spec("memgen") is None:\n'
            f'    %pip install -q "memgen[book] @ {url}"')


def sync_install_cells(paths: list[Path], config: Path = ROOT / "_config.yml") -> list[Path]:
    """Make the first cell of each notebook the install cell (tagged ``remove-cell``); return the
    notebooks that changed.

    Parameters
    ----------
    paths : list of Path
        The notebooks, rewritten in place when their install cell is missing or out of date.
    config : Path, default=ROOT / "_config.yml"
        The configuration the install cell's code is read from (see :func:`install_source`).

    Returns
    -------
    list of Path
        The notebooks that were rewritten, in the order of ``paths``.
    """
    import nbformat

    source, changed = install_source(config), []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0] if nb.cells else None
        if first is not None and INSTALL_TAG in first.metadata.get("tags", []):
            if first.source == source:
                continue
            first.source = source
        else:
            cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["remove-cell", INSTALL_TAG]})
            cell.id = f"{path.stem[:40]}-install"
            nb.cells.insert(0, cell)
        nbformat.write(nb, path)
        changed.append(path)
    return changed


_NONE = ("None", "none", "null", "~")


def notebook_parameters(nb_path: Path) -> dict[str, tuple[str | None, bool, Any]]:
    """The parameters of a chapter's ``parameters`` cell: name -> (type, optional, default).

    Read from the cell's top-level assignments (``name: type = default``). ``type`` is the
    annotation's base (``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``) or None when
    unannotated or another type; ``optional`` says whether None is allowed (``Optional[...]``,
    ``... | None``, ``None | ...``, no annotation, or a None default).

    Parameters
    ----------
    nb_path : Path
        The chapter notebook.

    Returns
    -------
    dict of str to tuple
        ``(type, optional, default)`` by parameter name, in the cell's order; ``default`` is None
        when it is not a literal. Empty when the notebook has no ``parameters`` cell.
    """
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])),
                None)
    found: dict[str, tuple[str | None, bool, Any]] = {}
    for node in ast.parse(cell.source).body if cell is not None else []:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, ann, value = node.target.id, node.annotation, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, ann, value = node.targets[0].id, None, node.value
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            default = None
        optional = ann is None or default is None
        if isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name) and ann.value.id == "Optional":
            ann, optional = ann.slice, True
        elif isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
            if isinstance(ann.right, ast.Constant) and ann.right.value is None:
                ann, optional = ann.left, True
            elif isinstance(ann.left, ast.Constant) and ann.left.value is None:  # None | X
                ann, optional = ann.right, True
        base = ann.id.lower() if isinstance(ann, ast.Name) else None
        found[name] = (base if base in ("int", "float", "str", "bool", "list", "dict") else None, optional, default)
    return found


def _typed(name: str, raw: str, kind: str | None, optional: bool) -> Any:
    """A ``-p NAME VALUE`` value typed like papermill's ``-p`` (YAML), checked against the
    parameter's annotation. A list parameter accepts a single value as a one-element list."""
    from ..configs import ConfigError

    if raw.strip() in _NONE:
        if optional:
            return None
        raise ConfigError(f"{name}=None is not allowed; this chapter needs a value for it")
    if kind == "str":
        return raw
    if kind == "list" and not raw.lstrip().startswith("[") and "," in raw:
        raw = f"[{raw}]"
    value = yaml.safe_load(raw)
    if kind in ("int", "float") and isinstance(value, str):  # YAML reads 1e-3 and nan as strings
        try:
            value = int(raw) if kind == "int" else float(raw)
        except ValueError:
            pass
    if kind == "list" and not isinstance(value, list):
        value = [value]
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          "bool": lambda v: isinstance(v, bool), "list": lambda v: isinstance(v, list),
          "dict": lambda v: isinstance(v, dict)}.get(kind)
    if ok is not None and not ok(value):
        what = {"int": "an integer", "float": "a finite number", "bool": "True or False",
                "dict": "a mapping such as '{adam: 0.001}'"}[kind]
        raise ConfigError(f"{name}={value!r} is not allowed; it must be {what}" + (" or None" if optional else ""))
    return float(value) if kind == "float" else value


def check_parameters(nb_path: Path, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Validate ``-p NAME VALUE`` pairs for a chapter before it runs; return them typed.

    Parameters
    ----------
    nb_path : Path
        The chapter notebook (an ``.ipynb`` file).
    pairs : list of tuple of str
        The ``(NAME, VALUE)`` pairs as given on the command line, values unparsed.

    Returns
    -------
    dict of str to Any
        The values by name, in the order given, typed like papermill's ``-p`` (YAML) and checked
        against the parameters cell's annotations (a list parameter takes a single value as a
        one-element list).

    Raises
    ------
    memgen.configs.ConfigError
        (One line) for a missing notebook, an unknown or repeated name, a value of the wrong type,
        or values memgen's :func:`~memgen.experiments.setup` refuses (for chapters with a ``task``
        parameter, called as their first cell calls it: the chapter's defaults plus these values;
        other chapters validate the rest in their first cell).
    """
    from ..configs import ConfigError, RunConfig, get_profile
    from ..experiments import setup

    if nb_path.suffix != ".ipynb" or not nb_path.is_file():
        chapters = ", ".join(f.name for f in sorted(BOOK.glob("*.ipynb")))
        raise ConfigError(f"notebook {str(nb_path)!r} is not allowed: no such notebook; the chapters in book/ "
                          f"are {chapters}")
    declared = notebook_parameters(nb_path)
    params: dict[str, Any] = {}
    for name, raw in pairs:
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"parameter {name!r} is not allowed for {nb_path.name}{hint}; its parameters are "
                              f"{', '.join(declared) or 'none (no parameters cell)'}")
        if name in params:
            raise ConfigError(f"parameter {name!r} is given twice; give it once")
        params[name] = _typed(name, raw, *declared[name][:2])
    if "task" in declared:  # a modular-arithmetic chapter: its first cell calls setup with these
        merged = {k: v[2] for k, v in declared.items()} | params
        fields = {f.name for f in dataclasses.fields(RunConfig)}
        run = {k: v for k, v in merged.items() if k in fields}
        grids = {k: merged[k] for k in ("widths", "noises", "seeds") if k in merged}
        setup(merged.get("profile", "book"), **grids, **run)
    elif "profile" in params:  # another kind of chapter validates the rest in its first cell
        get_profile(params["profile"])
    return params


def _slug(value: Any) -> str:
    """A parameter value as it appears in an output file name."""
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return re.sub(r"[^\w.,+-]", "", text)


def main(argv: list[str] | None = None) -> int:
    """Run one ``python -m memgen.book.bookgen`` command: ``generate``, ``stage``, ``install-cell`` or ``chapter``.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when a chapter's cell failed (nothing written), 2 when a
        profile or parameter is not allowed (one line on stderr says why).
    """
    p = argparse.ArgumentParser(prog="python -m memgen.book.bookgen")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--profile", default="book")
    s = sub.add_parser("stage")
    s.add_argument("--profile", default="test")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--execute", action="store_true")
    sub.add_parser("install-cell")
    c = sub.add_parser("chapter")
    c.add_argument("notebook", type=Path)
    c.add_argument("--out", type=Path, default=ROOT / "out")
    c.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ns = p.parse_args(argv)
    from ..configs import ConfigError, get_profile

    try:
        if ns.cmd == "generate":
            get_profile(ns.profile)
            for path in generate(ns.profile):
                print(f"prepared {path.relative_to(ROOT)}")
            return 0
        if ns.cmd == "install-cell":
            for path in sync_install_cells(sorted(BOOK.glob("*.ipynb"))):
                print(f"updated {path.relative_to(ROOT)}")
            return 0
        if ns.cmd == "stage":
            get_profile(ns.profile)
            print(f"staged {stage(ns.profile, ns.out, ns.execute)}")
            return 0
        params = check_parameters(ns.notebook, ns.parameter)
    except ConfigError as e:
        print(f"{ns.notebook if ns.cmd == 'chapter' else 'bookgen'}: not run: ConfigError: {e}", file=sys.stderr)
        return 2
    suffix = "_".join(f"{k}-{_slug(v)}" for k, v in params.items()) or "default"
    dst = ns.out / f"{ns.notebook.stem}__{suffix}.ipynb"
    tmp = dst.with_name(f".{dst.stem}.partial.ipynb")  # renamed into place only when every cell ran
    try:
        prepare(ns.notebook, tmp, params, execute=True)
        os.replace(tmp, dst)
    except _papermill().PapermillExecutionError as e:
        evalue = " ".join(str(e.evalue).split())
        print(f"{ns.notebook} failed in cell {e.exec_count}: {e.ename}: {evalue} (nothing written)", file=sys.stderr)
        return 1
    finally:
        tmp.unlink(missing_ok=True)
    print(f"executed {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
