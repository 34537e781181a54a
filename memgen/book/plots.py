"""Plotly figures for the book, and the renderer that makes them appear in it.

plotly >= 6 renders only the ``application/vnd.plotly.v1+json`` mimetype inside a kernel, which a
Jupyter Book build cannot display (the figure silently vanishes). :func:`use_book_renderer` adds
a ``book`` renderer that also emits ``text/html`` (a div and a ``Plotly.newPlot`` call, no
plotly.js; the book ships plotly.js once via ``_ext/book_assets.py``) and makes
``plotly_mimetype+book`` the default, so JupyterLab and the book both show the figure.

Sliders in a static page cannot call Python, so :func:`slider_figure` puts the traces of every
slider position into one figure and lets the slider toggle their visibility.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
PART_COLORS = {"full": "#7f7f7f", "G": "#2ca02c", "R": "#d62728"}
#: marker symbols, one per series in order, so that series drawn on top of each other stay apart
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "star", "triangle-down", "pentagon")
#: plotly's display options for every book figure: no mode bar (on a phone it sits on the title;
#: zoom by dragging, double-click resets), no plotly logo, resizes with the page
CONFIG = {"displayModeBar": False, "displaylogo": False, "responsive": True}
#: the y range of an accuracy axis: 0 to 1, a little room around it so markers at 0 and 1 show
ACC_RANGE = (-0.03, 1.05)
#: a title longer than this wraps onto a second line (a phone column is about 390 px)
TITLE_CHARS = 36


class _BookHTML(MimetypeRenderer):
    """HTML div + newPlot call only; the page (book) or JupyterLab supplies plotly.js."""

    def to_mimebundle(self, fig_dict):
        return {"text/html": pio.to_html(
            fig_dict, config=CONFIG, include_plotlyjs=False, include_mathjax=False, full_html=False,
            default_width="100%", default_height=fig_dict.get("layout", {}).get("height") or 450,
            validate=False)}


def use_book_renderer() -> None:
    """Register the ``book`` renderer and make ``plotly_mimetype+book`` the default."""
    pio.renderers["book"] = _BookHTML()
    pio.renderers.default = "plotly_mimetype+book"


def _wrap(title: str, width: int = TITLE_CHARS, sep: str = " ") -> str:
    """Break each line of a title (lines are split at ``<br>``) into lines of at most ``width``
    characters at ``sep``; a ``<sup>`` subtitle line, in a smaller font, into lines of 1.4 times that."""
    out = []
    for line in title.split("<br>"):
        sup = line.startswith("<sup>") and line.endswith("</sup>") and line.count("<sup>") == 1
        text = line[5:-6] if sup else line
        parts = _wrap_line(text, int(width * 1.4) if sup else width, sep)
        out += [f"<sup>{x}</sup>" for x in parts] if sup else parts
    return "<br>".join(out)


def _wrap_line(text: str, width: int, sep: str) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken at ``sep`` (a longer word stays whole)."""
    lines, cur = [], ""
    for word in text.split(sep):
        if cur and len(cur) + len(sep) + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur}{sep}{word}" if cur else word
    return lines + [cur]


def _is_accuracy(ytitle: str) -> bool:
    return "accuracy" in ytitle.lower()


def _layout(fig: go.Figure, title: str, xtitle: str = "", ytitle: str = "", **kw: Any) -> go.Figure:
    """The book's layout: a short title at the top left (wrapped), the legend as rows below the
    plot (it fits a phone's column), axis titles that never clip, and an accuracy axis (a
    ``ytitle`` naming accuracy) from 0 to 1 unless ``yaxis_range`` is given (``None``: automatic)."""
    title = _wrap(title)
    n_lines = title.count("<br>") + 1
    if "yaxis_range" in kw:
        if kw["yaxis_range"] is None:
            kw.pop("yaxis_range")
    elif _is_accuracy(ytitle):
        kw["yaxis_range"] = list(ACC_RANGE)
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", xref="paper", y=1, yref="container", yanchor="top",
                   pad=dict(t=10), font=dict(size=15)),
        xaxis_title=xtitle, yaxis_title=ytitle, template="plotly_white",
        margin=dict(l=10, r=10, t=24 + 20 * n_lines, b=10, autoexpand=True),
        legend=dict(orientation="h", x=0, xanchor="left", y=0, yanchor="bottom", yref="container",
                    font=dict(size=12), itemwidth=30),
        **kw)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    _log_ticks(fig)
    return fig


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _log_ticks(fig: go.Figure, axes: str = "xy") -> go.Figure:
    """Label every logarithmic axis of ``fig`` with the values present in its data (the widths,
    the noise levels) when there are few of them, else with the powers of ten; never plotly's
    "2 3 … 100 2 3"."""
    for ax in axes:
        axis = fig.layout[f"{ax}axis"]
        if axis.type != "log" or axis.tickvals is not None:
            continue
        vals = set()
        for tr in fig.data:
            for v in (getattr(tr, ax, None) or ()):
                if isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and v > 0:
                    vals.add(float(v))
        if vals and len(vals) <= 14:
            ticks = sorted(vals)
            axis.update(tickvals=ticks, ticktext=[_num(v) for v in ticks], tickmode="array")
        else:
            axis.update(dtick=1, tickformat="~s", minor=dict(ticks="outside", showgrid=True))
    return fig


def set_log_x(fig: go.Figure) -> go.Figure:
    """Make ``fig``'s x-axis logarithmic, labelled with the x values present (see :func:`_log_ticks`).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        The figure (changed in place).

    Returns
    -------
    plotly.graph_objects.Figure
        ``fig``.
    """
    fig.update_xaxes(type="log", tickvals=None, ticktext=None)
    return _log_ticks(fig, "x")


#: per series, in drawing order: line width, line opacity, marker size and marker opacity. The
#: first series is drawn widest and translucent, each later one narrower and more opaque on top of
#: it, so that a series hidden under a later one (two curves at the same accuracy) still shows as a
#: band around it; the marker symbols (:data:`SYMBOLS`) tell them apart in the legend
LINE_WIDTHS = (7.0, 4.0, 2.5, 1.8)
LINE_ALPHAS = (0.4, 0.7, 1.0, 1.0)
MARKER_SIZES = (14, 10, 7, 6)
MARKER_ALPHAS = (0.55, 0.8, 1.0, 1.0)
#: a series with more points than this (a training history) gets markers half the size
DENSE = 30


def _rgba(color: str, alpha: float) -> str:
    """``#rrggbb`` with an opacity, as ``rgba(r, g, b, alpha)`` (other colour strings unchanged)."""
    if alpha >= 1 or not (color.startswith("#") and len(color) == 7):
        return color
    r, g, b = (int(color[k:k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha:g})"


def series_style(i: int, dash: str | None = None) -> dict[str, Any]:
    """Line and marker of the i-th series: its own marker symbol, and a line and marker that
    shrink with i (:data:`LINE_WIDTHS`, :data:`MARKER_SIZES`), so that a series drawn over an
    earlier one leaves it visible around it.

    Parameters
    ----------
    i : int
        The series' index in drawing order (0: first).
    dash : str or None, default=None
        The line's plotly dash style (None: solid).

    Returns
    -------
    dict
        ``line`` (dash, width) and ``marker`` (symbol, size, opacity), keyword arguments of a
        ``go.Scatter``.
    """
    k = min(i, len(LINE_WIDTHS) - 1)
    return dict(line=dict(dash=dash, width=LINE_WIDTHS[k]),
                marker=dict(symbol=SYMBOLS[i % len(SYMBOLS)], size=MARKER_SIZES[k], opacity=MARKER_ALPHAS[k]))


def _styled(i: int, color: str, dash: str | None = None, n: int = 0) -> dict[str, Any]:
    """:func:`series_style` in ``color``: the line of an early series translucent (:data:`LINE_ALPHAS`),
    smaller markers where the series has more than :data:`DENSE` points (``n``)."""
    st = series_style(i, dash)
    if n > DENSE:
        st["marker"]["size"] = max(4, st["marker"]["size"] // 2)
    st["line"]["color"] = _rgba(color, LINE_ALPHAS[min(i, len(LINE_ALPHAS) - 1)])
    st["marker"]["color"] = color
    return st


def slider_figure(frames: Sequence[tuple[str, Sequence[go.BaseTraceType]]], title: str,
                  slider_label: str, active: int = 0, **layout: Any) -> go.Figure:
    """One figure whose slider switches between groups of traces.

    ``frames`` is a list of (step label, traces); the slider's step i shows only group i.

    Parameters
    ----------
    frames : list of (str, list of plotly trace)
        The slider steps: a label and the traces it shows.
    title : str
        Figure title.
    slider_label : str
        The slider's name, shown before the current step's label.
    active : int, default=0
        The step shown first.
    **layout : Any
        Passed on to the book's layout (``xtitle``, ``ytitle``, ``height`` (default 540), plotly
        layout properties).

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    fig = go.Figure()
    spans = []
    for i, (_, traces) in enumerate(frames):
        start = len(fig.data)
        for tr in traces:
            tr.visible = i == active
            fig.add_trace(tr)
        spans.append((start, len(fig.data)))
    n = len(fig.data)
    steps = []
    for label, (s, e) in zip((f[0] for f in frames), spans):
        vis = [s <= j < e for j in range(n)]
        steps.append(dict(method="update", label=label, args=[{"visible": vis}]))
    fig.update_layout(sliders=[dict(active=active, steps=steps, currentvalue=dict(prefix=f"{slider_label}: "),
                                    pad=dict(t=50, r=40), x=0.02, len=0.9)])
    layout.setdefault("height", 540)  # the slider and the legend rows sit below the plot
    return _layout(fig, title, **layout)


def lines(x: Sequence, ys: dict[str, Sequence], title: str, xtitle: str, ytitle: str,
          log_x: bool = False, dash: dict[str, str] | None = None, **layout: Any) -> go.Figure:
    """Several named lines over a shared x.

    Parameters
    ----------
    x : sequence
        The shared x values.
    ys : dict of str to sequence
        Legend name -> y values (non-finite values are gaps); the names ``full``, ``G`` and ``R``
        take their part's colour.
    title, xtitle, ytitle : str
        Figure and axis titles.
    log_x : bool, default=False
        Logarithmic x-axis.
    dash : dict of str to str or None, default=None
        Legend name -> plotly dash style.
    **layout : Any
        Further plotly layout properties (``yaxis_range=None``: an automatic accuracy axis).

    Returns
    -------
    plotly.graph_objects.Figure
        The line chart.
    """
    fig = go.Figure()
    for i, (name, y) in enumerate(ys.items()):
        color = PART_COLORS.get(name, COLORS[i % len(COLORS)])
        fig.add_trace(go.Scatter(x=list(x), y=_clean(y), name=name, mode="lines+markers",
                                 **_styled(i, color, (dash or {}).get(name), len(x))))
    if log_x:
        set_log_x(fig)
    return _layout(fig, title, xtitle, ytitle, **layout)


def _clean(y: Sequence) -> list:
    return [None if (v is None or not np.isfinite(v)) else float(v) for v in y]


def history_traces(history: dict[str, list[float]], metrics: dict[str, str],
                   max_points: int = 120) -> list[go.Scatter]:
    """Traces of history metrics over steps ({history key: legend name}), downsampled.

    Parameters
    ----------
    history : dict of str to list of float
        A run's history, with ``step``.
    metrics : dict of str to str
        History key -> legend name.
    max_points : int, default=120
        At most this many points per trace (evenly spaced over the recorded steps).

    Returns
    -------
    list of plotly.graph_objects.Scatter
        One line per metric.
    """
    steps = np.asarray(history["step"])
    keep = np.unique(np.linspace(0, len(steps) - 1, min(max_points, len(steps))).round().astype(int))
    return [go.Scatter(x=steps[keep].tolist(), y=_clean(np.asarray(history[k])[keep]), name=name,
                       mode="lines", line=dict(color=COLORS[i % len(COLORS)], width=max(1.5, 3.5 - 0.7 * i),
                                               dash=("solid", "dash", "dot", "dashdot")[i % 4]))
            for i, (k, name) in enumerate(metrics.items())]


def ff_bar_traces(report: dict[str, dict[str, float]],
                  metrics: dict[str, str] | None = None) -> list[go.Bar]:
    """Bar traces of a filtration report (full / G / R) over the chosen metrics.

    Parameters
    ----------
    report : dict of str to dict of str to float
        Part (``full``, ``G``, ``R``) -> metric -> accuracy, as from
        :func:`memgen.fourier.filtration_report`.
    metrics : dict of str to str or None, default=None
        Metric -> x label (None: test, clean train, noisy memorised and noisy true-label accuracy).

    Returns
    -------
    list of plotly.graph_objects.Bar
        One bar series per part.
    """
    metrics = metrics or {"test_acc": "test", "clean_acc": "clean train", "noisy_acc": "noisy (memorised)",
                          "noisy_true_acc": "noisy (true label)"}
    return [go.Bar(x=list(metrics.values()), y=_clean([report[part][k] for k in metrics]), name=part,
                   marker_color=PART_COLORS.get(part)) for part in report]


def label_grid_traces(label_grid: np.ndarray, role_grid: np.ndarray) -> list[go.BaseTraceType]:
    """Heatmap of the labels a∘b mod p as trained on, with corrupted cells marked by crosses.

    Parameters
    ----------
    label_grid : numpy.ndarray
        (p, p) labels as the network sees them (:meth:`memgen.tasks.Dataset.label_grid`).
    role_grid : numpy.ndarray
        (p, p) pair roles: 0 test, 1 clean train, 2 noisy train (:meth:`memgen.tasks.Dataset.role_grid`).

    Returns
    -------
    list of plotly trace
        The heatmap, the test pairs (open circles) and the corrupted training labels (crosses).
    """
    ys, xs = np.nonzero(role_grid == 2)
    ts, tt = np.nonzero(role_grid == 0)
    return [
        go.Heatmap(z=label_grid.tolist(), colorscale="Viridis", colorbar=dict(title="label"),
                   hovertemplate="a=%{y} b=%{x} label=%{z}<extra></extra>"),
        go.Scatter(x=tt.tolist(), y=ts.tolist(), mode="markers", name="test pair (true label)",
                   marker=dict(symbol="circle-open", size=4, color="white", opacity=0.5)),
        go.Scatter(x=xs.tolist(), y=ys.tolist(), mode="markers", name="corrupted training label",
                   marker=dict(symbol="x", size=5, color="red")),
    ]


def histogram_bars(counts: np.ndarray, title: str, xtitle: str) -> go.Figure:
    """Bars of counts over their index (e.g. neurons per dominant frequency).

    Parameters
    ----------
    counts : numpy.ndarray
        One count per index.
    title, xtitle : str
        Figure and x-axis titles (the y-axis is "neurons").

    Returns
    -------
    plotly.graph_objects.Figure
        The bar chart.
    """
    fig = go.Figure(go.Bar(x=list(range(len(counts))), y=np.asarray(counts).tolist(), marker_color=COLORS[0]))
    return _layout(fig, title, xtitle, "neurons")


# ---------------------------------------------------------------------------- chapter figures
def testbed_figure(datasets: dict[float, Any], title: str) -> go.Figure:
    """Label tables a∘b mod p as trained on, one slider step per noise level.

    Parameters
    ----------
    datasets : dict of float to Dataset
        Noise level -> its dataset (:func:`memgen.tasks.make_dataset`).
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure (a rows, b columns), first noise level shown.
    """
    frames = [(f"{a:g}", label_grid_traces(d.label_grid(), d.role_grid())) for a, d in datasets.items()]
    fig = slider_figure(frames, title, "noise α", xtitle="b", ytitle="a", height=620)
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    return fig


def grouped_lines(rows: Sequence[dict], x: str, y: str, group: str, title: str, xtitle: str, ytitle: str,
                  log_x: bool = False, name_fmt: str = "{}") -> go.Figure:
    """One line of y against x per value of ``group``.

    Parameters
    ----------
    rows : list of dict
        Records (one seed).
    x, y : str
        Record keys of the axes.
    group : str
        Record key with one line per value.
    title, xtitle, ytitle : str
        Figure and axis titles.
    log_x : bool, default=False
        Logarithmic x-axis.
    name_fmt : str, default="{}"
        Legend name of a line, formatted with its ``group`` value.

    Returns
    -------
    plotly.graph_objects.Figure
        The line chart.
    """
    fig = go.Figure()
    for i, val in enumerate(sorted({r[group] for r in rows}, key=str)):
        sub = sorted((r for r in rows if r[group] == val), key=lambda r: r[x])
        fig.add_trace(go.Scatter(x=[r[x] for r in sub], y=_clean([r[y] for r in sub]), name=name_fmt.format(val),
                                 mode="lines+markers", **_styled(i, COLORS[i % len(COLORS)])))
    if log_x:
        set_log_x(fig)
    return _layout(fig, title, xtitle, ytitle)


def history_slider(runs: Sequence[Any], metrics: dict[str, str], title: str, label: Any,
                   ytitle: str = "accuracy", log_x: bool = False) -> go.Figure:
    """Training curves of several runs, one slider step per run (``label(run)`` names it).

    Parameters
    ----------
    runs : list of Run
        Runs with a history.
    metrics : dict of str to str
        History key -> legend name.
    title : str
        Figure title.
    label : callable
        Run -> its slider label.
    ytitle : str, default="accuracy"
        y-axis title.
    log_x : bool, default=False
        Logarithmic step axis.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure, last run shown first.
    """
    frames = [(label(run), history_traces(run.history, metrics)) for run in runs]
    fig = slider_figure(frames, title, "run", active=len(frames) - 1, xtitle="step", ytitle=ytitle)
    if log_x:
        set_log_x(fig)
    return fig


def spectrum_figure(spectrum: np.ndarray, freqs: np.ndarray, title: str) -> go.Figure:
    """Per-neuron power over frequency (rows sorted by dominant frequency).

    Parameters
    ----------
    spectrum : numpy.ndarray
        (M, K) power of each neuron per frequency 0..K-1; the DC column 0 is not drawn.
    freqs : numpy.ndarray
        (M,) dominant frequency of each neuron (the sort key of the rows).
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        The heatmap.
    """
    order = np.argsort(freqs, kind="stable")
    z = spectrum[order][:, 1:]
    fig = go.Figure(go.Heatmap(z=z.round(4).tolist(), x=list(range(1, z.shape[1] + 1)), colorscale="Blues",
                               colorbar=dict(title="power")))
    return _layout(fig, title, "frequency ω", "neuron (sorted by dominant ω)", height=520)


def ff_slider(reports: dict[str, dict[str, dict[str, float]]], title: str, slider_label: str) -> go.Figure:
    """Full / G / R bars over the accuracy subsets, one slider step per report.

    Parameters
    ----------
    reports : dict of str to dict
        Slider label -> filtration report (see :func:`ff_bar_traces`).
    title : str
        Figure title.
    slider_label : str
        The slider's name.

    Returns
    -------
    plotly.graph_objects.Figure
        The bar chart, last report shown first.
    """
    frames = [(label, ff_bar_traces(rep)) for label, rep in reports.items()]
    fig = slider_figure(frames, title, slider_label, active=len(frames) - 1, ytitle="accuracy",
                        yaxis_range=[0, 1.05])
    fig.update_layout(barmode="group")
    return fig


def scatter(x: Sequence, y: Sequence, title: str, xtitle: str, ytitle: str, log: bool = False) -> go.Figure:
    """A scatter plot.

    Parameters
    ----------
    x, y : sequence
        The points' coordinates.
    title, xtitle, ytitle : str
        Figure and axis titles.
    log : bool, default=False
        Logarithmic x and y axes.

    Returns
    -------
    plotly.graph_objects.Figure
        The scatter plot.
    """
    fig = go.Figure(go.Scatter(x=np.asarray(x).round(5).tolist(), y=np.asarray(y).round(5).tolist(),
                               mode="markers", marker=dict(size=5, color=COLORS[0], opacity=0.6)))
    if log:
        set_log_x(fig)
        fig.update_yaxes(type="log", dtick=1, tickformat="~s")
    return _layout(fig, title, xtitle, ytitle)


# ---------------------------------------------------------------------------- seeds and chance
def chance_label(chance: float) -> str:
    """``chance 1/P`` when ``chance`` is the inverse of an integer P, else ``chance <level>``.

    Parameters
    ----------
    chance : float
        The chance level.

    Returns
    -------
    str
        The label (``chance 1/59``, or the level to 3 significant digits).
    """
    inv = 1 / chance if chance > 0 else 0
    if inv >= 2 and abs(inv - round(inv)) < 1e-6 * inv:
        return f"chance 1/{round(inv)}"
    return f"chance {chance:.3g}"


def add_chance(fig: go.Figure, chance: float, label: str | None = None,
               position: str = "top right", row: int | str = "all", col: int | str = "all") -> go.Figure:
    """A dashed horizontal line at the chance level (e.g. 1/P), labelled on the right
    (``chance 1/P``).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        The figure (changed in place).
    chance : float
        The level.
    label : str or None, default=None
        The annotation; None: ``chance 1/P`` (see :func:`chance_label`).
    position : str, default="top right"
        Where the annotation sits (plotly's ``annotation_position``).
    row, col : int or "all", default="all"
        The subplot to draw in ("all": every one, as plotly's ``add_hline``).

    Returns
    -------
    plotly.graph_objects.Figure
        ``fig``.
    """
    fig.add_hline(y=float(chance), line_dash="dash", line_color="#7f7f7f", line_width=1,
                  annotation_text=label or chance_label(chance), annotation_position=position,
                  annotation_font_color="#7f7f7f", annotation_bgcolor="rgba(255, 255, 255, 0.8)", row=row, col=col)
    return fig


def _range_errors(values: np.ndarray) -> tuple[list, dict[str, Any]]:
    """Mean over seeds (axis 0) and an asymmetric error bar from the lowest to the highest seed."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    ok = np.isfinite(v).any(0)
    safe = np.where(np.isfinite(v), v, np.nan)
    mean = np.full(v.shape[1], np.nan)
    lo, hi = mean.copy(), mean.copy()
    mean[ok] = np.nanmean(safe[:, ok], 0)
    lo[ok], hi[ok] = np.nanmin(safe[:, ok], 0), np.nanmax(safe[:, ok], 0)
    err = dict(type="data", symmetric=False, array=_clean(hi - mean), arrayminus=_clean(mean - lo),
               thickness=1.2, width=3)
    return _clean(mean), err


def seed_traces(x: Sequence, series: dict[str, np.ndarray], dash: dict[str, str] | None = None,
                colors: dict[str, str] | None = None) -> list[go.Scatter]:
    """Mean-over-seeds lines with error bars spanning the seeds' range.

    Parameters
    ----------
    x : sequence
        The shared x values.
    series : dict of str to array
        Legend name -> (seeds, len(x)) array (a 1-D array is one seed); NaN entries are left out.
    dash : dict of str to str or None, default=None
        Legend name -> plotly dash style.
    colors : dict of str to str or None, default=None
        Legend name -> colour (default: the book's palette in order).

    Returns
    -------
    list of plotly.graph_objects.Scatter
        One trace per series.
    """
    traces = []
    for i, (name, vals) in enumerate(series.items()):
        mean, err = _range_errors(vals)
        color = (colors or {}).get(name, COLORS[i % len(COLORS)])
        traces.append(go.Scatter(x=list(x), y=mean, error_y=err, name=name, mode="lines+markers",
                                 **_styled(i, color, (dash or {}).get(name), len(x))))
    return traces


def seed_bars(groups: dict[str, dict[str, Sequence[float]]], title: str, ytitle: str = "accuracy",
              chance: float | None = None, yrange: Sequence[float] | None = (0, 1.05),
              colors: dict[str, str] | None = None, chance_label: str | None = None) -> go.Figure:
    """Grouped bars of the mean over seeds with error bars from the lowest to the highest seed.

    Parameters
    ----------
    groups : dict of str to dict of str to sequence of float
        Series (legend name) -> category (x label) -> one value per seed.
    title : str
        Figure title.
    ytitle : str, default="accuracy"
        y-axis title.
    chance : float or None, default=None
        Draw a dashed chance line at this level.
    yrange : sequence of float or None, default=(0, 1.05)
        y-axis range (None: automatic).
    colors : dict of str to str or None, default=None
        Series -> colour.
    chance_label : str or None, default=None
        The chance line's annotation (e.g. ``chance 1/59``).

    Returns
    -------
    plotly.graph_objects.Figure
        The bar chart.
    """
    fig = go.Figure()
    for i, (name, cats) in enumerate(groups.items()):
        color = (colors or {}).get(name, COLORS[i % len(COLORS)])
        mean, err = _range_errors(np.array([np.asarray(v, dtype=float) for v in cats.values()]).T)
        fig.add_trace(go.Bar(x=list(cats), y=mean, error_y=err, name=name, marker_color=color,
                             offsetgroup=str(i)))
    fig.update_layout(barmode="group")
    _layout(fig, title, "", ytitle)
    if yrange is not None:
        fig.update_yaxes(range=list(yrange))
    if chance is not None:
        add_chance(fig, chance, chance_label, position="top left")
    return fig


# ---------------------------------------------------------------------------- over seeds
def seed_stats(rows: Sequence[dict], x: str, y: str) -> tuple[list, list, list, list]:
    """Mean of ``y`` over the rows sharing each value of ``x`` (the seeds), with the seeds' min
    and max: (xs, means, mins, maxs), sorted by x. Non-finite values are left out.

    Parameters
    ----------
    rows : list of dict
        Records.
    x, y : str
        Record keys: the grouping value and the averaged one.

    Returns
    -------
    xs, means, mins, maxs : list
        The ``x`` values with at least one finite ``y``, and per value the mean, lowest and highest ``y``.
    """
    groups: dict[Any, list[float]] = {}
    for r in rows:
        v = r.get(y)
        if v is not None and np.isfinite(v):
            groups.setdefault(r[x], []).append(float(v))
    xs = sorted(groups)
    return (xs, [float(np.mean(groups[k])) for k in xs], [min(groups[k]) for k in xs], [max(groups[k]) for k in xs])


def _seed_trace(rows: Sequence[dict], x: str, y: str, name: str, color: str, dash: str | None = None,
                i: int = 0, **kw: Any) -> go.Scatter:
    xs, mean, lo, hi = seed_stats(rows, x, y)
    err = dict(type="data", symmetric=False, array=[h - m for h, m in zip(hi, mean)],
               arrayminus=[m - lo_ for m, lo_ in zip(mean, lo)], thickness=1.2, width=4)
    return go.Scatter(x=xs, y=mean, name=name, mode="lines+markers", error_y=err,
                      **_styled(i, color, dash, len(xs)), **kw)


def seed_lines(rows: Sequence[dict], x: str, ys: dict[str, str], title: str, xtitle: str, ytitle: str,
               log_x: bool = False, dash: dict[str, str] | None = None, **layout: Any) -> go.Figure:
    """Lines of the mean over seeds of each ``ys`` key ({key: legend name}) against ``x``, with
    error bars from the lowest to the highest seed.

    Parameters
    ----------
    rows : list of dict
        Records over seeds.
    x : str
        Record key of the x-axis.
    ys : dict of str to str
        Record key -> legend name (``full``, ``G`` and ``R`` take their part's colour).
    title, xtitle, ytitle : str
        Figure and axis titles.
    log_x : bool, default=False
        Logarithmic x-axis.
    dash : dict of str to str or None, default=None
        Record key -> plotly dash style.
    **layout : Any
        Further plotly layout properties (``yaxis_range=None``: an automatic accuracy axis).

    Returns
    -------
    plotly.graph_objects.Figure
        The line chart.
    """
    fig = go.Figure()
    for i, (k, name) in enumerate(ys.items()):
        fig.add_trace(_seed_trace(rows, x, k, name, PART_COLORS.get(name, COLORS[i % len(COLORS)]),
                                  (dash or {}).get(k), i=i))
    if log_x:
        set_log_x(fig)
    return _layout(fig, title, xtitle, ytitle, **layout)


def seed_grouped_lines(rows: Sequence[dict], x: str, y: str, group: str, title: str, xtitle: str, ytitle: str,
                       log_x: bool = False, name_fmt: str = "{}", **layout: Any) -> go.Figure:
    """One line per value of ``group``: the mean of ``y`` over seeds against ``x``, with error
    bars from the lowest to the highest seed.

    Parameters
    ----------
    rows : list of dict
        Records over seeds.
    x, y : str
        Record keys of the axes.
    group : str
        Record key with one line per value.
    title, xtitle, ytitle : str
        Figure and axis titles.
    log_x : bool, default=False
        Logarithmic x-axis.
    name_fmt : str, default="{}"
        Legend name of a line, formatted with its ``group`` value.
    **layout : Any
        Further plotly layout properties (``yaxis_range=None``: an automatic accuracy axis).

    Returns
    -------
    plotly.graph_objects.Figure
        The line chart.
    """
    fig = go.Figure()
    for i, val in enumerate(sorted({r[group] for r in rows}, key=str)):
        sub = [r for r in rows if r[group] == val]
        fig.add_trace(_seed_trace(sub, x, y, name_fmt.format(val), COLORS[i % len(COLORS)], i=i))
    if log_x:
        set_log_x(fig)
    return _layout(fig, title, xtitle, ytitle, **layout)


def seed_width_slider(rows: Sequence[dict], metrics: dict[str, str], title: str, by: str = "noise",
                      dash: dict[str, str] | None = None) -> go.Figure:
    """Metrics against width (log axis), one slider step per value of ``by``; the mean over the
    seeds present, with error bars from the lowest to the highest seed.

    Parameters
    ----------
    rows : list of dict
        Records over seeds with ``width``, ``seed``, ``by`` and the ``metrics`` keys.
    metrics : dict of str to str
        Record key -> legend name.
    title : str
        Figure title.
    by : str, default="noise"
        The record key the slider steps through (a number); the highest value is shown first.
    dash : dict of str to str or None, default=None
        Record key -> plotly dash style.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    frames = []
    for val in sorted({r[by] for r in rows}):
        sub = [r for r in rows if r[by] == val]
        n_seeds = len({r["seed"] for r in sub})
        label = f"{val:g}" + (f" ({n_seeds} seeds)" if n_seeds > 1 else "")
        frames.append((label, [_seed_trace(sub, "width", k, name, COLORS[i % len(COLORS)], (dash or {}).get(k), i=i)
                               for i, (k, name) in enumerate(metrics.items())]))
    fig = slider_figure(frames, title, by, active=len(frames) - 1, xtitle="width M", ytitle="accuracy")
    set_log_x(fig)
    return fig


def seed_array_lines(x: Sequence, series: dict[str, np.ndarray], title: str, xtitle: str, ytitle: str,
                     chance: float | None = None, yrange: Sequence[float] | None = None,
                     dash: dict[str, str] | None = None, colors: dict[str, str] | None = None,
                     log_x: bool = False) -> go.Figure:
    """A figure of :func:`seed_traces`: mean over seeds, error bars over the seeds' range.

    Parameters
    ----------
    x : sequence
        The shared x values.
    series : dict of str to array
        Legend name -> (seeds, len(x)) array.
    title, xtitle, ytitle : str
        Titles.
    chance : float or None, default=None
        Draw a dashed chance line at this level.
    yrange : sequence of float or None, default=None
        y-axis range (None: automatic).
    dash, colors : dict of str to str or None, default=None
        Per-series dash style and colour.
    log_x : bool, default=False
        Logarithmic x-axis.

    Returns
    -------
    plotly.graph_objects.Figure
        The line chart.
    """
    fig = go.Figure(seed_traces(x, series, dash=dash, colors=colors))
    _layout(fig, title, xtitle, ytitle)
    if yrange is not None:
        fig.update_yaxes(range=list(yrange))
    if log_x:
        set_log_x(fig)
    if chance is not None:
        add_chance(fig, chance)
    return fig


def paper_points(x: Sequence, y: Sequence, text: Sequence[str], colors: Sequence[str] | str = "#000000",
                 name: str = "paper") -> list[go.Scatter]:
    """The paper's quoted numbers as crosses, to lay over a figure of this build's numbers.

    Parameters
    ----------
    x, y : sequence
        Positions.
    text : sequence of str
        What each point is (shown on hover).
    colors : str or sequence of str, default="#000000"
        One colour, or one per point.
    name : str, default="paper"
        Legend name.

    Returns
    -------
    list of plotly.graph_objects.Scatter
        One trace.
    """
    return [go.Scatter(x=list(x), y=_clean(y), text=list(text), name=name, mode="markers",
                       hovertemplate="%{text}: %{y:.4f}<extra></extra>",
                       marker=dict(symbol="x", size=11, color=colors if isinstance(colors, str) else list(colors),
                                   line=dict(width=1, color="black")))]


def history_seed_slider(groups: dict[str, Sequence[Any]], metrics: dict[str, str], title: str,
                        ytitle: str = "accuracy", log_x: bool = False, max_points: int = 120) -> go.Figure:
    """Training curves averaged over seeds, one slider step per group of runs ({label: runs of
    the same config but the seed}); error bars span the lowest to the highest seed.

    Parameters
    ----------
    groups : dict of str to sequence of Run
        Slider label -> runs that differ only in their seed (same recorded steps).
    metrics : dict of str to str
        History key -> legend name.
    title : str
        Figure title.
    ytitle : str, default="accuracy"
        y-axis title.
    log_x : bool, default=False
        Logarithmic step axis.
    max_points : int, default=120
        At most this many points per curve (evenly spaced over the recorded steps).

    Returns
    -------
    plotly.graph_objects.Figure
        The figure, last group shown first.
    """
    frames = []
    for label, runs in groups.items():
        steps = np.asarray(runs[0].history["step"])
        keep = np.unique(np.linspace(0, len(steps) - 1, min(max_points, len(steps))).round().astype(int))
        series = {name: np.array([np.asarray(r.history[k], dtype=float)[keep] for r in runs])
                  for k, name in metrics.items()}
        n = len(runs)
        frames.append((label + (f" ({n} seeds)" if n > 1 else ""), seed_traces(steps[keep].tolist(), series)))
    fig = slider_figure(frames, title, "run", active=len(frames) - 1, xtitle="step", ytitle=ytitle)
    if log_x:
        set_log_x(fig)
    return fig


def cosine_fit_figure(vectors: dict[str, np.ndarray], fit: dict[str, np.ndarray], neurons: Sequence[int],
                      title: str) -> go.Figure:
    """Trained u, v, w of chosen neurons (markers) beside their least-squares cosine (lines, same
    scale; see :func:`memgen.fourier.cosine_fit`); a slider picks the neuron and names the share
    of variance the cosine explains (R²).

    Parameters
    ----------
    vectors : dict of str to numpy.ndarray
        ``u``, ``v``, ``w``: (M, n) trained vectors.
    fit : dict of str to numpy.ndarray
        :func:`memgen.fourier.cosine_fit`'s result (``u``, ``v``, ``w``, ``r2_<k>``, ``freq``).
    neurons : sequence of int
        The neurons, one slider step each.
    title : str
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    frames = []
    for m in neurons:
        traces = []
        for i, k in enumerate(("u", "v", "w")):
            x = list(range(vectors[k].shape[1]))
            traces.append(go.Scatter(x=x, y=vectors[k][m].round(4).tolist(), mode="markers", name=f"{k} trained",
                                     marker=dict(color=COLORS[i], size=5)))
            traces.append(go.Scatter(x=x, y=fit[k][m].round(4).tolist(), mode="lines",
                                     name=f"{k} cosine (R² {fit[f'r2_{k}'][m]:.2f})", line=dict(color=COLORS[i])))
        r2 = np.mean([fit[f"r2_{k}"][m] for k in ("u", "v", "w")])
        frames.append((f"{m} (ω={int(fit['freq'][m])}, R² {r2:.2f})", traces))
    return slider_figure(frames, title, "neuron", xtitle="token position in the frame", ytitle="weight")


# ---------------------------------------------------------------------------- the Transformer chapter
def seed_slider(rows: Sequence[dict], x: str, metrics: dict[str, str], title: str, xtitle: str,
                by: str = "noise", dash: dict[str, str] | None = None, ytitle: str = "accuracy",
                log_x: bool = False) -> go.Figure:
    """Metrics against ``x``, one slider step per value of ``by``; the mean over the seeds present,
    with error bars from the lowest to the highest seed ({row key: legend name}).

    Parameters
    ----------
    rows : list of dict
        Records over seeds with ``seed``, ``x``, ``by`` and the ``metrics`` keys.
    x : str
        Record key of the x-axis.
    metrics : dict of str to str
        Record key -> legend name.
    title, xtitle : str
        Figure and x-axis titles.
    by : str, default="noise"
        The record key the slider steps through (a number); the highest value is shown first.
    dash : dict of str to str or None, default=None
        Record key -> plotly dash style.
    ytitle : str, default="accuracy"
        y-axis title.
    log_x : bool, default=False
        Logarithmic x-axis.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    frames = []
    for val in sorted({r[by] for r in rows}):
        sub = [r for r in rows if r[by] == val]
        n_seeds = len({r["seed"] for r in sub})
        label = f"{val:g}" + (f" ({n_seeds} seeds)" if n_seeds > 1 else "")
        frames.append((label, [_seed_trace(sub, x, k, name, COLORS[i % len(COLORS)], (dash or {}).get(k), i=i)
                               for i, (k, name) in enumerate(metrics.items())]))
    fig = slider_figure(frames, title, by, active=len(frames) - 1, xtitle=xtitle, ytitle=ytitle)
    if log_x:
        set_log_x(fig)
    return fig


def power_bars(power: np.ndarray, kept: Sequence[int], title: str, xtitle: str = "frequency k") -> go.Figure:
    """Power per frequency k = 1.. (``power[0]`` is DC and not drawn), kept frequencies highlighted.

    Parameters
    ----------
    power : numpy.ndarray
        Power per frequency 0..K-1.
    kept : sequence of int
        The frequencies kept (drawn in colour; the others grey, as zeroed).
    title : str
        Figure title.
    xtitle : str, default="frequency k"
        x-axis title.

    Returns
    -------
    plotly.graph_objects.Figure
        The bar chart of each frequency's share of the non-DC power.
    """
    power = np.asarray(power, dtype=float)
    ks = list(range(1, len(power)))
    keep = set(int(k) for k in kept)
    fig = go.Figure()
    for name, sel, color in (("kept", True, COLORS[2]), ("zeroed", False, "#bbbbbb")):
        xs = [k for k in ks if (k in keep) == sel]
        fig.add_trace(go.Bar(x=xs, y=_clean(power[xs] / power[1:].sum()), name=name, marker_color=color))
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, xtitle, "share of non-DC power")
