"""``k3sdaas-kubectl-auth --server URL [--url URL] (--ca-data B64 | --ca-file PEM) --key-file PATH --token-id 0x…``

kubectl runs this (``users[].user.exec`` of the kubeconfig that ``GET /kubectl/config`` serves) and reads
an ``ExecCredential`` from its stdout. The plugin asks the master for a challenge, signs it with the
user's Sui key (a key file or the Sui CLI's keystore; the key is never printed), posts the proof to
``/api/v1/auth`` and prints the session with its ``expirationTimestamp``, in the apiVersion kubectl
names in ``KUBERNETES_EXEC_INFO`` (``v1``, or ``v1beta1`` for kubectl ≤ 1.21).

kubectl keeps a credential only in its own memory, so the session is also cached on disk (0600, under
``$XDG_CACHE_HOME/k3sdaas`` or ``~/.cache/k3sdaas``, one file per master, token and master certificate)
until shortly before it expires. kubectl runs the plugin once per process, and again only after the API answered 401: so
when the same kubectl process asks twice, the cached session was refused, and the plugin logs in anew.
``--refresh`` does the same by hand. Errors exit 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import ssl
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

PROG = "k3sdaas-kubectl-auth"
API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
MAX_EXEC_INFO = 64 * 1024
MAX_CACHE_BYTES = 16 * 1024
MAX_ANSWER_BYTES = 64 * 1024
SERVED_MEMORY = 16  # the last kubectl processes a cached session went to
TIMEOUT = 15.0
TOKEN_ID = re.compile(r"0x[0-9a-f]{64}")


class PluginError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 1, not argparse's usage and exit 2
        raise PluginError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="kubectl exec credential plugin for a K3s-DaaS master")
    parser.add_argument("--server", required=True, help="the master's URL (https://host:6443), the challenge audience")
    parser.add_argument("--url", help="where to reach the master when not at --server (a port forward, a tunnel); "
                                      "the proof is still signed for --server")
    ca = parser.add_mutually_exclusive_group(required=True)
    ca.add_argument("--ca-data", help="the master's certificate, base64 PEM (as in the kubeconfig)")
    ca.add_argument("--ca-file", help="the master's certificate, a PEM file")
    parser.add_argument("--key-file", required=True, help="Sui key file or keystore (first key)")
    parser.add_argument("--token-id", required=True, help="the seal token to log in with (0x…)")
    parser.add_argument("--refresh", action="store_true", help="ignore the cached session and log in")
    return parser


def requested_api_version(environ: dict[str, str]) -> str:
    """The apiVersion kubectl asks for; v1 when run by hand."""
    raw = environ.get("KUBERNETES_EXEC_INFO")
    if not raw:
        return API_VERSIONS[0]
    if len(raw) > MAX_EXEC_INFO:
        raise PluginError(f"KUBERNETES_EXEC_INFO is longer than {MAX_EXEC_INFO} characters")
    try:
        version = json.loads(raw).get("apiVersion")
    except (ValueError, AttributeError):
        raise PluginError("KUBERNETES_EXEC_INFO is not a JSON object") from None
    if version not in API_VERSIONS:
        raise PluginError(f"kubectl asks for ExecCredential {version!r}; this plugin speaks {', '.join(API_VERSIONS)}")
    return str(version)


# ----- the cache -----------------------------------------------------------------------------------

def cache_path(server: str, token_id: str, ca: str, environ: dict[str, str]) -> Path:
    """One file per master, token and master certificate (a restarted master has a new one, and new sessions)."""
    base = Path(environ.get("XDG_CACHE_HOME") or Path(environ.get("HOME") or Path.home()) / ".cache")
    digest = hashlib.sha256(f"{server}\n{token_id}\n{ca}".encode()).hexdigest()[:32]
    return base / "k3sdaas" / "sessions" / f"{digest}.json"


def parent_process() -> str:
    """kubectl's pid and start time (pids are reused; the pair is not)."""
    ppid = os.getppid()
    try:
        started = Path(f"/proc/{ppid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = ""
    return f"{ppid}:{started}"


def read_cache(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            return None
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("session"), str) or \
            not isinstance(entry.get("refresh_at"), (int, float)) or not isinstance(entry.get("served"), list):
        return None
    return entry


def write_cache(path: Path, entry: dict[str, Any]) -> None:
    """Atomically, 0600 in a 0700 directory; a cache that cannot be written only costs a login next time."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entry, handle)
        os.replace(temporary, path)
    except OSError:
        pass


def drop_cache(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# ----- the login -----------------------------------------------------------------------------------

def tls_context(ca_data: str | None, ca_file: str | None) -> ssl.SSLContext:
    try:
        if ca_data is not None:
            return ssl.create_default_context(cadata=base64.b64decode(ca_data, validate=True).decode("ascii"))
        return ssl.create_default_context(cafile=ca_file)
    except (binascii.Error, UnicodeDecodeError, ValueError, ssl.SSLError):
        raise PluginError("--ca-data must be a base64 PEM certificate") from None
    except OSError as exc:
        raise PluginError(f"--ca-file {ca_file!r} cannot be read: {exc.strerror}") from None


def _answer(response: Any, what: str) -> dict[str, Any]:
    try:
        body = json.loads(response.content[:MAX_ANSWER_BYTES])
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else None
        raise PluginError(f"{what} refused by the master (HTTP {response.status_code}): "
                          f"{message or response.text[:200].strip() or 'no reason given'}")
    return body


def login(server: str, tls: ssl.SSLContext, key_file: str, token_id: str, url: str | None = None
          ) -> tuple[str, float]:
    """(session, expires_at in seconds since the epoch) from a fresh seal proof for audience ``server``, sent to
    ``url`` (default ``server``)."""
    import httpx

    from ..chain.keys import signer_from_file
    from ..errors import K3sdaasError
    from ..seal import Challenge, sign_personal_message

    try:
        signer = signer_from_file(os.path.expanduser(key_file), field_name="--key-file")
    except K3sdaasError as exc:
        raise PluginError(str(exc)) from None
    try:
        with httpx.Client(base_url=url or server, verify=tls, timeout=TIMEOUT, trust_env=False) as client:
            challenge = _answer(client.post("/api/v1/challenge", json={}), "the challenge")
            try:
                text = Challenge(str(challenge["nonce"]), server, token_id, signer.address,
                                 int(challenge["issued_at"])).message()
            except (KeyError, TypeError, ValueError, K3sdaasError) as exc:
                raise PluginError(f"the master's challenge is unusable: {exc}") from None
            proof = {"token_id": token_id, "address": signer.address, "nonce": challenge["nonce"],
                     "issued_at": int(challenge["issued_at"]), "audience": server,
                     "signature": sign_personal_message(signer, text)}
            answer = _answer(client.post("/api/v1/auth", json=proof), "the login")
    except httpx.HTTPError as exc:
        raise PluginError(f"the master {url or server} is unreachable: {exc.__class__.__name__}: {exc}") from None
    session, expires_at = answer.get("session"), answer.get("expires_at")
    if not isinstance(session, str) or isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        raise PluginError("the master's login answer lacks session and expires_at")
    return session, float(expires_at)


def credential(api_version: str, session: str, refresh_at: float) -> dict[str, Any]:
    stamp = dt.datetime.fromtimestamp(int(refresh_at), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": api_version, "kind": "ExecCredential",
            "status": {"token": session, "expirationTimestamp": stamp}}


def run(argv: list[str] | None, environ: dict[str, str]) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    server = args.server.rstrip("/")
    if not server.startswith("https://") or len(server) > 248:
        raise PluginError("--server must be the master's https:// URL (at most 248 characters)")
    url = args.url.rstrip("/") if args.url else None
    if url is not None and (not url.startswith("https://") or len(url) > 248):
        raise PluginError("--url must be an https:// URL (at most 248 characters)")
    token_id = args.token_id.lower()
    if not TOKEN_ID.fullmatch(token_id):
        raise PluginError("--token-id must be the seal token's object id, 0x and 64 hex digits")
    api_version = requested_api_version(environ)
    path = cache_path(server, token_id, args.ca_data or args.ca_file, environ)
    caller = parent_process()
    entry = None if args.refresh else read_cache(path)
    if entry is not None and (entry["refresh_at"] <= time.time() or caller in entry["served"]):
        entry = None  # about to expire, or this very kubectl got a 401 with it and asks again
        drop_cache(path)
    if entry is None:
        session, expires_at = login(server, tls_context(args.ca_data, args.ca_file), args.key_file, token_id, url)
        now = time.time()
        margin = min(30.0, max(0.0, expires_at - now) / 4)  # hand over a fresh one before the master refuses it
        entry = {"session": session, "refresh_at": expires_at - margin, "served": []}
    entry["served"] = [*entry["served"][-(SERVED_MEMORY - 1):], caller]
    write_cache(path, entry)
    return credential(api_version, entry["session"], entry["refresh_at"])


def main(argv: list[str] | None = None) -> int:
    try:
        print(json.dumps(run(argv, dict(os.environ))))
    except PluginError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0
