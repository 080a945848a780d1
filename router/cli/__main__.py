"""`python -m router.cli`: the `herald` command."""

import sys

from router.cli.commands import main

sys.exit(main())
