"""``GET /kubectl/config``: a kubeconfig whose user logs in through the ``k3sdaas-kubectl-auth`` exec plugin.

It holds no secret (the master's certificate is public, the key stays on the user's machine), so it is
served without a session: ``?token_id=0x…`` (the seal token to log in with), optional ``key_file`` (a
Sui key file or keystore; default the Sui CLI's keystore), ``api_version`` (``v1``, or ``v1beta1`` for
kubectl ≤ 1.21) and ``url`` (where kubectl reaches the master when not at its public URL, e.g. a published
port: the cluster's server and the plugin's ``--url``; the proof is still signed for the public URL).
"""

from __future__ import annotations

import base64
import re

import yaml  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..chain.keys import normalize_address
from ..errors import InvalidInput
from .errors import bad_request
from .proxy import PREFIX
from .service import Master

PLUGIN = "k3sdaas-kubectl-auth"
DEFAULT_KEY_FILE = "~/.sui/sui_config/sui.keystore"
API_VERSIONS = {"v1": "client.authentication.k8s.io/v1", "v1beta1": "client.authentication.k8s.io/v1beta1"}
MAX_PATH_CHARS = 1024
URL = re.compile(r"https://[A-Za-z0-9.\-]{1,240}(:[0-9]{1,5})?|https://\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


def kubeconfig(server: str, ca_pem: bytes, token_id: str, key_file: str, api_version: str = "v1",
               url: str | None = None) -> dict[str, object]:
    """The kubeconfig; ``server`` is the master's URL (the challenge audience), reached at ``url`` (default
    ``server``); the API lives under its /k8s."""
    ca_data = base64.b64encode(ca_pem).decode("ascii")
    name = f"k3sdaas-{server.removeprefix('https://').replace(':', '-').replace('/', '-')}"
    exec_config: dict[str, object] = {
        "apiVersion": API_VERSIONS[api_version], "command": PLUGIN,
        "args": ["--server", server, *(["--url", url] if url else []), "--ca-data", ca_data, "--key-file", key_file,
                 "--token-id", token_id],
        "provideClusterInfo": False,
        "installHint": f"{PLUGIN} comes with the k3sdaas Python package: pip install k3sdaas",
    }
    if api_version == "v1":
        exec_config["interactiveMode"] = "Never"  # required by v1; kubectl ≤ 1.21 does not know the field
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": (url or server) + PREFIX,
                                                "certificate-authority-data": ca_data}}],
        "users": [{"name": f"{name}-{token_id[:10]}", "user": {"exec": exec_config}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-{token_id[:10]}"}}],
    }


def kubeconfig_route(master: Master) -> Route:
    async def serve(request: Request) -> Response:
        query = request.query_params
        try:
            token_id = normalize_address(query.get("token_id") or "", "token_id")
        except InvalidInput:
            raise bad_request("token_id must be the seal token's object id (0x and 64 hex digits)",
                              "token_id") from None
        key_file = query.get("key_file") or DEFAULT_KEY_FILE
        if len(key_file) > MAX_PATH_CHARS or not key_file.isprintable():
            raise bad_request(f"key_file must be a path of at most {MAX_PATH_CHARS} printable characters", "key_file")
        api_version = query.get("api_version") or "v1"
        if api_version not in API_VERSIONS:
            raise bad_request(f"api_version must be one of {', '.join(API_VERSIONS)}", "api_version")
        url = (query.get("url") or "").rstrip("/") or None
        if url is not None and (not URL.fullmatch(url)):
            raise bad_request("url must be https://HOST[:PORT] (at most 248 characters, no path)", "url")
        body = kubeconfig(master.config.audience, master.tls.cert.read_bytes(), token_id, key_file, api_version,
                          url)
        return Response(yaml.safe_dump(body, sort_keys=False), media_type="application/yaml")

    return Route("/kubectl/config", serve, methods=["GET"])
