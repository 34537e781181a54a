"""The book layer: figures and the book renderer, live widgets, verdict boxes and tables,
every chapter's judged claims (``findings``: one function per chapter, shared with the
introduction's findings table), hidden finding checks, per-chapter tables and papermill staging.

This is the only part of memgen that needs the notebook stack (plotly, ipywidgets, IPython,
PyYAML, papermill); the training core (``memgen``) never imports it. Importing it switches
plotly to the book renderer, so a chapter's figures appear in the built book::

    import memgen as mg
    import memgen.book as mb
"""

from . import checks, findings, plots, report, shipped, tables, widgets

plots.use_book_renderer()

__all__ = ["checks", "findings", "plots", "report", "shipped", "tables", "widgets"]
