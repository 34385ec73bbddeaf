"""Channel settings: a channel's default spec (`/api use NAME`) and when a question leaves it.

A channel with a default searches that spec first. It still searches every spec it can see when the default
clearly does not cover the question: in one fused search over all of them, the best hit of the other specs
scores more than `DEFAULT_SPEC_MARGIN` above the default's best (`default_spec_gap`). The margin was chosen on
the real corpus questions (benchmarks/channel_default.py; benchmarks/RESULTS.md has the figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.retrieval import RetrievedItem

DEFAULT_SPEC_MARGIN = 0.25
"""How far (in fused score) the other specs' best hit must be above the default's before a question leaves it."""
DEFAULT_SPEC_CANDIDATES = 50
"""How deep the deciding search looks for the default's best hit (none found: the default does not cover it)."""
CLEAR_WORD = "all"
"""`/api use all` clears the channel's default (so a spec called `all` cannot be one)."""


def default_spec_gap(items: Sequence[RetrievedItem], default: str) -> float:
    """The best score of the other specs' hits minus the best of `default`'s, in one fused ranking.

    Infinite when `default` has no hit among `items`; minus infinity when only `default` has hits.
    """
    own = max((i.score for i in items if i.spec == default), default=-math.inf)
    other = max((i.score for i in items if i.spec != default), default=-math.inf)
    if own == -math.inf:
        return math.inf
    return other - own


def leaves_default(items: Sequence[RetrievedItem], default: str, margin: float = DEFAULT_SPEC_MARGIN) -> bool:
    """Whether a question clearly is not about the channel's default spec (see the module docstring)."""
    return default_spec_gap(items, default) > margin
