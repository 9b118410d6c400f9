"""k3sdaas.core.nautilus_register through ansible-playbook against the Sui node stand-in, which verifies the
documents on chain with the simulated NSM's root (no mocks)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from helpers.sui import no_transaction_reaches

from .conftest import IMAGE_PCRS, Registry, enclave_key, pcr_dict

pytestmark = pytest.mark.slow
OTHER_PCR0 = bytes([7]) * 48


def test_registers_then_changes_nothing(registry: Registry, make_document: Callable[..., bytes]) -> None:
    key = enclave_key()
    document = base64.b64encode(make_document(key)).decode()
    first = registry.run(diff=True, pcrs=pcr_dict(IMAGE_PCRS), attestation_document=document)
    assert first.returncode == 0, first.output
    result = registry.result(first)
    assert result["changed"] and result["actions"] == ["update_pcrs", "register_enclave"]
    assert set(result["tx_digests"]) == {"update_pcrs", "register_enclave"}
    on_chain = registry.read()
    assert on_chain["enclave_pk"] == key.hex() == result["enclave_public_key"]
    assert [on_chain[f"pcr{i}"] for i in range(3)] == [p.hex() for p in IMAGE_PCRS]
    assert result["pcrs"] == pcr_dict(IMAGE_PCRS) and result["pcr_version"] == on_chain["pcr_version"] == 1
    assert result["registered_at_ms"] == on_chain["registered_at_ms"] > 0
    assert result["attestation"]["public_key"] == key.hex()
    assert result["diff"]["before"] == {"pcrs": {"PCR0": "", "PCR1": "", "PCR2": ""}, "enclave_public_key": ""}
    assert result["diff"]["after"] == {"pcrs": pcr_dict(IMAGE_PCRS), "enclave_public_key": key.hex()}

    with no_transaction_reaches(registry.node):
        second = registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_document=document)
    assert second.returncode == 0, second.output
    assert second.stats["localhost"]["changed"] == 0
    assert registry.result(second)["actions"] == [] and registry.read() == on_chain


def test_a_new_key_is_registered_without_touching_the_pcrs(registry: Registry,
                                                           make_document: Callable[..., bytes]) -> None:
    first = registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_document=base64.b64encode(
        make_document(enclave_key())).decode())
    assert first.returncode == 0, first.output
    key, path = enclave_key(), registry.folder / "attestation.cbor"
    path.write_bytes(make_document(key))  # raw COSE bytes in a file
    run = registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_document=str(path))
    assert run.returncode == 0, run.output
    assert registry.result(run)["actions"] == ["register_enclave"]
    assert registry.read()["enclave_pk"] == key.hex() and registry.read()["pcr_version"] == 1


def test_pcr_mismatch_fails_naming_pcr0_without_a_transaction(registry: Registry,
                                                              make_document: Callable[..., bytes]) -> None:
    document = make_document(enclave_key(), pcrs=(OTHER_PCR0, *IMAGE_PCRS[1:]))
    with no_transaction_reaches(registry.node):
        run = registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_document=base64.b64encode(document).decode())
    failure = registry.result(run)
    assert failure["failed"] and failure["field"] == "pcrs"
    assert f"PCR0 is {OTHER_PCR0.hex()}, expected {IMAGE_PCRS[0].hex()}" in failure["msg"]
    assert registry.read()["pcr_version"] == 0


def test_eif_describe_output_gives_the_pcrs(registry: Registry) -> None:
    described = registry.folder / "describe.json"
    measurements = {"HashAlgorithm": "Sha384 { ... }", **pcr_dict(IMAGE_PCRS)}
    described.write_text(json.dumps({"EifVersion": 4, "Measurements": measurements}))
    run = registry.run(eif_describe=str(described))
    assert run.returncode == 0, run.output
    assert registry.result(run)["actions"] == ["update_pcrs"]
    assert registry.read()["pcr0"] == IMAGE_PCRS[0].hex()
    again = registry.run(pcrs=pcr_dict(IMAGE_PCRS))
    assert again.stats["localhost"]["changed"] == 0, again.output


def test_check_mode_decides_as_the_real_run(registry: Registry, make_document: Callable[..., bytes]) -> None:
    key = enclave_key()
    args = {"pcrs": pcr_dict(IMAGE_PCRS), "attestation_document": base64.b64encode(make_document(key)).decode()}
    with no_transaction_reaches(registry.node):
        check = registry.run(check=True, **args)
    predicted = registry.result(check)
    assert predicted["changed"] and registry.read()["pcr_version"] == 0, check.output
    real = registry.result(registry.run(**args))
    shown = ("changed", "actions", "pcrs", "pcr_version", "enclave_public_key")
    assert {k: predicted[k] for k in shown} == {k: real[k] for k in shown}

    # a new key under the same PCRs: the registration itself is simulated on the node
    args["attestation_document"] = base64.b64encode(make_document(enclave_key())).decode()
    with no_transaction_reaches(registry.node):
        check = registry.result(registry.run(check=True, **args))
    assert check["actions"] == ["register_enclave"] and registry.read()["enclave_pk"] == key.hex()
    real = registry.result(registry.run(**args))
    assert {k: check[k] for k in shown} == {k: real[k] for k in shown}
    with no_transaction_reaches(registry.node):
        assert not registry.result(registry.run(check=True, **args))["changed"]


@pytest.mark.parametrize(("document", "says"), [
    ("bm90IGEgZG9jdW1lbnQ=", "attestation document is refused"),  # base64 of text, not COSE
    ("%%% not base64 %%%", "neither base64"),
    ("stale", "s old by the chain's clock"),
    ("expired", "attestation document is refused"),
])
def test_garbled_stale_or_expired_documents_fail_cleanly(registry: Registry, make_document: Callable[..., bytes],
                                                         document: str, says: str) -> None:
    ages = {"stale": timedelta(minutes=20), "expired": timedelta(hours=4)}
    if document in ages:
        document = base64.b64encode(make_document(enclave_key(), age=ages[document])).decode()
    first = registry.run(pcrs=pcr_dict(IMAGE_PCRS))  # PCRs in place, so only the registration is at stake
    assert first.returncode == 0, first.output
    before = registry.read()
    with no_transaction_reaches(registry.node, reads=says != "neither base64"):  # that one fails before connecting
        failure = registry.result(registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_document=document))
    assert failure["failed"] and failure["field"] == "attestation_document", failure
    assert says in failure["msg"] and "Traceback" not in str(failure.get("exception"))
    assert registry.read() == before


def test_a_stale_document_leaves_the_pcrs_alone_too(registry: Registry, make_document: Callable[..., bytes]) -> None:
    document = base64.b64encode(make_document(enclave_key(), age=timedelta(minutes=11))).decode()
    with no_transaction_reaches(registry.node):
        failure = registry.result(registry.run(pcrs=pcr_dict(IMAGE_PCRS), attestation_document=document))
    assert failure["failed"] and "accepts at most 600 s" in failure["msg"], failure
    assert registry.read()["pcr_version"] == 0  # refused before update_pcrs, not half done
