"""The figures and the one-page report of a study."""
