"""ipywidgets controls for live use in Jupyter.

In a running kernel the controls retrain (or load from the run store) and redraw. A static page has no
kernel, so builds set ``MEMGEN_STATIC=1`` and the controls are replaced by a note there; the
plotly sliders next to them work everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import ipywidgets as W
from IPython.display import HTML, display

from ..configs import ACTIVATIONS, TASKS, ConfigError, RunConfig
from ..experiments import Setup
from ..store import SweepError
from ..train import DivergenceError, ResourceError


def _one_line(e: Exception) -> str:
    """The message of a training failure on one line (a SweepError lists one line per run)."""
    if isinstance(e, SweepError):
        return f"{len(e.failures)} run(s) failed; first: {e.failures[0]}"
    return " ".join(str(e).split())


def live_controls(st: Setup, render: Callable[[RunConfig], Any], *, task: bool = False,
                  activation: bool = True) -> W.VBox | HTML:
    """Noise and width controls (plus task/activation) and a button that runs ``render``.

    ``render(config)`` trains or loads the run and returns something to display (a figure or a
    dict). Bad combinations (e.g. ``mul`` with a non-prime p) show the validation message.

    Parameters
    ----------
    st : Setup
        The chapter's setup: the controls start at its base config and the width slider offers its
        widths.
    render : callable
        Called with the chosen :class:`~memgen.configs.RunConfig`; its result is displayed.
    task : bool, default=False
        Add a task dropdown.
    activation : bool, default=True
        Add an activation dropdown.

    Returns
    -------
    ipywidgets.VBox or IPython.display.HTML
        The controls; under ``MEMGEN_STATIC`` (a static build), a note that they appear in a
        running notebook.
    """
    if os.environ.get("MEMGEN_STATIC"):  # static build: no kernel behind the page
        return HTML("<p><i>Live controls (noise, width, …) appear here when the notebook runs in Jupyter, "
                    "Binder or Colab; in the static book use the plotly sliders.</i></p>")
    noise = W.FloatSlider(value=st.base.noise, min=0.0, max=0.9, step=0.05, description="noise α",
                          continuous_update=False)
    widths = sorted(set(st.widths) | {st.base.width})
    width = W.SelectionSlider(options=widths, value=st.base.width, description="width M",
                              continuous_update=False)
    extra: dict[str, W.Widget] = {}
    if task:
        extra["task"] = W.Dropdown(options=TASKS, value=st.base.task, description="task")
    if activation:
        extra["activation"] = W.Dropdown(options=ACTIVATIONS, value=st.base.activation,
                                         description="activation")
    button = W.Button(description="train / load", button_style="primary")
    out = W.Output()

    def run(_=None) -> None:
        out.clear_output()
        with out:
            try:
                cfg = st.config(noise=noise.value, width=width.value,
                                **{k: w.value for k, w in extra.items()})
            except ConfigError as e:
                print(f"invalid parameters: {e}")
                return
            print(f"{cfg.label()} — training or loading from the run store…")
            try:
                shown = render(cfg)
            except (ConfigError, DivergenceError, ResourceError, SweepError) as e:  # one line, no traceback
                out.clear_output()
                print(f"could not train {cfg.label()}: {_one_line(e)}")
                return
            display(shown)

    button.on_click(run)
    # a live kernel is behind these controls (static builds returned above): a usage hint, no kernel note
    note = W.HTML("<i>Pick the parameters, then press <b>train / load</b> (stored runs load at once).</i>")
    return W.VBox([note, W.HBox([noise, width, *extra.values()]), button, out])
