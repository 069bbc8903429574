"""Published laws and the study's run design, typed in from the paper (docs/reference.md §1, §4, §5)
so they can be used, compared and tested like fitted ones."""

from __future__ import annotations

import numpy as np

from laws.fit.forms import Chinchilla, Farseer

# Eq. 1 and Eq. 2: code data, loss in bits per character.
EQ1_CHINCHILLA = Chinchilla(E=0.2193, A=534.374, alpha=0.4853, B=76.0743, beta=0.2983)
EQ2_FARSEER = Farseer(
    s=-0.0047, q=0.239, S=-0.8188, B=62.8936, b=-0.0614, Q=-14.0414, A=-0.0209, a=0.1943, E=-0.1826
)
# Hoffmann et al.'s published natural-language fit.
HOFFMANN_NL = Chinchilla(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28)

TABLE_1_COMPUTE = 5.36e21
# Table 1: (N, D, predicted by Farseer, predicted by Chinchilla, measured)
TABLE_1 = (
    (6.37e9, 127e9, 0.259271, 0.265707, 0.256833),
    (2.27e9, 341e9, 0.253488, 0.262330, 0.253786),
    (1.34e9, 567e9, 0.255846, 0.262939, 0.258546),
)


def paper_design() -> tuple[np.ndarray, np.ndarray]:
    """The 9 x 13 grid of (N, D): N = 2e8 * 2^(k/2), D = 2e9 * sqrt(2)^j."""
    n = 2e8 * 2.0 ** (np.arange(9) / 2)
    d = 2e9 * np.sqrt(2.0) ** np.arange(13)
    grid_n, grid_d = np.meshgrid(n, d, indexing="ij")
    return grid_n.ravel(), grid_d.ravel()
