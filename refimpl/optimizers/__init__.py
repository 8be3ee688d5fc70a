"""The optimizers: pure ``init`` / ``step`` over immutable state (see ``base``).

Sources (proofs/sources.md): SGD (PyTorch convention), Adam (Kingma and Ba 2015), AdamW
(Loshchilov and Hutter 2019), EMA, SWA (Izmailov et al. 2018), Lookahead (Zhang et al.
2019) and Switch EMA (Li et al. 2024, arXiv 2402.09240), SAM (Foret et al. 2021), ASAM
(Kwon et al. 2021), StableSAM (Tan et al. 2024, arXiv 2401.07250), FAME (Break a Lag, triple EMA).
"""

from refimpl.optimizers.adam import Adam, AdamState, AdamW
from refimpl.optimizers.averagers import SWA, Lookahead, LookaheadState, SWAState
from refimpl.optimizers.base import StepInfo
from refimpl.optimizers.ema import EMA, EMAState, SwitchEMA
from refimpl.optimizers.fame import FAME, FAMEFullState, FAMEState
from refimpl.optimizers.sam import SAM, SAMState, StableSAM
from refimpl.optimizers.sgd import SGD, SGDState

__all__ = ["SGD", "SGDState", "Adam", "AdamW", "AdamState", "FAME", "FAMEState", "FAMEFullState",
           "SAM", "StableSAM", "SAMState", "EMA", "SwitchEMA", "EMAState", "SWA", "SWAState",
           "Lookahead", "LookaheadState", "AVERAGERS", "StepInfo"]

#: the averaging wrappers (the outermost layer): ``isinstance(opt, AVERAGERS)``
AVERAGERS = (EMA, SWA, Lookahead)
