"""`python -m laws`."""

import sys

from laws.cli.app import main

sys.exit(main())
