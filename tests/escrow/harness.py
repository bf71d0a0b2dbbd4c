"""The escrow tests' world: see ``programs/escrow/localnet.py``."""

from programs.escrow.localnet import *  # noqa: F401,F403
from programs.escrow.localnet import ERRORS, World  # noqa: F401  (explicit for readers)
