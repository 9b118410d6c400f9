"""The proxy tests' harness: a master, the Kubernetes stand-in with the tier roles, staked identities."""

from proxy.conftest import (  # noqa: F401  (fixtures)
    admin,
    chain,
    cluster,
    identities,
    kube,
    kube_dir,
    make_master,
    nsm_socket,
    proxied_master,
)
