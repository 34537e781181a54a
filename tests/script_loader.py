"""Load a script of the repository that is not part of a package (benchmarks/, _ext/) as a module."""

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_script(relative: str) -> ModuleType:
    """The module of a script, executed once, named after its file.

    Parameters
    ----------
    relative : str
        The script's path from the repository root, e.g. ``"benchmarks/bench_step.py"``.

    Returns
    -------
    ModuleType
        The executed module (not added to ``sys.modules``).
    """
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
