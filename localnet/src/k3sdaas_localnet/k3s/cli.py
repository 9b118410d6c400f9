"""``k3s`` command line of the stand-in: ``k3s agent [FLAGS]`` and ``k3s --version``.

Role k3s_agent installs it as /usr/local/bin/k3s on simulated hosts; the wrapper exports
K3S_SIMULATED_VERSION, the K3s release it stands in for. Exit codes: 0 stopped by SIGTERM/SIGINT,
1 a configuration or join error (one line on stderr; systemd restarts the unit, as with real K3s).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
import urllib.error

from k3sdaas_localnet.k3s.agent import Agent, ApiError
from k3sdaas_localnet.k3s.config import ConfigError, resolve
from k3sdaas_localnet.k3s.token import JoinError, parse_token

DEFAULT_VERSION = "v1.31.12+k3s1"
CONNECT_RETRY = 5.0


def version_text(version: str) -> str:
    return f"k3s version {version} (SIMULATED: k3sdaas-localnet stand-in agent, not K3s)\ngo version none (SIMULATED)"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="k3s", description="SIMULATED k3s: the K3s-DaaS stand-in agent")
    root.add_argument("--version", "-v", action="store_true", help="print the version")
    commands = root.add_subparsers(dest="command")
    agent = commands.add_parser("agent", help="join a server as a (simulated) node")
    agent.add_argument("--config", "-c", help="config file (default /etc/rancher/k3s/config.yaml, K3S_CONFIG_FILE)")
    agent.add_argument("--server", "-s", help="server URL (K3S_URL)")
    agent.add_argument("--token", "-t", help="join token (K3S_TOKEN)")
    agent.add_argument("--token-file", help="file holding the join token (K3S_TOKEN_FILE)")
    agent.add_argument("--node-name", help="node name (K3S_NODE_NAME, default the host name)")
    agent.add_argument("--node-ip", help="InternalIP to report (default the address towards the server)")
    agent.add_argument("--data-dir", "-d", help="state directory (default /var/lib/rancher/k3s)")
    agent.add_argument("--with-node-id", action="store_true", help="append an id to the node name")
    agent.add_argument("--node-label", action="append", help="key=value label registered with the node")
    agent.add_argument("--node-taint", action="append", help="key[=value]:Effect taint registered with the node")
    return root


def notify_ready() -> None:
    """sd_notify(READY=1): the units are Type=notify, as K3s's install script writes them."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect("\0" + address[1:] if address.startswith("@") else address)
        sock.send(b"READY=1")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    version = os.environ.get("K3S_SIMULATED_VERSION", DEFAULT_VERSION)
    if args.version:
        print(version_text(version))
        return 0
    if args.command != "agent":
        print("k3s (SIMULATED): only 'agent' and --version are simulated", file=sys.stderr)
        return 1
    try:
        config = resolve(args, dict(os.environ), socket.gethostname())
        token = parse_token(config.token)
        agent = Agent(config, version, socket.gethostname())
        signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
        signal.signal(signal.SIGINT, lambda *_: agent.stop.set())
        # K3s keeps waiting for its server; only a token or CA problem is fatal.
        while not agent.stop.is_set():
            try:
                agent.connect(token)
                agent.register()
                break
            except (urllib.error.URLError, OSError, ApiError) as error:
                print(f"k3s agent (SIMULATED): waiting for {config.server}: {error}", file=sys.stderr, flush=True)
                agent.stop.wait(CONNECT_RETRY)
        if agent.stop.is_set():
            return 0
        print(f"k3s agent (SIMULATED) {version}: node {agent.name} registered with {config.server}", flush=True)
        notify_ready()
        agent.run()
    except (ConfigError, JoinError) as error:
        print(f"k3s agent (SIMULATED): {error}", file=sys.stderr)
        return 1
    print(f"k3s agent (SIMULATED): node {agent.name} stopped at {time.strftime('%H:%M:%S')}", flush=True)
    return 0
