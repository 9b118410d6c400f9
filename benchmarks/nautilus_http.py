"""The Nautilus master's hot path and its seal login, with baselines from the same run.

Usage: .venv/bin/python benchmarks/nautilus_http.py [--duration S] [--connections N] [--logins N]

Starts a Sui node stand-in, a simulated NSM and the master (`python -m k3sdaas.nautilus serve`, granian,
TLS 1.3) in a temporary directory, then measures:
  * wrk (Debian's `wrk`), N connections over TLS: authenticated GET /api/v1/security-context against the
    unauthenticated GET /health of the same server (targets: >= 10,000 req/s, P99 <= 15 ms, ratio >= 0.85);
  * seal login end to end (POST challenge, sign, POST auth) against a bare POST /api/v1/challenge;
  * the session check in process: cold (signature verification of a token not seen yet) against warm
    (the verified-session cache) and against a plain dict look-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from cryptography.hazmat.primitives.asymmetric import ed25519

from k3sdaas.nautilus.sessions import SessionIssuer
from k3sdaas_localnet.sui.testing import running_node

REPO = Path(__file__).resolve().parents[1]


def testkit() -> ModuleType:
    """The master harness of tests/nautilus (start_master, Chain, …), reused rather than copied."""
    spec = importlib.util.spec_from_file_location("nautilus_testkit", REPO / "tests" / "nautilus" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, seconds: int, connections: int, header: str | None = None) -> tuple[float, float, str]:
    """(requests/s, P99 ms, errors) from one wrk run."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if header:
        command[1:1] = ["-H", header]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return rate, float(value) * UNITS[unit], errors.group(0) if errors else "none"


TRIVIAL_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
"""


def calibration(directory: Path, cert: Path, key: Path, seconds: int, connections: int) -> tuple[float, float]:
    """A trivial ASGI app on granian with the same TLS: what this machine gives right now."""
    (directory / "trivial_app.py").write_text(TRIVIAL_APP)
    port = testkit_port()
    server = subprocess.Popen([sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                               "--port", str(port), "--ssl-certificate", str(cert), "--ssl-keyfile", str(key),
                               "--no-ws", "--log-level", "error", "trivial_app:app"], cwd=directory)
    try:
        time.sleep(2)
        rate, p99, _ = wrk(f"https://127.0.0.1:{port}/", seconds, connections)
        return rate, p99
    finally:
        server.terminate()
        server.wait(10)


def testkit_port() -> int:
    return int(sys.modules["nautilus_testkit"].free_port())


def timed(operation: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        operation()
        samples.append(time.perf_counter() - started)
    return samples


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(samples) * 1000:8.3f} ms   p99 {p99 * 1000:8.3f} ms"


def session_check(runs: int) -> None:
    issuer = SessionIssuer(ed25519.Ed25519PrivateKey.generate(), "https://bench", 900)
    tokens = [issuer.issue("0x" + "ab" * 32, 2, "0x" + "cd" * 32)[0] for _ in range(runs)]
    issuer._verified.clear()  # issuing remembers a token; forget them so the first check is cold
    started = time.perf_counter()
    for token in tokens:
        issuer.verify(token)
    cold_s = (time.perf_counter() - started) / runs
    started = time.perf_counter()
    for token in tokens:
        issuer.verify(token)
    warm_s = (time.perf_counter() - started) / runs
    table = dict.fromkeys(tokens, True)
    started = time.perf_counter()
    for token in tokens:
        _ = table[token]
    lookup_s = (time.perf_counter() - started) / runs
    print(f"session check   cold {cold_s * 1e6:8.1f} us   warm {warm_s * 1e6:8.2f} us   "
          f"baseline dict look-up {lookup_s * 1e6:6.2f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--logins", type=int, default=30)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("nautilus_http: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    kit = testkit()
    with tempfile.TemporaryDirectory(prefix="nautilus-bench-") as tmp, running_node(Path(tmp) / "sui") as node:
        operator = kit.new_signer()
        node.faucet(operator.address, 10_000 * kit.SUI)
        chain = kit.Chain(node, operator, kit.publish(node, operator))
        nsm, _ = kit.simulated_nsm(str(Path(tmp) / "nsm.sock"))
        with nsm:
            state = Path(tmp) / "master"
            master = kit.start_master(state, kit.master_settings(chain, Path(tmp) / "kube", nsm.bound_address, state,
                                                                 logging={"level": "warning"}))
            try:
                owner, token = chain.stake(2)
                session = master.login(owner, token.token_id)
                print(f"master {master.url} (granian, TLS 1.3), wrk {args.connections} connections, "
                      f"{args.duration} s per run")
                base_rate, base_p99, base_errors = wrk(f"{master.url}/health", args.duration, args.connections)
                rate, p99, errors = wrk(f"{master.url}/api/v1/security-context", args.duration, args.connections,
                                        f"Authorization: Bearer {session}")
                print(f"GET /health (unauthenticated)             {base_rate:9.0f} req/s   P99 {base_p99:6.2f} ms   "
                      f"errors: {base_errors}")
                print(f"GET /api/v1/security-context (session)    {rate:9.0f} req/s   P99 {p99:6.2f} ms   "
                      f"errors: {errors}")
                print(f"ratio authenticated/unauthenticated {rate / base_rate:.2f} (target >= 0.85); "
                      f"targets >= 10,000 req/s: {'met' if rate >= 10_000 else f'missed by {10_000 - rate:.0f}'}, "
                      f"P99 <= 15 ms: {'met' if p99 <= 15 else f'missed by {p99 - 15:.2f} ms'}")
                trivial_rate, trivial_p99 = calibration(Path(tmp), master.cert, state / "tls" / "master.key",
                                                        args.duration, args.connections)
                print(f"calibration: trivial ASGI app on granian, same TLS {trivial_rate:9.0f} req/s   "
                      f"P99 {trivial_p99:6.2f} ms   (this machine, now)")
                logins = timed(lambda: master.login(owner, token.token_id), args.logins)
                challenges = timed(lambda: master.client.post("/api/v1/challenge"), args.logins)
                print(f"seal login (challenge, sign, auth)    {ms(logins)}")
                print(f"baseline POST /api/v1/challenge       {ms(challenges)}")
            finally:
                master.stop()
    session_check(2000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
