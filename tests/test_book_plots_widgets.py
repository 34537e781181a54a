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
