"""memgen: the support package of the executable companion to Liu & Lu, "Unveiling
Memorization-Generalization Coexistence" (arXiv 2605.18022).

Data flows one way: configs -> training (batched, through the run store) -> analyses -> plots.
"""

from . import checks, experiments, fourier, partition, plots, report, widgets
from .configs import PROFILES, ConfigError, RunConfig, get_profile
from .experiments import setup
from .metrics import evaluate
from .model import Weights
from .store import RunStore, sweep, train_or_load
from .tasks import Dataset, make_dataset
from .train import DivergenceError, ResourceError, Run, train_batch

__all__ = [
    "PROFILES", "ConfigError", "Dataset", "DivergenceError", "ResourceError", "Run", "RunConfig", "RunStore",
    "Weights", "checks", "evaluate", "experiments", "fourier", "get_profile", "make_dataset", "partition", "plots",
    "report", "setup", "sweep", "train_batch", "train_or_load", "widgets",
]
__version__ = "0.1.0"
