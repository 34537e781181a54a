"""The public API of the core and of the book layer is documented in numpydoc form, checked with
``numpydoc.validate``.

Every public function, class and public method or property defined in a core module (``memgen/*.py``)
or in a module of the book layer (``memgen/book/*.py``) is validated.
Only a few numpydoc codes fail the test, the ones that keep the docstrings true to the signatures
and in the ``name : type, default=...`` form, plus one check of our own: a parameter with a default
says so on its type line. Style nits (summary mood, periods, examples) do not fail it.
"""

import functools
import importlib
import inspect
import pkgutil

import pytest
from numpydoc.docscrape import get_doc_object
from numpydoc.validate import Validator, validate

import memgen
import memgen.book

# Both are checked: every module of the core package (memgen/*.py) and every module of the book
# layer (memgen/book/*.py, whose modules need plotly and ipywidgets), so a new module is checked
# without being listed here.
CORE = sorted(m.name for m in pkgutil.iter_modules(memgen.__path__) if not m.ispkg and m.name != "__main__")
BOOK = sorted(m.name for m in pkgutil.iter_modules(memgen.book.__path__) if not m.ispkg and m.name != "__main__")
MODULES = [f"memgen.{short}" for short in CORE] + [f"memgen.book.{short}" for short in BOOK]

# GL08 no docstring; PR01 parameter not documented; PR02 documented parameter that does not exist;
# PR03 parameters in another order than the signature; PR04 parameter without a type (`name : type`);
# PR05 a type ending in "." (a description written where the type goes); PR07 parameter without a
# description; PR10 no space before the colon; RT01 returns a value but has no Returns section; RT03
# return value without a description; YD01 same as RT01 for generators; GL06 unknown section; GL07
# sections in the wrong order.
CODES = {"GL06", "GL07", "GL08", "PR01", "PR02", "PR03", "PR04", "PR05", "PR07", "PR10", "RT01", "RT03", "YD01"}


def public_objects():
    """Dotted names of the public functions, classes, methods and properties of the core and book modules."""
    names = []
    for dotted in MODULES:
        module = importlib.import_module(dotted)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if obj.__module__ != module.__name__:  # imported from elsewhere
                continue
            names.append(f"{module.__name__}.{name}")
            if not inspect.isclass(obj):
                continue
            for attr, member in vars(obj).items():  # defined on the class itself, not inherited
                if attr.startswith("_"):  # dunders (dataclass-generated or not) and private helpers
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, (property, functools.cached_property)):
                    names.append(f"{module.__name__}.{name}.{attr}")
    return names


NAMES = public_objects()


def test_the_collection_sees_the_core_api():
    """The walk finds functions, classes, methods and properties (a broken walk would pass vacuously)."""
    assert len(NAMES) > 100
    assert {"configs", "tasks", "model", "train", "checkpoint", "store", "metrics", "fourier", "partition",
            "baselines", "experiments", "verdicts", "cli"} <= set(CORE)
    for name in ("memgen.configs.RunConfig", "memgen.configs.RunConfig.replace", "memgen.model.Weights.width",
                 "memgen.train.Run.data",
                 "memgen.store.RunStore.sweep", "memgen.train.train_batch", "memgen.cli.main"):
        assert name in NAMES
    assert not any(n.rsplit(".", 1)[-1].startswith("_") for n in NAMES)
    assert "memgen.train.atomic_save" not in NAMES  # imported names belong to their own module


def test_the_collection_sees_the_book_layer():
    """The book layer's modules are walked too, with the same rules (imported names left to their module)."""
    book = [n for n in NAMES if n.startswith("memgen.book.")]
    assert len(book) > 100
    assert {"bookgen", "checks", "diagnostics", "findings", "optimizers", "plots", "prefill", "prior_work",
            "report", "shipped", "tables", "widgets"} <= set(BOOK)
    for name in ("memgen.book.findings.Findings", "memgen.book.findings.scaling", "memgen.book.plots.slider_figure",
                 "memgen.book.shipped.section", "memgen.book.prefill.Stopped", "memgen.book.bookgen.main"):
        assert name in NAMES
    assert "memgen.book.diagnostics.series_steps" not in NAMES  # imported from memgen.diagnostics
    assert "memgen.book.findings.Setup" not in NAMES  # imported from memgen.experiments


def test_the_check_catches_a_bad_docstring():
    """The checked codes flag an undocumented parameter, one without a type and a missing Returns."""

    def add(a, b):
        """Add.

        Parameters
        ----------
        a
            First.
        """
        return a + b

    assert {"PR01", "PR04", "RT01"} <= {e.split()[0] for e in errors_of(get_doc_object(add))}


def errors_of(target):
    """The CODES numpydoc reports for a dotted name or a numpydoc doc object, as "CODE message" lines."""
    return [f"{code} {message}" for code, message in validate(target)["errors"] if code in CODES]


def undocumented_defaults(target):
    """Parameters with a default whose documented type does not say it (``name : type, default=...``).

    ``optional`` is accepted too; parameters numpydoc already reports as missing (PR01) are skipped.
    """
    obj = target if not isinstance(target, str) else Validator._load_obj(target)
    if isinstance(obj, (property, functools.cached_property)):
        return []
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # no introspectable signature
        return []
    documented = Validator(get_doc_object(obj)).doc_all_parameters
    return [f"DEFAULT parameter {name!r} has a default ({param.default!r}) that its type line does not give"
            for name, param in signature.parameters.items()
            if param.default is not inspect.Parameter.empty and name in documented
            and not any(word in documented[name][0] for word in ("default", "optional"))]


def test_the_default_check_catches_a_missing_default():
    def scale(x, factor=2.0):
        """Scale.

        Parameters
        ----------
        x : float
            The value.
        factor : float
            The factor.

        Returns
        -------
        float
            The product.
        """
        return x * factor

    assert [e.split("'")[1] for e in undocumented_defaults(scale)] == ["factor"]
    scale.__doc__ = scale.__doc__.replace("factor : float", "factor : float, default=2.0")
    assert undocumented_defaults(scale) == []


@pytest.mark.parametrize("name", NAMES)
def test_numpydoc(name):
    errors = errors_of(name) + undocumented_defaults(name)
    assert not errors, f"{name}:\n  " + "\n  ".join(errors)
