"""Dropout as a module: active in training mode, the identity after ``model.eval()``."""

from minigrad import functional as F
from minigrad.nn.module import Module


class Dropout(Module):
    """Zero each element with probability p and scale the survivors by 1/(1-p) while training
    (Srivastava et al. 2014, "inverted" scaling so evaluation needs no change); identity in
    eval mode. Masks come from minigrad's seeded generator. ``inplace`` is accepted for
    ported code; minigrad computes out of place, with the same result."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
