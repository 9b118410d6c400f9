"""``k3sdaas-agent``: the worker agent.

- ``serve --config FILE``: the worker API on ``node.listen_address:listen_port`` (TLS) and the heartbeats.
- ``register --config FILE``: by hand, what k3s_join does (attest, prove, register-worker, write the K3s
  agent's config.yaml and env file); prints the result as JSON. Restart k3s-agent afterwards.
- ``key --file PATH``: create the node's Sui key (0600) if absent and print its address (the token's owner).

Errors exit 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.config
import sys
from pathlib import Path

from ..errors import K3sdaasError
from .config import load_config
from .join import plan, register
from .master import ensure_node_key


def serve(config_path: str) -> int:
    import uvicorn

    from ..nautilus.identity import make_tls
    from ..nautilus.server import log_config
    from .app import create_app
    from .worker import Heartbeater

    config = load_config(config_path)
    heartbeater = Heartbeater(config)
    tls = make_tls(Path(config.state_dir) / "tls", [config.listen_address, "localhost"])
    logging.config.dictConfig(log_config("info"))
    server = uvicorn.Server(uvicorn.Config(create_app(heartbeater), host=config.listen_address,
                                           port=config.listen_port, ssl_certfile=str(tls.cert),
                                           ssl_keyfile=str(tls.key), log_config=log_config("info"),
                                           access_log=False, timeout_graceful_shutdown=5))
    print(f"k3sdaas-agent: serving https://{config.listen_address}:{config.listen_port} for node {config.node_id}",
          flush=True)
    server.run()
    return 0


def register_by_hand(config_path: str) -> int:
    from .worker import link_for, spec_for

    config = load_config(config_path)
    signer, _ = ensure_node_key(config.key_file, create=False)
    link, spec = link_for(config), spec_for(config)
    try:
        planned = plan(link, signer, spec)
        material = register(link, signer, spec, planned)
    finally:
        link.close()
    print(json.dumps({"node_id": spec.node_id, "tier": planned.token["tier_name"], "pcrs": planned.attested.pcrs,
                      "supervisor_url": material["supervisor_url"], "config_path": str(spec.config_path),
                      "join_token_expires_at": material["join_token_expires_at"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k3sdaas-agent", description="The K3s-DaaS worker agent")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the worker API and the heartbeats"),
                       ("register", "attest the master and register this node by hand")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--config", default="/etc/k3sdaas/worker-config.yaml", help="worker-config.yaml")
    key = commands.add_parser("key", help="create the node key if absent and print its address")
    key.add_argument("--file", default="/etc/k3sdaas/node.key")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "key":
            signer, created = ensure_node_key(args.file)
            print(json.dumps({"address": signer.address, "created": created}))
            return 0
        return serve(args.config) if args.command == "serve" else register_by_hand(args.config)
    except K3sdaasError as exc:
        print(f"k3sdaas-agent: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
