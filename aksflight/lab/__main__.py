"""`python -m aksflight.lab up|down|status|exec`."""

import sys

from aksflight.lab.cli import main

sys.exit(main())
