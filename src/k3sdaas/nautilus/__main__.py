"""``python -m k3sdaas.nautilus``: what enclave/entrypoint.py starts; with no arguments, ``serve``."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:] or ["serve"]))
