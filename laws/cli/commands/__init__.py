"""One module per `python -m laws` command; `laws.cli.app` finds them at start-up."""
