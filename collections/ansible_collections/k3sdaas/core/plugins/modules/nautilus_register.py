#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nautilus_register
short_description: Put the master enclave's PCRs on chain and register its attested key
version_added: 0.1.0
description:
  - Sets the deployment's EnclaveRegistry to the enclave image's PCR0, PCR1 and PCR2 (C(update_pcrs), which needs
    the AdminCap held by the signer) when they differ from O(pcrs) or O(eif_describe).
  - With O(attestation_url) or O(attestation_document), verifies the enclave's Nitro attestation document here
    first (signature, certificate chain to the pinned root, PCRs equal to the wanted ones, the fresh nonce) and
    then registers the key it carries (C(register_enclave), verified again on chain) unless the registry already
    trusts that key under the current PCRs.
  - Updating the PCRs drops the registered key (the package's rule), so the key is registered again after a PCR
    change.
  - The package has no function to deregister an enclave, so only O(state=present) exists; a new image replaces
    the key through new PCRs.
options:
  pcrs:
    description:
      - The enclave image's measurements, as M(k3sdaas.core.nitro_enclave) returns them in its C(pcrs),
        V(PCR0), V(PCR1), V(PCR2) (required) and V(PCR8) (optional, signed images), each 96 hex digits.
      - V(PCR8) is not stored on chain; when given, the attestation document must carry it too.
      - Mutually exclusive with O(eif_describe); one of the two is required.
    type: dict
  eif_describe:
    description:
      - A file holding the JSON that C(nitro-cli describe-eif) (or C(nitro-cli build-enclave)) printed; its
        C(Measurements) give the PCRs.
      - A regular file of at most 64 KiB.
    type: path
  attestation_url:
    description:
      - The Nautilus master's base URL (V(https://host:6443)). The module asks C(POST /api/v1/attestation) for a
        document carrying a fresh random nonce.
      - Without O(attestation_ca_file) the TLS certificate is not checked against a CA; instead the certificate
        the master presented must be the one the document binds (its C(user_data) is the SHA-256 of the
        certificate's SubjectPublicKeyInfo).
      - Mutually exclusive with O(attestation_document).
    type: str
  attestation_ca_file:
    description:
      - A PEM file of CA certificates to verify the master's TLS certificate (and host name) with, for a master
        behind a TLS endpoint of its own; the C(user_data) binding is then not checked.
      - Only with O(attestation_url). A regular file of at most 64 KiB.
    type: path
  attestation_document:
    description:
      - For offline use, the raw attestation document, as base64 text or as the path of a file holding it (raw
        COSE_Sign1 bytes or base64), at most 64 KiB. It carries no nonce of this run, so it must be fresh
        enough for the registry (at most 10 minutes old) when the key is registered.
      - Mutually exclusive with O(attestation_url).
    type: str
  root_ca_file:
    description:
      - The root certificate (PEM or DER) attestation documents must chain to, instead of AWS Nitro Enclaves
        Root-G1; for the local simulator, its root. The chain itself trusts only its own root, so a document
        accepted here with another root is refused on chain.
      - A regular file of at most 64 KiB.
    type: path
  state:
    description:
      - V(present) is the only state (see the description).
    type: str
    choices: [present]
    default: present
extends_documentation_fragment:
  - k3sdaas.core.sui
  - k3sdaas.core.sui.package
  - k3sdaas.core.attributes
  - k3sdaas.core.attributes.actiongroup_sui
  - k3sdaas.core.attributes.check_mode_full
notes:
  - The HTTPS request to O(attestation_url) uses O(timeout) too.
  - In check mode the transactions are simulated on the node. When the PCRs would change, the registration is
    predicted from the local checks instead (the node cannot simulate it on top of a simulated PCR update);
    those checks are the ones C(register_enclave) makes, except that the chain pins its own root.
author:
  - K3s-DaaS engineers (@k3sdaas)
"""

EXAMPLES = r"""
- name: Put the new image's PCRs on chain before running it
  k3sdaas.core.nautilus_register:
    package_id: "{{ k3sdaas_package_id }}"
    pcrs: "{{ image.pcrs }}"

- name: Register the running master's key (local simulator)
  k3sdaas.core.nautilus_register:
    package_id: "{{ k3sdaas_package_id }}"
    pcrs: "{{ image.pcrs }}"
    attestation_url: https://127.0.0.1:6443
    root_ca_file: /var/lib/k3sdaas/nitro-sim/root.pem
  register: enclave

- name: Offline, from a saved document and describe-eif output
  k3sdaas.core.nautilus_register:
    package_id: "{{ k3sdaas_package_id }}"
    eif_describe: /opt/k3sdaas/master.describe.json
    attestation_document: /tmp/attestation.b64
"""

RETURN = r"""
pcrs:
  description: The registry's PCR0, PCR1 and PCR2 after the run, as 96 lowercase hex digits.
  returned: always
  type: dict
  sample:
    PCR0: 49ac0d9697faa9721bdeedfcf359692b77e1987055d47242cfd731cbce1511bb717127ba3ec7615e0d13fccda20020d5
pcr_version:
  description: The registry's PCR version after the run (bumped by every PCR update).
  returned: always
  type: int
  sample: 2
enclave_public_key:
  description: The ed25519 key the registry trusts after the run (64 hex digits), empty when none is current.
  returned: always
  type: str
registered_at_ms:
  description:
    - When that key was registered (chain time, Unix milliseconds), 0 when none is current.
    - In check mode, when the registration is predicted, the chain time of the prediction.
  returned: always
  type: int
actions:
  description: The transactions run (or simulated or predicted in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [update_pcrs, register_enclave]
tx_digests:
  description: The digest of each transaction run, by action (simulated digests in check mode).
  returned: always
  type: dict
  sample:
    update_pcrs: FBm6yZ9A9hTL2aEo8dRPfe75bPtZWxFpV99W77ggscoa
attestation:
  description: The verified document's summary (module id, timestamp, PCRs, public key, nonce, chain).
  returned: when O(attestation_url) or O(attestation_document) is given
  type: dict
"""

import base64
import binascii
import hashlib
import json
import os
import secrets
import ssl
from urllib.parse import urlsplit

from ansible_collections.k3sdaas.core.plugins.module_utils.module import ModuleError
from ansible_collections.k3sdaas.core.plugins.module_utils.sui import SuiModule

try:
    import httpx
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from k3sdaas.attestation import AttestationError, PcrPolicy, load_root, verify_attestation
    from k3sdaas.attestation.cli import decode_document_input
    from k3sdaas.chain.client import json_value
    from k3sdaas.errors import InvalidInput
except ImportError:
    pass  # SuiModule reports the missing runtime library

MAX_FILE_BYTES = 64 * 1024  # a document is about 4.5 KiB, a root certificate under 1 KiB, describe-eif output 2 KiB
MAX_RESPONSE_BYTES = 1 << 20
MAX_URL_LENGTH = 2048
MAX_ATTESTATION_AGE_MS = 600_000  # registry.move's MAX_ATTESTATION_AGE_MS: older documents abort on chain
IMAGE_PCRS = ("PCR0", "PCR1", "PCR2")
PCR_NAMES = (*IMAGE_PCRS, "PCR8")


def read_file(path, option):
    """At most MAX_FILE_BYTES of a regular file; a directory, device or FIFO is refused before it is opened."""
    if not os.path.isfile(path):
        raise ModuleError(f"{option} {path!r} is not a regular file", option)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ModuleError(f"cannot read {option} {path!r}: {exc.strerror}", option) from None
    if len(data) > MAX_FILE_BYTES:
        raise ModuleError(f"{option} {path!r} is larger than {MAX_FILE_BYTES} bytes", option)
    return data


def parse_pcrs(values, option):
    """{'PCR0': hex, ...} -> {0: bytes, ...}; PCR0-2 required, PCR8 optional, nothing else."""
    if not isinstance(values, dict):
        raise ModuleError(f"{option} must be a mapping of PCR0, PCR1, PCR2 (and PCR8) to hex", option)
    unknown = sorted(str(name)[:20] for name in values if name not in PCR_NAMES)
    if unknown:
        raise ModuleError(
            f"{option} has unknown keys {unknown[:5]}; expected PCR0, PCR1, PCR2 and optionally PCR8", option
        )
    missing = [name for name in IMAGE_PCRS if name not in values]
    if missing:
        raise ModuleError(f"{option} lacks {', '.join(missing)}", option)
    wanted = {}
    for name, value in values.items():
        text = value.strip().lower() if isinstance(value, str) else ""
        if len(text) != 96 or not all(c in "0123456789abcdef" for c in text):
            raise ModuleError(f"{option}.{name} must be 96 hex digits (SHA-384)", option)
        wanted[int(name[3:])] = bytes.fromhex(text)
    for name in IMAGE_PCRS:
        if not any(wanted[int(name[3:])]):
            raise ModuleError(f"{option}.{name} is all zero (a debug-mode enclave); the registry refuses it", option)
    return wanted


def wanted_pcrs(params):
    if params["pcrs"] is not None:
        return parse_pcrs(params["pcrs"], "pcrs")
    data = read_file(params["eif_describe"], "eif_describe")
    try:
        measurements = json.loads(data)["Measurements"]
    except (ValueError, KeyError, TypeError):
        raise ModuleError("eif_describe is not nitro-cli describe-eif JSON with Measurements", "eif_describe") from None
    if not isinstance(measurements, dict):
        raise ModuleError("eif_describe: Measurements is not a mapping", "eif_describe")
    return parse_pcrs({k: v for k, v in measurements.items() if k in PCR_NAMES}, "eif_describe")


def offline_document(value):
    """The attestation_document option: a path to a file holding the document, or base64 text."""
    if len(value) > 2 * MAX_FILE_BYTES:
        raise ModuleError(
            f"attestation_document is longer than {2 * MAX_FILE_BYTES} characters", "attestation_document"
        )
    data = read_file(value, "attestation_document") if os.path.exists(value) else value.encode()
    try:
        document = decode_document_input(data)
    except InvalidInput:
        raise ModuleError(
            "attestation_document is neither base64 nor raw COSE_Sign1 bytes, nor a file holding them",
            "attestation_document",
        ) from None
    if not document:
        raise ModuleError("attestation_document is empty", "attestation_document")
    return document


def check_url(url):
    try:
        parts = urlsplit(url)
        valid = len(url) <= MAX_URL_LENGTH and parts.scheme == "https" and bool(parts.hostname) and parts.port != 0
        valid = valid and not parts.query and not parts.fragment
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        valid = False
    if not valid:
        raise ModuleError(
            f"attestation_url must be an https://host[:port] URL of at most {MAX_URL_LENGTH} characters",
            "attestation_url",
        )
    return url.rstrip("/")


def spki_sha256(der):
    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


async def fetch_document(module, nonce):
    """The master's document for ``nonce`` and, without a CA, the SHA-256 of the SPKI it must bind."""
    url, ca_file = module.params["attestation_url"], module.params["attestation_ca_file"]
    if ca_file:
        context = ssl.create_default_context(cafile=ca_file)
    else:  # who the master is comes from the document's binding of this connection's certificate
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        async with (
            httpx.AsyncClient(verify=context, timeout=module.params["timeout"]) as http,
            http.stream("POST", url + "/api/v1/attestation", json={"nonce": nonce.hex()}) as response,
        ):
            presented = response.extensions["network_stream"].get_extra_info("ssl_object").getpeercert(True)
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise ModuleError(f"{url} sent more than {MAX_RESPONSE_BYTES} bytes", "attestation_url")
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        raise ModuleError(
            f"cannot fetch the attestation from {url}: {type(exc).__name__}: {exc}", "attestation_url"
        ) from None
    try:
        answer = json.loads(body)
        document = base64.b64decode(str(answer["document"]), validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ModuleError(
            f"{url} answered {response.status_code} without an attestation document: "
            f"{body[:200].decode(errors='replace')}",
            "attestation_url",
        ) from None
    return document, None if ca_file else spki_sha256(presented)


def registry_view(registry):
    """The registry's PCRs and trusted key (empty unless attested under the current PCRs)."""
    fields = json_value(registry.json) or {}

    def raw(name):
        value = fields.get(name) or ""
        return bytes(int(v) for v in value) if isinstance(value, list) else base64.b64decode(value)

    current = bool(raw("enclave_pk")) and fields.get("enclave_pcr_version") == fields.get("pcr_version")
    return dict(
        pcrs={name: raw(name.lower()).hex() for name in IMAGE_PCRS},
        pcr_version=int(fields.get("pcr_version") or 0),
        enclave_public_key=raw("enclave_pk").hex() if current else "",
        registered_at_ms=int(fields.get("registered_at_ms") or 0) if current else 0,
    )


async def verified_document(module, wanted, root):
    """The document to register, verified here first; (raw bytes, VerifiedAttestation) or (None, None)."""
    option = "attestation_url" if module.params["attestation_url"] else "attestation_document"
    if module.params[option] is None:
        return None, None
    nonce = spki = None
    if option == "attestation_url":
        nonce = secrets.token_bytes(32)
        document, spki = await fetch_document(module, nonce)
    else:
        document = offline_document(module.params[option])
    try:
        verified = verify_attestation(
            document, root=root, policy=PcrPolicy(expected=wanted), nonce=nonce, user_data=spki
        )
    except AttestationError as exc:
        if (exc.field or "").startswith("pcr"):
            raise ModuleError(f"the enclave's attestation does not match the wanted PCRs: {exc}", "pcrs") from None
        if exc.field == "user_data":
            raise ModuleError(
                "the TLS certificate the master presented is not the one its attestation binds", option
            ) from None
        raise ModuleError(f"{option}: the attestation document is refused: {exc}", option) from None
    key = verified.document.public_key
    if key is None or len(key) != 32:
        raise ModuleError(f"{option}: the document's public_key is not a 32-byte ed25519 key", option)
    return document, verified


async def ensure(module, client, wanted, root):
    document, verified = await verified_document(module, wanted, root)  # before any transaction
    registry_id = client.deployment.registry_id
    before = registry_view(await client.get_object(registry_id, field_name="package_id"))
    update = before["pcrs"] != {name: wanted[int(name[3:])].hex() for name in IMAGE_PCRS}
    key = verified.document.public_key.hex() if verified is not None else None
    register = key is not None and (update or before["enclave_public_key"] != key)  # update_pcrs drops the key
    if register:  # refused here rather than by an aborted (and paid) transaction, and before the PCRs change
        now = await client.chain_time_ms()
        age = now - verified.document.timestamp
        if age > MAX_ATTESTATION_AGE_MS:
            option = "attestation_url" if module.params["attestation_url"] else "attestation_document"
            raise ModuleError(
                f"{option}: the document is {age // 1000} s old by the chain's clock; the registry "
                f"accepts at most {MAX_ATTESTATION_AGE_MS // 1000} s",
                option,
            )
    actions, digests = [], {}
    if update:
        digests["update_pcrs"] = (await client.update_pcrs(wanted[0], wanted[1], wanted[2])).digest
        actions.append("update_pcrs")
    after = registry_view(await client.get_object(registry_id, field_name="package_id"))
    if register:
        actions.append("register_enclave")
        if module.check_mode and update:
            # the node simulates against committed state, where the old PCRs would make it abort
            after.update(enclave_public_key=key, registered_at_ms=now)
        else:
            digests["register_enclave"] = (await client.register_enclave(document)).digest
            after = registry_view(await client.get_object(registry_id, field_name="package_id"))
    result = dict(changed=bool(actions), actions=actions, tx_digests=digests, **after)
    if verified is not None:
        result["attestation"] = verified.summary()
    if actions:
        shown = ("pcrs", "enclave_public_key")
        result["diff"] = dict(before={k: before[k] for k in shown}, after={k: after[k] for k in shown})
    return result


def main():
    module = SuiModule(
        argument_spec=dict(
            pcrs=dict(type="dict"),
            eif_describe=dict(type="path"),
            attestation_url=dict(type="str"),
            attestation_ca_file=dict(type="path"),
            attestation_document=dict(type="str"),
            root_ca_file=dict(type="path"),
            state=dict(type="str", choices=["present"], default="present"),
        ),
        mutually_exclusive=[["pcrs", "eif_describe"], ["attestation_url", "attestation_document"]],
        required_one_of=[["pcrs", "eif_describe"]],
    )
    params = module.params
    wanted = module.guarded(wanted_pcrs, params)
    root = None
    if params["root_ca_file"] is not None:
        module.guarded(read_file, params["root_ca_file"], "root_ca_file")  # regular and bounded: load_root reads it
        try:
            root = load_root(params["root_ca_file"])
        except InvalidInput as exc:
            module.fail_json(msg=f"root_ca_file: {exc}", field="root_ca_file", error_type="InvalidInput")
    if params["attestation_ca_file"] is not None:
        module.guarded(read_file, params["attestation_ca_file"], "attestation_ca_file")
        if params["attestation_url"] is None:
            module.fail_json(msg="attestation_ca_file is only used with attestation_url", field="attestation_ca_file")
        try:
            ssl.create_default_context(cafile=params["attestation_ca_file"])
        except ssl.SSLError as exc:
            module.fail_json(
                msg=f"attestation_ca_file holds no usable PEM certificate: {exc}", field="attestation_ca_file"
            )
    if params["attestation_url"] is not None:
        params["attestation_url"] = module.guarded(check_url, params["attestation_url"])
    if params["attestation_document"] is not None:
        module.guarded(offline_document, params["attestation_document"])  # bad input fails before the chain is read
    module.execute(lambda client: ensure(module, client, wanted, root))


if __name__ == "__main__":
    main()
