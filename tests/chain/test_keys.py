"""Key loading: every accepted form, the address, and errors that never echo the key (pure)."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import pytest
from pysui import PysuiConfiguration
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_common.config.confgroup import GroupProtocol
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import InvalidAddress, InvalidKey, load_signer, normalize_address
from k3sdaas.chain.keys import signer_from_file, signer_from_text


@pytest.fixture(scope="module")
def keypair():
    return create_new_keypair(scheme=SignatureScheme.ED25519)[1]


def pysui_address(keystring: str) -> str:
    """The address pysui's own configuration derives for a key."""
    with tempfile.TemporaryDirectory() as tmp:
        config = PysuiConfiguration.initialize_config(
            in_folder=Path(tmp), init_groups=[{"name": "b", "make_active": True}]
        )
        return config.new_group(group_name="g", profile_block=[], key_block=[{"key_string": keystring}],
                                active_address_index=0, group_protocol=GroupProtocol.GRPC, persist=False)[0]


def test_bech32_base64_and_keystore_forms_give_the_same_signer(keypair) -> None:
    forms = [keypair.to_bech32(), keypair.serialize(), json.dumps([keypair.serialize()]),
             "  " + keypair.to_bech32() + "\n"]
    signers = {signer_from_text(text) for text in forms}
    assert len(signers) == 1
    signer = signers.pop()
    assert signer.address == pysui_address(keypair.serialize())
    assert signer.keystring not in repr(signer)


@pytest.mark.parametrize(
    "text", ["not a key", "suiprivkey1broken", base64.b64encode(b"\x00" * 10).decode(), "[]", "[1]", "[oops"]
)
def test_bad_key_text_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        signer_from_text(text)
    assert caught.value.field == "private_key"
    if len(text) > 3:
        assert text not in str(caught.value)


def test_key_file_must_be_private(tmp_path: Path, keypair) -> None:
    key = tmp_path / "operator.key"
    key.write_text(keypair.to_bech32())
    key.chmod(0o644)
    with pytest.raises(InvalidKey, match="chmod 600") as caught:
        signer_from_file(key)
    assert caught.value.field == "key_file"
    key.chmod(0o600)
    assert load_signer(key_file=str(key)).address == signer_from_text(keypair.to_bech32()).address


def test_missing_key_file_and_missing_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidKey, match="does not exist"):
        load_signer(key_file=str(tmp_path / "absent.key"))
    with pytest.raises(InvalidKey, match="SUI_KEY_FILE") as caught:
        load_signer()
    assert caught.value.field == "key_file"


def test_file_and_text_together_are_refused(tmp_path: Path, keypair) -> None:
    with pytest.raises(InvalidKey, match="not both"):
        load_signer(key_file=str(tmp_path / "k"), private_key=keypair.to_bech32())


@pytest.mark.parametrize(
    ("value", "expected"), [("0x2", "0x" + "0" * 63 + "2"), ("0xABCDEF", "0x" + "0" * 58 + "abcdef")]
)
def test_normalize_address(value: str, expected: str) -> None:
    assert normalize_address(value) == expected


@pytest.mark.parametrize("value", ["2", "0x", "0xg1", "0x" + "1" * 65, "", "worker-1"])
def test_bad_addresses_name_the_field(value: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalize_address(value, "owner")
    assert caught.value.field == "owner"


async def test_client_configuration_leaves_nothing_on_disk(keypair, tmp_path, monkeypatch) -> None:
    from k3sdaas.chain import ChainSettings
    from k3sdaas.chain.transport import build_pysui_client

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    signer = signer_from_text(keypair.to_bech32())
    client = build_pysui_client(ChainSettings(rpc_url="127.0.0.1:9", signer=signer))
    assert client.config.active_address == signer.address
    assert list(tmp_path.iterdir()) == []
    await client.close()
