"""``minigrad.nn.functional`` is ``minigrad.functional`` (as torch.nn.functional): the
stateless form of every op, conventionally imported as F."""

from minigrad.functional import *  # noqa: F401,F403
from minigrad.functional import __all__  # noqa: F401
