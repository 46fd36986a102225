"""`python -m idp` is `yihao`."""
from __future__ import annotations

import sys

from idp.cli import main

sys.exit(main())
