"""``python -m serjax.predict``: see :mod:`serjax.predict.cli`."""

import sys

from serjax.predict.cli import main

sys.exit(main())
