"""``python -m ccmct.cli ...`` (e.g. ``torchrun --nproc_per_node=2 -m ccmct.cli infer ...``)."""

import sys

from ccmct.cli import main

sys.exit(main())
