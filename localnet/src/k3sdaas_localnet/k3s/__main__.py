"""``python -m k3sdaas_localnet.k3s``: what the SIMULATED /usr/local/bin/k3s wrapper runs."""

import sys

from k3sdaas_localnet.k3s.cli import main

sys.exit(main())
