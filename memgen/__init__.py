"""memgen: the support package of the executable companion to Liu & Lu, "Unveiling
Memorization-Generalization Coexistence" (arXiv 2605.18022).

This package is the training core: it depends on torch, numpy and tqdm only and runs on a
headless GPU node. Data flows one way: configs -> training (batched, through the run store) ->
analyses. The book layer (figures, widgets, verdict boxes, papermill staging) lives in
:mod:`memgen.book` and is imported explicitly by the chapters.
"""

from . import baselines, experiments, fourier, partition
from .configs import PROFILES, ConfigError, RunConfig, get_profile
from .experiments import setup
from .metrics import evaluate
from .model import Weights
from .store import RunStore, sweep, train_or_load
from .tasks import Dataset, make_dataset
from .train import DivergenceError, ResourceError, Run, train_batch

__all__ = [
    "PROFILES", "ConfigError", "Dataset", "DivergenceError", "ResourceError", "Run", "RunConfig", "RunStore",
    "Weights", "baselines", "evaluate", "experiments", "fourier", "get_profile", "make_dataset", "partition",
    "setup", "sweep", "train_batch", "train_or_load",
]
__version__ = "0.2.0"
