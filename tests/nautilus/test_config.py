"""Settings: defaults, the YAML file, the environment and options, in that order, every value bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from k3sdaas.errors import InvalidInput
from k3sdaas.nautilus.config import load_config

PACKAGE = "0x" + "ab" * 32


def test_file_then_environment_then_options(tmp_path: Path) -> None:
    config_file = tmp_path / "nautilus-config.yaml"
    config_file.write_text(f"server:\n  listen_port: 7443\nsui:\n  package_id: '{PACKAGE}'\n"
                           "auth:\n  session_ttl: 600\n")
    config = load_config(config_file, env={})
    assert (config.listen_port, config.session_ttl, config.package_id) == (7443, 600.0, PACKAGE)
    assert config.audience == "https://0.0.0.0:7443"
    config = load_config(config_file, env={"K3SDAAS_NAUTILUS_SESSION_TTL": "300", "SUI_RPC_URL": "https://n:443"})
    assert (config.session_ttl, config.rpc_url) == (300.0, "https://n:443")
    config = load_config(config_file, env={"K3SDAAS_NAUTILUS_SESSION_TTL": "300"}, session_ttl=120)
    assert config.session_ttl == 120.0
    # What enclave/entrypoint.py sets for the service inside the enclave.
    config = load_config(config_file, env={"K3SDAAS_LISTEN": "127.0.0.1:6443"})
    assert (config.listen_address, config.listen_port) == ("127.0.0.1", 6443)
    # serve --local's values are the base: the file and the environment still win.
    config = load_config(config_file, env={}, base={"listen_port": 9999, "state_dir": "/tmp/x"})
    assert (config.listen_port, config.state_dir) == (7443, "/tmp/x")


@pytest.mark.parametrize(("env", "named"), [
    ({"K3SDAAS_NAUTILUS_SESSION_TTL": "0"}, "session_ttl"),
    ({"K3SDAAS_NAUTILUS_SESSION_TTL": "nan"}, "session_ttl"),
    ({"K3SDAAS_NAUTILUS_ATTESTATION_INTERVAL": "7200"}, "attestation_interval"),  # at least hourly
    ({"K3SDAAS_NAUTILUS_MIN_TIER": "5"}, "min_tier"),
    ({"K3SDAAS_NAUTILUS_LISTEN_PORT": "70000"}, "listen_port"),
    ({"K3SDAAS_NAUTILUS_MAX_BODY_BYTES": "1"}, "max_body_bytes"),
    ({"K3SDAAS_NAUTILUS_LOG_LEVEL": "loud"}, "log_level"),
    ({"K3SDAAS_NAUTILUS_PUBLIC_URL": "http://insecure"}, "public_url"),
    ({"K3SDAAS_PACKAGE_ID": "0xZZ"}, "package_id"),
    ({"K3SDAAS_NAUTILUS_RBAC_INTERVAL": "0"}, "rbac_interval"),
    ({"K3SDAAS_NAUTILUS_RBAC_INTERVAL": "3601"}, "rbac_interval"),
])
def test_out_of_range_values_are_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        load_config(None, env={"K3SDAAS_PACKAGE_ID": PACKAGE, **env})
