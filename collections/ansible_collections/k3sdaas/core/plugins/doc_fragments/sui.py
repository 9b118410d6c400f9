# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection to a Sui full node and the signing key (every Sui module)
    DOCUMENTATION = r"""
options:
  rpc_url:
    description:
      - The Sui full node's gRPC endpoint, as V(host:port) or V(https://host[:port]) (port 443 by default).
      - The connection always uses TLS, as pysui's gRPC client does.
      - If not set, the E(SUI_RPC_URL) environment variable is used.
    type: str
    required: true
  key_file:
    description:
      - A file holding the signer's private key, as a V(suiprivkey1...) bech32 string, a base64 Sui keystore entry,
        or a Sui keystore file (a JSON list; the first key is used).
      - The file must be a regular file of at most 64 KiB, not readable by group or others.
      - If not set, the E(SUI_KEY_FILE) environment variable is used.
      - Mutually exclusive with O(private_key); one of the two is required.
    type: path
  private_key:
    description:
      - The signer's private key as text, in any form O(key_file) accepts.
      - Meant for AWX credential injection; the value is never logged.
      - If not set, the E(SUI_PRIVATE_KEY) environment variable is used.
    type: str
  ca_file:
    description:
      - A PEM file of CA certificates to trust for the node's TLS certificate instead of the public CA bundle,
        for a private node or the local stand-in.
      - A regular file of at most 1 MiB.
      - If not set, the E(SUI_CA_FILE) environment variable is used.
    type: path
  timeout:
    description:
      - Seconds allowed for each RPC, or for building and executing one transaction.
      - More than 0 and at most 600.
    type: float
    default: 30.0
  retries:
    description:
      - How often a call is retried after a transport failure (connection refused or reset, timeout,
        gRPC C(UNAVAILABLE)). Aborts and rejected transactions are never retried.
      - 0 to 10. The wait between attempts doubles from 0.5 seconds up to 2 seconds, and a call stops retrying
        once it has waited 10 seconds in all, so no setting makes a call against a dead node hang.
    type: int
    default: 3
requirements:
  - python >= 3.11
  - k3sdaas (the runtime library, which brings pysui 1.5.1)
notes:
  - Every transaction is signed locally; the key never leaves the host the module runs on.
"""

    # The deployment of the k3s_daas package a module works on
    PACKAGE = r"""
options:
  package_id:
    description:
      - Object id of the published k3s_daas package (0x followed by 64 hex digits).
      - The pool, the enclave registry and the AdminCap are found from the transaction that published it.
      - If not set, the E(K3SDAAS_PACKAGE_ID) environment variable is used.
    type: str
    required: true
"""
