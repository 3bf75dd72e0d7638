"""`python -m aksflight`."""

import sys

from aksflight.cli import main

sys.exit(main())
