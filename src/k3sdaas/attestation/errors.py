"""Why an attestation document was refused: one exception class per verification stage."""

from __future__ import annotations

from k3sdaas.errors import K3sdaasError


class AttestationError(K3sdaasError):
    """An attestation document failed verification; the message is the one-line reason."""

    stage = "attestation"


class EnvelopeError(AttestationError):
    """The COSE_Sign1 envelope is malformed or uses the wrong algorithm."""

    stage = "envelope"


class PayloadError(AttestationError):
    """A payload field is missing, of the wrong type or outside its limits."""

    stage = "payload"


class ChainError(AttestationError):
    """The certificate chain does not lead to the pinned root at the verification time."""

    stage = "chain"


class SignatureError(AttestationError):
    """The COSE signature does not verify with the leaf certificate's key."""

    stage = "signature"


class PolicyError(AttestationError):
    """The document is authentic but its PCRs, nonce or bound key are not the expected ones."""

    stage = "policy"
