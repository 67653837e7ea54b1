"""`python -m scratchgpt` is the `scratchgpt` command."""

import sys

from .cli import main

sys.exit(main())
