"""refimpl: an exact, readable NumPy/numba reference for weight-averaging and
sharpness-aware optimizers (SGD, Adam/AdamW, EMA, Switch EMA, SWA, Lookahead,
SAM/ASAM/StableSAM, FAME) and the EMA Scaling Rule. float64, deterministic,
bit-reproducible for a given seed."""

from refimpl._version import __version__
from refimpl.optimizers import (EMA, FAME, SAM, SGD, SWA, Adam, AdamW, Lookahead, StableSAM,
                                StepInfo, SwitchEMA)
from refimpl.problems import MLP, MLPProblem, NoisyQuadratic, Quadratic
from refimpl.schedules import as_schedule
from refimpl.train import Record, train

__all__ = ["SGD", "Adam", "AdamW", "FAME", "SAM", "StableSAM", "EMA", "SwitchEMA", "SWA",
           "Lookahead", "StepInfo", "Quadratic", "NoisyQuadratic", "MLP", "MLPProblem", "train", "Record", "as_schedule", "__version__"]
