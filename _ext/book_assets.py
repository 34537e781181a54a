"""Ship the installed plotly.js with the book, once, in _static (no CDN, works offline).

Chapters emit figures as a div + Plotly.newPlot call (memgen.plots.use_book_renderer); this
extension makes every page load _static/plotly.min.js, written at the end of the build from the
installed plotly package, so its version always matches. It also ships the book's few CSS rules
(_static/memgen.css): the introduction's findings table as one card per claim on a phone, its tally
set closer there, and a shadow at the edge of a table that scrolls sideways; one script
(_static/memgen.js) that makes the menu buttons work on a phone; and a redirect page at each
address a chapter used to have.
"""

from pathlib import Path

#: On a narrow screen the findings table (memgen.book.shipped.claims_table, in a ``claims-table``
#: container) becomes one card per claim: every cell a full-width line, the verdict columns named;
#: the tally above it (``tally-table``) keeps its columns, set closer.
CSS = """
@media (max-width: 720px) {
  .claims-table table, .claims-table tbody, .claims-table tr, .claims-table td { display: block; width: 100%; }
  .claims-table thead { display: none; }
  .claims-table tr { border-top: 2px solid var(--pst-color-border, #ccc); padding: 0.4em 0; }
  .claims-table td { border: none; padding: 0.1em 0.2em; }
  .claims-table td:nth-of-type(1) { font-weight: bold; }
  .claims-table td:nth-of-type(3)::before { content: "shipped results: "; font-style: italic; }
  .claims-table td:nth-of-type(4)::before { content: "this build: "; font-style: italic; }
}
/* the introduction's tally (memgen.book.report.tally, in a ``tally-table`` container): its
   columns (up to ten) set closer on a phone, so that more of them fit before it scrolls */
@media (max-width: 720px) {
  .tally-table table { font-size: 0.8em; }
  .tally-table th, .tally-table td { padding: 0.3em 0.35em; }
}
/* a table wider than its column scrolls sideways: shadows at the edges say there is more */
.pst-scrollable-table-container {
  background:
    linear-gradient(to right, var(--pst-color-background, #fff) 30%, transparent) left center,
    linear-gradient(to left, var(--pst-color-background, #fff) 30%, transparent) right center,
    radial-gradient(farthest-side at 0 50%, rgba(0, 0, 0, 0.25), transparent) left center,
    radial-gradient(farthest-side at 100% 50%, rgba(0, 0, 0, 0.25), transparent) right center;
  background-repeat: no-repeat;
  background-size: 40px 100%, 40px 100%, 14px 100%, 14px 100%;
  background-attachment: local, local, scroll, scroll;
}
/* display math wider than a phone scrolls instead of being cut */
mjx-container[display="true"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
"""

#: pydata-sphinx-theme 0.17 wires only the first ``.primary-toggle`` / ``.secondary-toggle`` on the
#: page, which sphinx-book-theme hides on a phone; its visible buttons then do nothing
#: (pydata-sphinx-theme issue 2451). On a narrow screen a click on any other one is passed on.
JS = """
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of ["primary-toggle", "secondary-toggle"]) {
    const [wired, ...others] = document.querySelectorAll("." + kind);
    for (const button of others) {
      button.addEventListener("click", (event) => {
        if (window.matchMedia("(max-width: 991.98px)").matches && !document.querySelector("dialog[open]")) {
          event.preventDefault();
          event.stopPropagation();
          wired.click();
        }
      });
    }
  }
});
"""


#: Old page -> its chapter's page now (relative to the old one): links to a renamed chapter keep working.
REDIRECTS = {"book/08_explorer.html": "17_explorer.html"}

REDIRECT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Moved</title>
<link rel="canonical" href="{to}"><meta http-equiv="refresh" content="0; url={to}">
<script>location.replace("{to}" + location.hash)</script></head>
<body><p>This page has moved to <a href="{to}">{to}</a>.</p></body></html>
"""


def _write_static(app, exc):
    """At the end of an HTML build: _static/plotly.min.js (from the installed plotly), memgen.css,
    memgen.js and the :data:`REDIRECTS` pages."""
    if exc is None and app.builder.format == "html":
        from plotly.offline import get_plotlyjs

        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
        (static / "memgen.css").write_text(CSS, encoding="utf-8")
        (static / "memgen.js").write_text(JS, encoding="utf-8")
        for old, new in REDIRECTS.items():
            page = Path(app.outdir) / old  # also replaces a stale page of that name from an older build
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(REDIRECT_PAGE.format(to=new), encoding="utf-8")


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
    app.add_css_file("memgen.css")
    app.add_js_file("memgen.js")
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _write_static)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
