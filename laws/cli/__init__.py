"""The command line, `python -m laws` (the parser and main are in `laws.cli.app`)."""
