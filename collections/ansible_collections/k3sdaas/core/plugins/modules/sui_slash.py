#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sui_slash
short_description: Slash a misbehaving node's stake
version_added: 0.1.0
description:
  - Moves O(bps) basis points of a SealToken's stake into the pool's penalties and lowers its tier accordingly
    (a tier of 0 makes the token invalid). Needs the AdminCap, held by the signer.
  - O(reason) identifies the incident and makes the module idempotent; a token already slashed for the same
    O(reason) (found from the chain's C(Slashed) events) is not slashed again.
options:
  token_id:
    description:
      - The seal token to slash. Mutually exclusive with O(node_id).
    type: str
  node_id:
    description:
      - The node whose live token to slash. Mutually exclusive with O(token_id).
    type: str
  bps:
    description:
      - The share of the stake to take, in basis points (V(1000) is 10%).
    type: int
    default: 1000
  reason:
    description:
      - The incident, recorded on chain with the slash; one slash per token and reason.
      - At most 16381 bytes of UTF-8, what fits in one Sui transaction argument (below 16 KiB with its length prefix).
    type: str
    required: true
extends_documentation_fragment:
  - k3sdaas.core.sui
  - k3sdaas.core.sui.package
  - k3sdaas.core.attributes
  - k3sdaas.core.attributes.actiongroup_sui
  - k3sdaas.core.attributes.check_mode_full
author:
  - K3s-DaaS engineers (@k3sdaas)
"""

EXAMPLES = r"""
- name: Slash worker-2 by 10% for a failed attestation
  k3sdaas.core.sui_slash:
    package_id: "{{ k3sdaas_package_id }}"
    node_id: worker-2
    bps: 1000
    reason: "incident-2024-0042: attestation mismatch"
"""

RETURN = r"""
token:
  description: The token after the slash, as M(k3sdaas.core.sui_stake) returns it.
  returned: always
  type: dict
penalty_mist:
  description: MIST taken by this run (0 when the token was already slashed for O(reason)).
  returned: always
  type: int
  sample: 200000000
"""

from ansible_collections.k3sdaas.core.plugins.module_utils.sui import SuiModule, address, token_diff

try:
    from k3sdaas.chain import ObjectNotFound
    from k3sdaas.chain.client import pure_bytes
except ImportError:
    pass  # SuiModule reports the missing runtime library


async def ensure_slashed(module, client, token_id):
    params = module.params
    if token_id:
        token = await client.get_token(token_id)
    else:
        token = await client.find_token(params["node_id"])
        if token is None:
            raise ObjectNotFound("node {} has no live token to slash".format(params["node_id"]), field="node_id")
    if params["reason"] in await client.slash_reasons(token.token_id):
        return dict(changed=False, token=token.as_dict(), penalty_mist=0)
    after = await client.slash(token.token_id, params["bps"], params["reason"])  # simulated in check mode
    penalty = after.slashed_total_mist - token.slashed_total_mist
    return dict(changed=True, token=after.as_dict(), penalty_mist=penalty,
                diff=token_diff(token.as_dict(), after.as_dict()))


def main():
    module = SuiModule(
        argument_spec=dict(
            token_id=dict(type="str"),
            node_id=dict(type="str"),
            bps=dict(type="int", default=1000),
            reason=dict(type="str", required=True),
        ),
        mutually_exclusive=[["token_id", "node_id"]],
        required_one_of=[["token_id", "node_id"]],
        ranges=dict(bps=(1, 10000)),
    )
    if not module.params["reason"].strip():
        module.fail_json(msg="reason must not be empty", field="reason")
    # refused before connecting: Sui would reject the whole transaction (max_pure_argument_size)
    module.checked(pure_bytes, module.params["reason"], "reason")
    token_id = module.checked(address, module.params["token_id"], "token_id")
    module.execute(lambda client: ensure_slashed(module, client, token_id))


if __name__ == "__main__":
    main()
