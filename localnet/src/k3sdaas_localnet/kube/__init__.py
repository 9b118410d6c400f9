"""A Kubernetes API server stand-in for the local default (see README.md in this directory)."""
