"""K3s-DaaS runtime: the code the Ansible collection, the master and the agents share."""

__version__ = "0.1.0"
