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


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    """sphinx-thebe registers its inline config script once per read pass; a page that includes
    it twice logs "Identifier 'THEBE_JS_URL' has already been declared". Keep each script once."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        # the same file or inline body (filename None or ""), whatever its priority
        attrs = tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items()))
        key = (str(getattr(js, "filename", js) or ""), attrs)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.add_js_file("plotly.min.js")
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _write_plotly)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
