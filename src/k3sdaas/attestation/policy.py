"""What an authentic document must also say: expected PCRs, no debug mode, and the caller's bindings."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from k3sdaas.attestation.document import PCR_BYTES, AttestationDocument
from k3sdaas.attestation.errors import PolicyError
from k3sdaas.errors import InvalidInput

# A debug-mode enclave reports the image PCRs as zeros; anyone can then run any code under that identity.
DEBUG_ZERO_PCRS = (0, 1, 2)
ZERO_PCR = bytes(PCR_BYTES)


def parse_pcr_value(index: int, value: bytes | str) -> bytes:
    """Accept raw bytes or hex; the error names the PCR."""
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise InvalidInput(f"PCR{index} is not hex", field=f"pcr{index}") from None
    if len(value) != PCR_BYTES:
        raise InvalidInput(f"PCR{index} must be {PCR_BYTES} bytes ({2 * PCR_BYTES} hex digits)", field=f"pcr{index}")
    return value


@dataclass(frozen=True)
class PcrPolicy:
    expected: Mapping[int, bytes] = field(default_factory=dict)
    allow_debug: bool = False

    def __post_init__(self) -> None:
        for index in self.expected:
            if not 0 <= index < 32:
                raise InvalidInput(f"PCR index {index} is outside 0..31", field="pcrs")

    @classmethod
    def for_image(
        cls,
        pcr0: bytes | str,
        pcr1: bytes | str,
        pcr2: bytes | str,
        *,
        pcr3: bytes | str | None = None,
        pcr4: bytes | str | None = None,
        pcr8: bytes | str | None = None,
        allow_debug: bool = False,
    ) -> PcrPolicy:
        """The policy for a released enclave image: PCR0/1/2 always; role, instance and signer when pinned."""
        given = {0: pcr0, 1: pcr1, 2: pcr2, 3: pcr3, 4: pcr4, 8: pcr8}
        expected = {index: parse_pcr_value(index, value) for index, value in given.items() if value is not None}
        return cls(expected=expected, allow_debug=allow_debug)

    def check(self, pcrs: Mapping[int, bytes]) -> None:
        if not self.allow_debug:
            for index in DEBUG_ZERO_PCRS:
                if pcrs.get(index) == ZERO_PCR:
                    raise PolicyError(
                        f"PCR{index} is all zero (debug-mode enclave) and debug is not allowed", field=f"pcr{index}"
                    )
        for index, want in sorted(self.expected.items()):
            have = pcrs.get(index)
            if have is None:
                raise PolicyError(f"PCR{index} is not in the document", field=f"pcr{index}")
            if not hmac.compare_digest(have, want):
                raise PolicyError(f"PCR{index} is {have.hex()}, expected {want.hex()}", field=f"pcr{index}")


def check_binding(document: AttestationDocument, name: str, expected: bytes | None) -> None:
    """The nonce, public_key or user_data must be exactly what the verifier asked the enclave to attest."""
    if expected is None:
        return
    have = getattr(document, name)
    if have is None:
        raise PolicyError(f"{name} is absent, expected {expected.hex()}", field=name)
    if not hmac.compare_digest(have, expected):
        raise PolicyError(f"{name} does not match the expected value", field=name)
