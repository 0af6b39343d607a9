"""`python -m pyasg`: the same as the `pyasg` command."""

import sys

from pyasg.cli import main

sys.exit(main())
