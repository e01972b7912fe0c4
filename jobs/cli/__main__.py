"""`python -m jobs.cli ...`: the `ultramedical` command from a checkout."""

import sys

from jobs.cli import main

sys.exit(main())
