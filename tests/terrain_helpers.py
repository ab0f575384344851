"""Shared hypothesis strategy: any valid terrain profile (steps included)."""

import numpy as np
from hypothesis import strategies as st

from ground.sim import terrain as T


@st.composite
def profiles(draw):
    n = draw(st.integers(2, 30))
    steps = draw(st.lists(st.floats(0.0, 5000.0), min_size=n, max_size=n))
    xs = np.cumsum(np.array(steps))
    # at most two rows per downrange
    for i in range(2, n):
        if xs[i] == xs[i - 1] == xs[i - 2]:
            xs[i:] += 1.0
    zs = draw(st.lists(st.floats(-9000.0, 9000.0), min_size=n, max_size=n))
    return T.Terrain(xs.astype(float), np.array(zs, dtype=float), source="test")
