"""The module against a real Nautilus master (``python -m k3sdaas.nautilus serve``) whose simulated NSM
attests its keys: the document is fetched with a fresh nonce and pinned to the TLS certificate it binds."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from nautilus.conftest import Chain, Master, master_settings, start_master

from helpers.sui import no_transaction_reaches
from k3sdaas.nautilus.identity import make_tls
from k3sdaas.nitro.measure import measure_string
from k3sdaas_localnet.nitro.nsm_sim import NsmServer, SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki

from .conftest import IMAGE_PCRS, INSTANCE_ID, MODULE_ID, Registry, pcr_dict

pytestmark = pytest.mark.slow


@pytest.fixture
def master(registry: Registry, pki: SimulatedPki, tmp_path: Path) -> Iterator[Master]:
    nsm = SimulatedNsm(pki, MODULE_ID, boot_pcrs(*IMAGE_PCRS, instance_pcr=measure_string(INSTANCE_ID)))
    with NsmServer(nsm, str(tmp_path / "nsm.sock")) as server:
        chain = Chain(registry.node, registry.operator, registry.deployment)
        kube = tmp_path / "kube"  # never used: registration needs no Kubernetes
        running = start_master(tmp_path / "master", master_settings(chain, kube, server.bound_address,
                                                                    tmp_path / "master" / "state"))
        yield running
        running.stop()


def test_registers_the_running_masters_key(registry: Registry, master: Master) -> None:
    expected_key = master.client.post("/api/v1/attestation", json={}).json()["enclave_public_key"]
    run = registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_url=master.url)
    assert run.returncode == 0, run.output
    result = registry.result(run)
    assert result["actions"] == ["update_pcrs", "register_enclave"]
    assert result["enclave_public_key"] == expected_key == registry.read()["enclave_pk"]
    assert len(result["attestation"]["nonce"]) == 64  # the module's own fresh nonce was attested

    with no_transaction_reaches(registry.node):
        again = registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_url=master.url,
                             attestation_ca_file=str(master.cert))
    assert again.stats["localhost"]["changed"] == 0, again.output


def test_a_wrong_ca_is_refused(registry: Registry, master: Master) -> None:
    with no_transaction_reaches(registry.node):
        failure = registry.result(registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_url=master.url,
                                               attestation_ca_file=str(registry.node.ca_path)))
    assert failure["failed"] and failure["field"] == "attestation_url", failure
    assert "CERTIFICATE_VERIFY_FAILED" in failure["msg"]
    assert registry.read()["pcr_version"] == 0


@contextmanager
def tls_relay(upstream: str, folder: Path) -> Iterator[str]:
    """A TLS endpoint with a certificate of its own that relays each connection to ``upstream`` over TLS
    (asyncio in a thread of its own: one loop drives both TLS sessions)."""
    tls = make_tls(folder, ["127.0.0.1"])
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(tls.cert, tls.key)
    client_side = ssl.create_default_context()
    client_side.check_hostname, client_side.verify_mode = False, ssl.CERT_NONE
    host, port = upstream.removeprefix("https://").rsplit(":", 1)
    loop = asyncio.new_event_loop()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port), ssl=client_side)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = loop.run_until_complete(asyncio.start_server(relay, "127.0.0.1", 0, ssl=server_side))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()


def test_a_certificate_the_document_does_not_bind_is_refused(registry: Registry, master: Master,
                                                             tmp_path: Path) -> None:
    with tls_relay(master.url, tmp_path / "relay") as relayed, no_transaction_reaches(registry.node):
        failure = registry.result(registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_url=relayed))
    assert failure["failed"] and failure["field"] == "attestation_url", failure
    assert "not the one its attestation binds" in failure["msg"]
    assert registry.read()["pcr_version"] == 0
