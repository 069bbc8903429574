"""The one error type the package raises for bad input, so the CLI can print it as one line."""

from __future__ import annotations


class LawsError(ValueError):
    """A problem with the data or the request, worded to say what is wrong and what to change."""


class RunawayWarning(UserWarning):
    """A law keeps decreasing outside the region its data support (Farseer at huge N, tiny D)."""
