"""`python -m lab` is `edgewatch-lab`."""

import sys

from lab.cli import main

sys.exit(main())
