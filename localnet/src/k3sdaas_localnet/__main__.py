"""`k3sdaas-localnet SERVICE ARGS…`: starts one of the local stand-ins.

Each stand-in keeps its own argument parser; this only picks the stand-in, importing it lazily so
that, say, the nitro-cli simulator does not load the Sui node's gRPC stack.
"""

from __future__ import annotations

import importlib
import sys

STAND_INS = {
    "sui": ("k3sdaas_localnet.sui.cli", "a local Sui full node (gRPC, as pysui uses it)"),
    "nitro-cli": ("k3sdaas_localnet.nitro.cli", "a nitro-cli compatible Nitro Enclaves simulator"),
    "nsm": ("k3sdaas_localnet.nitro.nsm_cli", "a simulated Nitro Secure Module on a Unix socket (K3SDAAS_NSM_SOCKET)"),
    "kube": ("k3sdaas_localnet.kube.cli", "a Kubernetes API server stand-in (HTTPS, RBAC, SQLite state)"),
    "k3s": ("k3sdaas_localnet.k3s.cli", "a SIMULATED K3s agent (joins a Kubernetes API server without a kubelet)"),
}


def usage() -> str:
    lines = ["usage: k3sdaas-localnet SERVICE [ARGS...]", "", "services:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in STAND_INS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in STAND_INS:
        print(f"k3sdaas-localnet: unknown service {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAND_INS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
