"""Ship the installed plotly.js with the book, once, in _static (no CDN, works offline).

Chapters emit figures as a div + Plotly.newPlot call (memgen.plots.use_book_renderer); this
extension makes every page load _static/plotly.min.js, written at the end of the build from the
installed plotly package, so its version always matches.
"""

from pathlib import Path


def _write_plotly(app, exc):
    if exc is None and app.builder.format == "html":
        from plotly.offline import get_plotlyjs

        out = Path(app.outdir) / "_static" / "plotly.min.js"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(get_plotlyjs(), encoding="utf-8")


def setup(app):
    app.add_js_file("plotly.min.js")
    app.connect("build-finished", _write_plotly)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
