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


def table(rows: Sequence[dict[str, Any]], columns: dict[str, str] | None = None, container: str = "") -> Markdown:
    """A markdown table of ``rows`` ({key: header} picks and names the columns).

    Parameters
    ----------
    rows : list of dict
        The rows; a missing key is an empty ("–") cell. None and NaN show as "–", booleans as
        yes / no, whole floats above 1 as integers, other floats with 3 decimals.
    columns : dict of str to str or None, default=None
        Column keys to their headers, in table order; None: every key of the first row, as its own
        header.
    container : str, default=""
        A CSS class to wrap the table in (a MyST ``container``), for the book's stylesheet; "": none.

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
    return Markdown(f":::{{container}} {container}\n{head}{body}:::\n" if container else head + body)


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


#: The kinds of claim the introduction tallies apart, in its order.
CLAIM_KINDS = ("Liu & Lu's claims", "the book's controls", "beyond the paper", "other papers (chapters 12–16)")


def claim_kind(doc: str, claim: str) -> str:
    """Which of :data:`CLAIM_KINDS` a claim is.

    Parameters
    ----------
    doc : str
        The chapter's document (``05_frequency_filtration``, ``generated/05_..._mul``).
    claim : str
        The claim's text (the book marks its own checks ``control:`` and ``beyond the paper:``).

    Returns
    -------
    str
        One of :data:`CLAIM_KINDS`.
    """
    if doc.rsplit("/", 1)[-1][:2] in {"12", "13", "14", "15", "16"}:
        return CLAIM_KINDS[3]
    if claim.startswith("control:"):
        return CLAIM_KINDS[1]
    if claim.startswith("beyond the paper:"):
        return CLAIM_KINDS[2]
    return CLAIM_KINDS[0]


def tally(entries: Sequence[tuple[str, str, Any]], shipped: dict[str, Any]) -> list[dict[str, Any]]:
    """Verdicts counted by kind of claim, for the shipped results and for this build.

    Parameters
    ----------
    entries : list of (str, str, Findings)
        (document, title, findings) of this build (:func:`memgen.book.findings.book_findings`).
    shipped : dict of str to Findings or None
        The shipped findings by document (:func:`memgen.book.shipped.book_shipped`).

    Returns
    -------
    list of dict
        One row per kind present and a last row for all: the number of claims, then each
        verdict's count on the shipped results (none without ``shipped``; "not shipped" only
        when some are not), then this build's ("not judged" only when some claims are judged on the
        shipped results alone).
    """
    ship, build = "shipped", "this build"
    only = f"{build}: not judged"  # a claim judged on the shipped results only
    cols = [f"{ship} {ICONS[w]}" for w in ICONS] + [f"{ship}: not shipped"] + [f"{build} {ICONS[w]}" for w in ICONS]
    cols.append(only)
    rows = {k: dict.fromkeys(["claims", "count", *cols], 0) for k in (*CLAIM_KINDS, "all")}
    for doc, _, f in entries:
        sf = shipped.get(doc)
        pairs = [(v, None if sf is None else sf.verdicts.get(key)) for key, v in f.verdicts.items()]
        pairs += [(None, sv) for key, sv in ({} if sf is None else sf.verdicts).items() if key not in f.verdicts]
        for v, sv in pairs:
            for kind in (claim_kind(doc, (v or sv).claim), "all"):
                r = rows[kind]
                r["count"] += 1
                r[f"{ship}: not shipped" if sv is None else f"{ship} {ICONS[sv.verdict]}"] += 1
                r[only if v is None else f"{build} {ICONS[v.verdict]}"] += 1
    for kind, r in rows.items():
        r["claims"] = kind
    out = [r for r in rows.values() if r["count"]]
    if not shipped:  # no shipped results: no shipped columns
        drop = [c for c in cols if c.startswith(ship)]
    elif not rows["all"][f"{ship}: not shipped"]:  # all shipped: no "not shipped" column
        drop = [f"{ship}: not shipped"]
    else:
        drop = []
    if not rows["all"][only]:  # every claim judged by this build too
        drop.append(only)
    for r in out:
        for c in drop:
            del r[c]
    return out
