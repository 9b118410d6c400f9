"""SIMULATED vsock-proxy (k3sdaas.core.nitro_parent, nitro_parent_simulated: true).

Same command line as the real proxy: vsock-proxy LOCAL_PORT REMOTE_ADDR REMOTE_PORT [--config FILE]
[-w WORKERS] [-4|-6]. Like the real one it refuses a destination missing from the allow-list
(flow-style entries "- {address: HOST, port: PORT}", the format the role writes). Unlike it, it
listens on 127.0.0.1:LOCAL_PORT over TCP, because local hosts have no vsock to the enclave, and it
accepts -w, -4 and -6 for compatibility only (a thread per connection, the resolver's address family).

With K3SDAAS_NITRO_SIM_STATE set (the k3sdaas nitro-cli simulator's state), it serves what an enclave of that
simulator dials as vsock CID 3 (the parent) port LOCAL_PORT instead: the Unix socket connect-3-LOCAL_PORT.sock
in each running enclave's vsock directory (STATE/vsock/<cid>/), created as enclaves start.
"""

import argparse
import os
import re
import socket
import sys
import threading

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


def serve(client, remote):
    try:
        upstream = socket.create_connection(remote)
    except OSError as error:
        print(f"[simulated] vsock-proxy: cannot reach {remote[0]}:{remote[1]}: {error}", file=sys.stderr)
        client.close()
        return
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    pipe(upstream, client)


def main():
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
    accept(listener, remote)


def accept(listener, remote):
    while True:
        client = listener.accept()[0]
        threading.Thread(target=serve, args=(client, remote), daemon=True).start()


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
            threading.Thread(target=accept, args=(listener, remote), daemon=True).start()
        threading.Event().wait(0.5)


if __name__ == "__main__":
    sys.exit(main())
