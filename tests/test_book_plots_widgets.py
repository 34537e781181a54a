import ipywidgets
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from IPython.display import HTML

from memgen.book import plots, widgets
from memgen.configs import ConfigError
from memgen.experiments import setup


def test_book_renderer_emits_html_without_plotlyjs():
    plots.use_book_renderer()
    assert "book" in pio.renderers.default and "plotly_mimetype" in pio.renderers.default
    bundle = pio.renderers["book"].to_mimebundle(go.Figure(go.Scatter(y=[1, 2])).to_dict())
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and "<script src" not in html and len(html) < 20_000


def test_slider_figure_toggles_groups():
    fig = plots.slider_figure([("a", [go.Scatter(y=[1])]), ("b", [go.Scatter(y=[2]), go.Scatter(y=[3])])],
                              "t", "x", active=1)
    steps = fig.layout.sliders[0].steps
    assert [s.args[0]["visible"] for s in steps] == [[True, False, False], [False, True, True]]
    assert [t.visible for t in fig.data] == [False, True, True]


def test_setup_validates_chapter_parameters():
    with pytest.raises(ConfigError, match="noise"):
        setup("test", noises=[0.2, 1.0])
    with pytest.raises(ConfigError, match="width"):
        setup("test", widths=[0])
    with pytest.raises(ConfigError, match="prime"):
        setup("test", task="mul", p=24)
    with pytest.raises(ConfigError, match="profile"):
        setup("gpu")


def test_live_controls_validate_and_render(monkeypatch):
    monkeypatch.delenv("MEMGEN_STATIC", raising=False)
    st = setup("test")
    seen = []
    box = widgets.live_controls(st, lambda c: seen.append(c) or "ok", task=True)
    assert isinstance(box, ipywidgets.VBox)
    controls = box.children[1].children
    noise, width, task = controls[0], controls[1], controls[2]
    button = box.children[2]
    noise.value, width.value = 0.25, st.widths[0]
    button.click()
    assert seen and seen[-1].noise == 0.25 and seen[-1].width == st.widths[0]
    task.value, n_before = "mul", len(seen)
    button.click()  # p = 23 is prime: fine
    assert len(seen) == n_before + 1


def test_live_controls_in_a_static_build(monkeypatch):
    monkeypatch.setenv("MEMGEN_STATIC", "1")
    assert isinstance(widgets.live_controls(setup("test"), lambda c: None), HTML)


def test_table_cells_read_as_numbers_not_python_reprs():
    import numpy as np

    from memgen.book import report

    fmt = report._fmt
    assert [fmt(260), fmt(np.int64(260)), fmt(260.0), fmt(np.float64(17.0))] == ["260", "260", "260", "17"]
    assert [fmt(0.5), fmt(1.0), fmt(0.0), fmt(np.float32(0.25))] == ["0.500", "1.000", "0.000", "0.250"]
    assert [fmt(None), fmt(float("nan")), fmt(np.nan), fmt(float("inf")), fmt("nan")] == ["–"] * 5
    assert [fmt(True), fmt(False), fmt(np.bool_(True))] == ["yes", "no", "yes"]
    assert fmt("a|b") == "a\\|b"
    md = report.table([{"n": 260.0, "acc": 0.25, "ok": True, "x": None}]).data
    for bad in ("260.000", "None", "True", "nan"):
        assert bad not in md
    assert "| 260 | 0.250 | yes | – |" in md
    with pytest.raises(ValueError, match="rows=\\[\\] with columns=None"):
        report.table([])
    assert report.table([], {"n": "N"}).data.startswith("| N |")  # an empty table with its header
    boxed = report.table([{"n": 1}], container="tally-table").data  # a class for the book's stylesheet
    assert boxed.startswith(":::{container} tally-table\n| n |") and boxed.endswith("| 1 |\n:::\n")


def test_log_width_axes_show_the_widths_and_accuracy_axes_span_0_to_1():
    rows = [dict(noise=a, width=w, seed=s, train_acc=0.5, test_acc=0.1) for a in (0.0, 0.8)
            for w in (3, 17, 129) for s in (0, 1)]
    figs = [
        plots.lines([3, 17, 129], {"a": [0.1, 0.2, 0.3]}, "t", "width M", "test accuracy", log_x=True),
        plots.grouped_lines(rows, "width", "test_acc", "noise", "t", "width M", "test accuracy", log_x=True),
        plots.seed_grouped_lines(rows, "width", "test_acc", "noise", "t", "width M", "test accuracy", log_x=True),
        plots.seed_lines(rows, "width", {"test_acc": "test"}, "t", "width M", "test accuracy", log_x=True),
        plots.seed_width_slider(rows, {"test_acc": "test"}, "t"),
        plots.seed_slider(rows, "width", {"test_acc": "test"}, "t", "width M", log_x=True),
    ]
    for fig in figs:
        assert fig.layout.xaxis.type == "log"
        assert list(fig.layout.xaxis.ticktext) == ["3", "17", "129"]
        assert list(fig.layout.xaxis.tickvals) == [3, 17, 129]
        assert tuple(fig.layout.yaxis.range) == plots.ACC_RANGE
        assert fig.layout.legend.orientation == "h"
    # many values (training steps): powers of ten, not "2 3 … 100 2 3"
    many = plots.lines(list(range(1, 501)), {"a": [0.5] * 500}, "t", "step", "loss", log_x=True)
    assert many.layout.xaxis.dtick == 1 and many.layout.xaxis.tickvals is None
    assert many.layout.yaxis.range is None  # not an accuracy axis: automatic
    zoomed = plots.lines([1, 2], {"a": [0.1, 0.2]}, "t", "x", "test accuracy", yaxis_range=None)
    assert zoomed.layout.yaxis.range is None


def test_chance_line_overlapping_series_titles_and_mode_bar():
    fig = plots.add_chance(plots.lines([1, 2], {"a": [0.1, 0.2], "b": [0.1, 0.2]}, "t", "x", "accuracy"), 1 / 59)
    shape, note = fig.layout.shapes[0], fig.layout.annotations[0]
    assert shape.line.dash == "dash" and abs(shape.y0 - 1 / 59) < 1e-12 and note.text == "chance 1/59"
    assert plots.chance_label(0.3) == "chance 0.3"
    a, b = fig.data
    assert a.marker.symbol != b.marker.symbol and a.line.width > b.line.width and a.marker.size > b.marker.size
    long = plots.lines([1], {"a": [1]}, "A title much longer than what fits in a phone's column", "x", "y")
    assert "<br>" in long.layout.title.text
    assert all(len(line) <= plots.TITLE_CHARS for line in long.layout.title.text.split("<br>"))
    sub = plots.lines([1], {"a": [1]}, "Progress measures over training (paper results)<br><sup>add mod P = 113, "
                      "M = 512, relu, ce, lr 0.001, wd 1, 20000 steps, 3 seeds</sup>", "x", "y")
    lines = sub.layout.title.text.split("<br>")  # each line wrapped, the subtitle's lines each a <sup>
    assert lines[:2] == ["Progress measures over training", "(paper results)"] and len(lines) == 4
    assert all(x.startswith("<sup>") and x.endswith("</sup>") and len(x) - 11 <= 1.4 * plots.TITLE_CHARS
               for x in lines[2:])
    html = pio.renderers["book"].to_mimebundle(long.to_dict())["text/html"]
    assert '"displayModeBar": false' in html and '"displaylogo": false' in html
