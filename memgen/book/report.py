"""Small display helpers for chapters: markdown tables and computed verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from IPython.display import Markdown

from ..verdicts import Verdict


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.3f}"
    return str(v)


def table(rows: Sequence[dict[str, Any]], columns: dict[str, str] | None = None) -> Markdown:
    """A markdown table of ``rows`` ({key: header} picks and names the columns)."""
    columns = columns or {k: k for k in rows[0]}
    head = "| " + " | ".join(columns.values()) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(k)) for k in columns) + " |\n" for r in rows)
    return Markdown(head + body)


def verdict(held: bool, claim: str, evidence: str, profile: str) -> Markdown:
    """State plainly whether this build reproduced ``claim``, with the numbers behind it."""
    if held:
        return Markdown(f"**Reproduced here** (profile `{profile}`): {claim}. {evidence}")
    return Markdown(f"**Not shown by this build** (profile `{profile}`): {claim}. {evidence} "
                    "The paper's own settings (`profile='paper'`, on a GPU) may be needed to see it.")


_ICON = {"Reproduced": "✅", "Not shown": "➖", "Contradicted": "❌"}


def verdict_box(*verdicts: Verdict, title: str = "Verdict") -> Markdown:
    """An admonition (CSS class ``verdict``) with one line per judged claim.

    Each line reads ``<verdict>: <claim>. <evidence> (<settings>)``; the verdict word is one of
    Reproduced, Not shown, Contradicted (see :mod:`memgen.verdicts`).
    """
    lines = [f":::{{admonition}} {title}", ":class: verdict", ""]
    for v in verdicts:
        where = f" *({v.settings})*" if v.settings else ""
        lines.append(f"- {_ICON[v.verdict]} **{v.verdict}**: {v.claim}. {v.evidence}.{where}")
    lines.append(":::")
    return Markdown("\n".join(lines))
