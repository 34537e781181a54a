"""Small display helpers for chapters: markdown tables, verdict boxes and the findings table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from IPython.display import Markdown

from ..verdicts import Verdict


def _fmt(v: Any) -> str:
    """One table cell: None and NaN as "–", booleans as yes / no, integers (and whole floats
    above 1, e.g. a step count stored as a float) as integers, other floats with 3 decimals."""
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return "–"
        if v.is_integer() and abs(v) > 1:
            return str(int(v))
        return f"{v:.3f}"
    if isinstance(v, str) and v.strip().lower() in ("nan", "none"):
        return "–"
    return str(v).replace("|", "\\|").replace("\n", " ")


def num(v: Any, spec: str = ".3f") -> str:
    """A number for a line of text: ``format(v, spec)``, or "–" where ``v`` is None or NaN (an
    accuracy on an empty subset, e.g. the noisy labels at α = 0).

    Parameters
    ----------
    v : Any
        The value; one that is not a number is returned as ``str(v)``.
    spec : str, default=".3f"
        The format specification.

    Returns
    -------
    str
        The formatted number; "–" for None, NaN or an infinity.
    """
    if v is None:
        return "–"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return format(f, spec) if math.isfinite(f) else "–"


def table(rows: Sequence[dict[str, Any]], columns: dict[str, str] | None = None) -> Markdown:
    """A markdown table of ``rows`` ({key: header} picks and names the columns).

    Parameters
    ----------
    rows : list of dict
        The rows; a missing key is an empty ("–") cell. None and NaN show as "–", booleans as
        yes / no, whole floats above 1 as integers, other floats with 3 decimals.
    columns : dict of str to str or None, default=None
        Column keys to their headers, in table order; None: every key of the first row, as its own
        header.

    Returns
    -------
    IPython.display.Markdown
        The table.
    """
    if not rows and not columns:
        raise ValueError("rows=[] with columns=None is not allowed; give rows, or the columns of the empty table")
    columns = columns or {k: k for k in rows[0]}
    head = "| " + " | ".join(columns.values()) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(k)) for k in columns) + " |\n" for r in rows)
    return Markdown(head + body)


# text symbols every font has (emoji render as empty boxes where no emoji font is installed)
ICONS = {"Reproduced": "✓", "Not shown": "–", "Contradicted": "✗"}


def verdict_box(*verdicts: Verdict, title: str = "Verdict") -> Markdown:
    """An admonition (CSS class ``verdict``) with one line per judged claim.

    Each line reads ``<verdict>: <claim>. <evidence> (<settings>)``; the verdict word is one of
    Reproduced, Not shown, Contradicted (see :mod:`memgen.verdicts`).

    Parameters
    ----------
    *verdicts : Verdict
        The judged claims, in display order.
    title : str, default="Verdict"
        The admonition's title.

    Returns
    -------
    IPython.display.Markdown
        The admonition in MyST markdown.
    """
    lines = [f":::{{admonition}} {title}", ":class: verdict", ""]
    for v in verdicts:
        where = f" *({v.settings})*" if v.settings else ""
        lines.append(f"- {ICONS[v.verdict]} **{v.verdict}**: {v.claim}. {v.evidence}.{where}")
    lines.append(":::")
    return Markdown("\n".join(lines))


def verdict_counts(entries: Sequence[tuple[str, str, Any]]) -> dict[str, int]:
    """How many claims of ``entries`` got each verdict (every verdict word present, zeros included).

    Parameters
    ----------
    entries : list of (str, str, Findings)
        (document, title, findings) as :func:`memgen.book.findings.book_findings` returns them.

    Returns
    -------
    dict of str to int
        The number of verdicts by verdict word.
    """
    counts = dict.fromkeys(ICONS, 0)
    for _, _, f in entries:
        for v in f.verdicts.values():
            counts[v.verdict] += 1
    return counts
