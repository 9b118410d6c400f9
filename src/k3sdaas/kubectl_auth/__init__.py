"""``k3sdaas-kubectl-auth``: the client-go exec credential plugin that logs kubectl in to a Nautilus master."""
