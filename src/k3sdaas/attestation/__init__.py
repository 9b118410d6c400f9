"""Nitro attestation documents: parse, verify against a pinned root, PCR policy; the NSM client."""

from k3sdaas.attestation.document import AttestationDocument, parse_payload
from k3sdaas.attestation.errors import (
    AttestationError,
    ChainError,
    EnvelopeError,
    PayloadError,
    PolicyError,
    SignatureError,
)
from k3sdaas.attestation.nsm import NsmClient, NsmError, open_transport
from k3sdaas.attestation.policy import PcrPolicy
from k3sdaas.attestation.roots import AWS_NITRO_ROOT_G1_PEM, aws_nitro_root, load_root
from k3sdaas.attestation.verify import VerifiedAttestation, verify_attestation

__all__ = [
    "AWS_NITRO_ROOT_G1_PEM",
    "AttestationDocument",
    "AttestationError",
    "ChainError",
    "EnvelopeError",
    "NsmClient",
    "NsmError",
    "PayloadError",
    "PcrPolicy",
    "PolicyError",
    "SignatureError",
    "VerifiedAttestation",
    "aws_nitro_root",
    "load_root",
    "open_transport",
    "parse_payload",
    "verify_attestation",
]
