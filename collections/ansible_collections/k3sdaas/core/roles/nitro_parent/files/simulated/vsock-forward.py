"""SIMULATED TCP-to-vsock forwarder (k3sdaas.core.nitro_parent, nitro_parent_simulated: true).

vsock-forward LISTEN_PORT CID VSOCK_PORT does on a simulated parent what
`socat TCP-LISTEN:LISTEN_PORT,fork,reuseaddr VSOCK-CONNECT:CID:VSOCK_PORT` does on a real one: it exposes a port
an enclave listens on. Under the k3sdaas nitro-cli simulator an enclave's vsock port is the Unix socket
listen-VSOCK_PORT.sock in its vsock directory, K3SDAAS_NITRO_SIM_STATE/vsock/CID/.
"""

import argparse
import os
import socket
import sys
import threading


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


def serve(client, path):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError as error:  # no enclave with that CID, or it does not listen on the port (yet)
        print(f"[simulated] vsock-forward: cannot reach {path}: {error}", file=sys.stderr)
        client.close()
        upstream.close()
        return
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    pipe(upstream, client)


def main():
    parser = argparse.ArgumentParser(prog="vsock-forward")
    parser.add_argument("listen_port", type=int)
    parser.add_argument("cid", type=int)
    parser.add_argument("vsock_port", type=int)
    args = parser.parse_args()
    state = os.environ.get("K3SDAAS_NITRO_SIM_STATE")
    if not state:
        print("[simulated] vsock-forward: K3SDAAS_NITRO_SIM_STATE is not set", file=sys.stderr)
        return 1
    path = os.path.join(state, "vsock", str(args.cid), f"listen-{args.vsock_port}.sock")
    listener = socket.create_server(("0.0.0.0", args.listen_port), reuse_port=False)
    print(f"[simulated] vsock-forward: 0.0.0.0:{args.listen_port} -> vsock {args.cid}:{args.vsock_port} ({path})")
    sys.stdout.flush()
    while True:
        client = listener.accept()[0]
        threading.Thread(target=serve, args=(client, path), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
