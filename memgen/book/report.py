"""Small display helpers for chapters: markdown tables and computed verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from IPython.display import Markdown


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
