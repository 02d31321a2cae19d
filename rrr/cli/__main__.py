"""``python -m rrr.cli <subcommand> ...``: the ``rrr`` command, for launchers that take a module
(``accelerate launch -m rrr.cli train ...``, ``torchrun -m rrr.cli train ...``)."""

import sys

from rrr.cli import main

sys.exit(main())
