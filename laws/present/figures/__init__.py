"""The paper's figures, drawn from plain data: a `Runs` table and/or laws (fitted or typed in).

Each function returns a `Plot`: the matplotlib Figure and the numbers it draws, so a test can
check what is on the page, not only that a file exists. Figures are built on `Figure` objects
(never pyplot's global state) at paper size (6.5 in wide, 8 pt text) and share one `Palette`, so
a model size, a token budget or a mixture has the same colour in every figure of a study.

`common` holds the style, palette and axes; `inputs` what `plot` and `report` read; one
`fig_*` module per figure.
"""

from laws.present.figures.common import PAGE_WIDTH, Palette, Plot, save, summarise
from laws.present.figures.fig_design import design
from laws.present.figures.fig_hparams import hparams
from laws.present.figures.fig_languages import exponents, synergy_matrix
from laws.present.figures.fig_mixtures import DEFAULT_RATIOS, mixtures
from laws.present.figures.fig_optimal import CURVE_POINTS, Reference, optimal
from laws.present.figures.fig_quality import quality
from laws.present.figures.fig_scaling import scaling
from laws.present.figures.fig_surface import surface
from laws.present.figures.inputs import (
    LabelledLaw,
    compute_range,
    default_sizes,
    extent,
    held_out_mask,
    read_fits,
)

KINDS = (
    "design",
    "scaling",
    "surface",
    "optimal",
    "mixtures",
    "quality",
    "hparams",
    "exponents",
    "synergy",
)

__all__ = [
    "CURVE_POINTS",
    "DEFAULT_RATIOS",
    "KINDS",
    "PAGE_WIDTH",
    "LabelledLaw",
    "Palette",
    "Plot",
    "Reference",
    "compute_range",
    "default_sizes",
    "design",
    "exponents",
    "extent",
    "held_out_mask",
    "hparams",
    "mixtures",
    "optimal",
    "quality",
    "read_fits",
    "save",
    "scaling",
    "summarise",
    "surface",
    "synergy_matrix",
]
