import sys

from ultramedical.cli import main

sys.exit(main())
