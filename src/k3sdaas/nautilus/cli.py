"""``k3sdaas-nautilus serve [--config FILE] [--local]``: the master service.

``--local`` points every setting at this machine's local environment (``scripts/setup.sh``): the Sui
node on 127.0.0.1:9000 with its CA and operator key in ``.state/sui``, the Kubernetes stand-in's
kubeconfig and CA in ``.state/kube``, the NSM simulator's ``.state/nsm/nsm.sock`` when it exists (its
documents verify against ``.state/nsm/root.pem``), state in ``.state/nautilus``. The package is the operator's
newest deployment (published from ``.state/sui/k3s_daas.build.json`` if there is none yet). A config
file and the environment still override these. Bad settings exit 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import K3sdaasError
from . import audit_cli
from .config import load_config
from .identity import make_tls


def local_settings(state: Path) -> dict[str, Any]:
    sui, kube, nsm = state / "sui", state / "kube", state / "nsm" / "nsm.sock"
    settings = {"listen_address": "127.0.0.1", "rpc_url": "https://127.0.0.1:9000",
                "sui_ca_file": str(sui / "tls" / "ca.pem"), "sui_key_file": str(sui / "operator.key"),
                "kubeconfig": str(kube / "admin.kubeconfig"), "cluster_ca_file": str(kube / "ca.pem"),
                "supervisor_url": "https://127.0.0.1:6444", "state_dir": str(state / "nautilus")}
    if nsm.exists() and not os.environ.get("K3SDAAS_NSM_SOCKET"):
        settings["nsm_socket"] = str(nsm)
    return settings


async def local_deployment(settings: dict[str, Any], build_output: Path) -> str:
    """The operator's newest k3s_daas package on the local node, published first if there is none."""
    from ..chain import ChainClient, ChainSettings, load_build_output, load_signer

    chain = ChainSettings(rpc_url=settings["rpc_url"], signer=load_signer(key_file=settings["sui_key_file"]),
                          ca_file=settings["sui_ca_file"], timeout=10.0, retries=1)
    async with ChainClient(chain) as client:
        deployment = await client.find_deployment()
        if deployment is None:
            deployment = await client.publish(*load_build_output(build_output))
        return deployment.package_id


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve(args: argparse.Namespace) -> int:
    from .server import serve as run

    base: dict[str, Any] = {}
    options = {name: getattr(args, name) for name in ("listen_address", "listen_port", "package_id", "public_url")}
    if args.local:
        state = Path(args.local_state).resolve()
        base = local_settings(state)
        try:
            config = load_config(args.config, base=base, **options)
        except K3sdaasError as exc:
            if exc.field != "package_id":
                raise
            options["package_id"] = asyncio.run(local_deployment(base, state / "sui" / "k3s_daas.build.json"))
    config = load_config(args.config, base=base, **options)
    if config.listen_port == 0:
        config = load_config(args.config, base=base, **{**options, "listen_port": free_port(config.listen_address)})
    tls = make_tls(Path(config.state_dir) / "tls", [config.listen_address, "localhost", "127.0.0.1",
                                                     *_host_of(config.public_url)])
    print(f"k3sdaas-nautilus: serving {config.audience} (TLS 1.3)", flush=True)
    print(f"k3sdaas-nautilus: trust {tls.cert} (e.g. curl --cacert {tls.cert} {config.audience}/health)", flush=True)
    if base.get("nsm_socket") and config.nsm_socket == base["nsm_socket"]:
        root = Path(base["nsm_socket"]).with_name("root.pem")
        print(f"k3sdaas-nautilus: attestation by the NSM simulator; trust {root} "
              f"(k3sdaas-attest verify --root {root})", flush=True)
    run(config, tls)
    return 0


def _host_of(url: str) -> list[str]:
    host = urlsplit(url).hostname
    return [host] if host else []


def proof(args: argparse.Namespace) -> int:
    """Fetch a challenge from the master, sign it with the key file, print the JSON body for /api/v1/auth."""
    import json
    import ssl

    import httpx

    from ..chain import load_signer, normalize_address
    from ..seal import Challenge, sign_personal_message

    signer = load_signer(key_file=args.key_file)
    token_id = normalize_address(args.token_id, "token_id")
    url = args.url.rstrip("/")
    try:
        verify = ssl.create_default_context(cafile=args.cacert) if args.cacert else True
        response = httpx.post(f"{url}/api/v1/challenge", verify=verify, timeout=30)
    except (OSError, httpx.HTTPError) as exc:
        raise K3sdaasError(f"{url} cannot be reached: {exc}") from None
    if response.status_code != 200:
        raise K3sdaasError(f"{url} refused the challenge: {response.status_code} {response.text[:200]}")
    nonce = response.json()["nonce"]
    challenge = Challenge(nonce, url, token_id, signer.address, int(time.time() * 1000))
    body = {"token_id": token_id, "address": signer.address, "nonce": nonce, "issued_at": challenge.issued_at_ms,
            "audience": url, "signature": sign_personal_message(signer, challenge.message())}
    if args.node_id:
        body.update(node_id=args.node_id, ip=args.ip)
    print(json.dumps(body))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k3sdaas-nautilus", description="The K3s-DaaS Nautilus master service")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the master (HTTPS, TLS 1.3)")
    run.add_argument("--config", default=os.environ.get("K3SDAAS_NAUTILUS_CONFIG"),
                     help="YAML settings file (nautilus-config.yaml; default $K3SDAAS_NAUTILUS_CONFIG)")
    run.add_argument("--local", action="store_true", help="use this machine's local Sui node and Kubernetes stand-in")
    run.add_argument("--local-state", default=".state", help="the local environment's state directory (.state)")
    run.add_argument("--listen-address", dest="listen_address")
    run.add_argument("--listen-port", dest="listen_port", type=int)
    run.add_argument("--public-url", dest="public_url")
    run.add_argument("--package-id", dest="package_id")
    sign = commands.add_parser("proof", help="print a signed seal proof (the body of POST /api/v1/auth)")
    sign.add_argument("--url", required=True, help="the master's URL (the challenge's audience)")
    sign.add_argument("--cacert", help="the master's certificate to trust (printed by serve)")
    sign.add_argument("--key-file", required=True, help="Sui key file of the token's owner (mode 0600)")
    sign.add_argument("--token-id", required=True, help="the SealToken object id")
    sign.add_argument("--node-id", help="also add node_id and ip: the body of POST /api/v1/register-worker")
    sign.add_argument("--ip", default="127.0.0.1", help="the worker's IP for --node-id (default 127.0.0.1)")
    audit_cli.add_parser(commands)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "audit":
            return audit_cli.run(args)
        return serve(args) if args.command == "serve" else proof(args)
    except K3sdaasError as exc:
        print(f"k3sdaas-nautilus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
