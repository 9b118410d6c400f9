"""SIMULATED vsock-proxy and TCP-to-vsock forwarder (k3sdaas.core.nitro_parent, nitro_parent_simulated: true).

One program installed under two names; what it does follows the name it runs as.

vsock-proxy LOCAL_PORT REMOTE_ADDR REMOTE_PORT [--config FILE] [-w WORKERS] [-4|-6] has the real proxy's
command line. Like the real one it refuses a destination missing from the allow-list (flow-style entries
"- {address: HOST, port: PORT}", the format the role writes). Unlike it, it listens on 127.0.0.1:LOCAL_PORT
over TCP, because local hosts have no vsock to the enclave, and it accepts -w, -4 and -6 for compatibility
only (a thread per connection, the resolver's address family). With K3SDAAS_NITRO_SIM_STATE set (the k3sdaas
nitro-cli simulator's state), it serves what an enclave of that simulator dials as vsock CID 3 (the parent)
port LOCAL_PORT instead: the Unix socket connect-3-LOCAL_PORT.sock in each running enclave's vsock
directory (STATE/vsock/<cid>/), created as enclaves start.

vsock-forward LISTEN_PORT CID VSOCK_PORT does on a simulated parent what
`socat TCP-LISTEN:LISTEN_PORT,fork,reuseaddr VSOCK-CONNECT:CID:VSOCK_PORT` does on a real one: it exposes a
port an enclave listens on. Under the simulator an enclave's vsock port is the Unix socket
listen-VSOCK_PORT.sock in its vsock directory, K3SDAAS_NITRO_SIM_STATE/vsock/CID/.
"""


import argparse
import os
import re
import socket
import sys
import threading

PROG = os.path.basename(sys.argv[0])
SIM_STATE_ENV = "K3SDAAS_NITRO_SIM_STATE"
ENTRY = re.compile(r"^\s*-\s*\{\s*address:\s*([^,\s]+)\s*,\s*port:\s*([0-9]+)\s*\}\s*$")


def allowlist(path):
    with open(path, encoding="utf-8") as config:
        return {(match.group(1), int(match.group(2))) for match in map(ENTRY.match, config) if match}


def pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, connect, what):
    try:
        upstream = connect()
    except OSError as error:  # forward: no enclave with that CID, or it does not listen on the port (yet)
        print(f"[simulated] {PROG}: cannot reach {what}: {error}", file=sys.stderr)
        client.close()
        return
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    pipe(upstream, client)


def unix_connection(path):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        upstream.close()
        raise
    return upstream


def proxy():
    parser = argparse.ArgumentParser(prog="vsock-proxy")
    parser.add_argument("local_port", type=int)
    parser.add_argument("remote_addr")
    parser.add_argument("remote_port", type=int)
    parser.add_argument("--config", default="/etc/nitro_enclaves/vsock-proxy.yaml")
    parser.add_argument("-w", "--num_workers", type=int, default=4)
    version = parser.add_mutually_exclusive_group()
    version.add_argument("-4", "--ipv4", action="store_true")
    version.add_argument("-6", "--ipv6", action="store_true")
    args = parser.parse_args()

    allowed = allowlist(args.config)
    if (args.remote_addr, args.remote_port) not in allowed:
        print(
            f"[simulated] vsock-proxy: {args.remote_addr}:{args.remote_port} is not in the allow-list {args.config}",
            file=sys.stderr,
        )
        return 1
    remote = (args.remote_addr, args.remote_port)
    if os.environ.get(SIM_STATE_ENV):
        serve_enclaves(os.path.join(os.environ[SIM_STATE_ENV], "vsock"), args.local_port, remote)
    listener = socket.create_server(("127.0.0.1", args.local_port), reuse_port=False)
    print(f"[simulated] vsock-proxy: 127.0.0.1:{args.local_port} (TCP, for vsock) -> {remote[0]}:{remote[1]}")
    sys.stdout.flush()
    remote_accept(listener, remote)


def accept(listener, connect, what):
    while True:
        client = listener.accept()[0]
        threading.Thread(target=serve, args=(client, connect, what), daemon=True).start()


def remote_accept(listener, remote):
    accept(listener, lambda: socket.create_connection(remote), f"{remote[0]}:{remote[1]}")


def serve_enclaves(vsock_root, port, remote):
    """Listens in every running enclave's vsock directory, checking for new enclaves twice a second."""
    print(f"[simulated] vsock-proxy: CID 3 port {port} of the enclaves in {vsock_root} -> {remote[0]}:{remote[1]}")
    sys.stdout.flush()
    serving = {}
    while True:
        for cid in os.listdir(vsock_root) if os.path.isdir(vsock_root) else []:
            path = os.path.join(os.path.realpath(os.path.join(vsock_root, cid)), f"connect-3-{port}.sock")
            if serving.get(cid) == path and os.path.exists(path):
                continue
            try:
                if os.path.exists(path):
                    os.unlink(path)  # left by a proxy that stopped
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                listener.bind(path)
                os.chmod(path, 0o666)  # the enclave's application need not run as root
                listener.listen(64)
            except OSError as error:
                print(f"[simulated] vsock-proxy: cannot listen on {path}: {error}", file=sys.stderr)
                continue
            serving[cid] = path
            threading.Thread(target=remote_accept, args=(listener, remote), daemon=True).start()
        threading.Event().wait(0.5)


def forward():
    parser = argparse.ArgumentParser(prog="vsock-forward")
    parser.add_argument("listen_port", type=int)
    parser.add_argument("cid", type=int)
    parser.add_argument("vsock_port", type=int)
    args = parser.parse_args()
    state = os.environ.get(SIM_STATE_ENV)
    if not state:
        print(f"[simulated] vsock-forward: {SIM_STATE_ENV} is not set", file=sys.stderr)
        return 1
    path = os.path.join(state, "vsock", str(args.cid), f"listen-{args.vsock_port}.sock")
    listener = socket.create_server(("0.0.0.0", args.listen_port), reuse_port=False)
    print(f"[simulated] vsock-forward: 0.0.0.0:{args.listen_port} -> vsock {args.cid}:{args.vsock_port} ({path})")
    sys.stdout.flush()
    accept(listener, lambda: unix_connection(path), path)


if __name__ == "__main__":
    sys.exit(forward() if PROG == "vsock-forward" else proxy())
