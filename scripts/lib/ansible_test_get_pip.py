"""Offline stand-in for the get-pip bootstrap script ansible-test downloads for its --venv mode.

ansible-test fetches get-pip.py from a host this machine cannot reach. Its job is only to put pip
into a new virtual environment and install the pinned packages it is given; ``ensurepip`` and PyPI
(which is reachable) do the same. The arguments are get-pip's: pip install options plus its own
``--no-setuptools``/``--no-wheel`` switches, which pip does not know.
"""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# ensurepip points PIP_CONFIG_FILE at /dev/null in this process; the install after it must see the
# machine's pip configuration (certificates, mirrors), so it gets the environment as it was.
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *pip_args], env=environment))
