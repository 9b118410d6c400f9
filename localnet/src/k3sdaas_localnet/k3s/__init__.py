"""A stand-in K3s agent (SIMULATED): joins a Kubernetes API server the way ``k3s agent`` does, without a kubelet.

It reads the same configuration real K3s reads (``/etc/rancher/k3s/config.yaml``, ``K3S_URL``,
``K3S_TOKEN``, ``--token-file``), checks the server CA against the token's ``K10<sha256>::`` prefix,
registers its Node with the labels, taints, capacity and Ready condition a kubelet reports, renews its
Lease in ``kube-node-lease`` every 10 s and reports the pods bound to it Running. No container runs.

Only the standard library and PyYAML: role k3s_agent copies this package onto simulated hosts.
"""
