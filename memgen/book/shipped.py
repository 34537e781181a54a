"""The "at the paper's scale" section of a chapter: results memgen trained elsewhere (a GPU) and
shipped under ``results/<profile>/``, read without training (see :mod:`memgen.results`).

A chapter calls :func:`records` with its ``results`` parameter (``"paper"`` in the book; the
test build points it at the small CPU-produced ``"test"`` results so that the same code runs),
shows :func:`banner` (where the numbers come from, or that they have not been produced yet) and
then draws its headline figure from the records, which have the keys of
:func:`memgen.experiments.table` rows.
"""

from __future__ import annotations

from typing import Any

from IPython.display import Markdown

from ..results import load, provenance


def records(source: str, **where: Any) -> list[dict[str, Any]]:
    """Shipped records of profile ``source`` whose fields equal ``where`` (e.g. ``task="add"``)."""
    return [r for r in load(source) if all(r.get(k) == v for k, v in where.items())]


def banner(source: str, recs: list[dict[str, Any]]) -> Markdown:
    """A note saying where the shipped numbers below come from, or how to produce them."""
    if not recs:
        return Markdown(
            f":::{{note}} Results at the `{source}` scale are not shipped yet\n"
            f"Nothing in `results/{source}/` matches this chapter. They are produced on a GPU with "
            f"`python -m memgen produce --profile {source} --device cuda` (resumable) and committed; "
            "until then the section below, trained now at CPU scale, is all this chapter shows.\n:::")
    kind = "CPU-scale test results, not the paper's scale" if source != "paper" else "the paper's scale"
    return Markdown(f":::{{note}} Shipped results ({kind})\n{provenance(recs)}. Read from `results/{source}/`, "
                    "checksummed; nothing is trained here.\n:::")


def section(chapter: str, source: str = "paper") -> None:
    """Show a chapter's shipped-results section: where the numbers come from, then (when results
    at ``source`` are shipped) the chapter's headline figure and verdict box drawn from them.

    Parameters
    ----------
    chapter : str
        The chapter's notebook stem, e.g. ``"02_scaling"``.
    source : str, default="paper"
        The shipped profile to read (``results/<source>/``); the test build uses ``"test"``.
    """
    from IPython.display import display

    recs = records(source) if source else []
    display(banner(source, recs))
