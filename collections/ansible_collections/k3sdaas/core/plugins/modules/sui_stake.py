#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sui_stake
short_description: Stake SUI for a worker node and hold its SealToken
version_added: 0.1.0
description:
  - Makes sure a worker node has a stake of at least O(amount) in the k3s_daas pool and a SealToken, or has none.
  - O(state=present) stakes and mints the node's SealToken when the node has no live token, and adds the difference
    when the token's committed stake (current stake plus what was slashed) is below O(amount). A node that already
    has enough stake is left alone.
  - O(state=absent) unstakes the node; its token is deleted and the remaining stake is paid to the staker.
    Only the token's owner can unstake.
  - The SealToken's object id (64 hex digits) is the node's seal token.
options:
  node_id:
    description:
      - The worker node's identifier, 1 to 64 bytes of UTF-8.
    type: str
    required: true
  state:
    description:
      - V(present) to stake (or top up), V(absent) to unstake.
    type: str
    choices: [present, absent]
    default: present
  amount:
    description:
      - The stake the node must hold, with O(state=present).
      - A number in O(unit), or text with the unit, such as V(2.5 SUI) or V(2500000000 MIST).
      - The minimum is 0.5 SUI. The amount sets the tier (0.5 viewer, 2 developer, 5 admin, 10 super-user).
      - Slashed stake is not replaced by itself; raise O(amount) to top a slashed node up.
    type: raw
  unit:
    description:
      - The unit of a bare number in O(amount).
    type: str
    choices: [SUI, MIST]
    default: SUI
  owner:
    description:
      - The address that receives the SealToken, normally the node's own Sui address.
      - Defaults to the signer's address.
      - A node whose live token has another owner than O(owner), or than the signer when O(owner) is not set,
        makes the module fail rather than stake twice or top up someone else's token.
    type: str
  token_ttl_ms:
    description:
      - The lifetime, in milliseconds, of a SealToken this run mints, instead of the pool's (see
        M(k3sdaas.core.sui_pool)); for short-lived grants and test identities. V(1) mints a token that has
        already expired when it is read.
      - Needs the signer to hold the pool's AdminCap. The run sets the pool's lifetime, stakes and mints, and sets
        the pool's lifetime back, all in one transaction, so no other token gets this lifetime and the pool's
        stays as it was.
      - Ignored when the node already has a token (a top-up keeps the token's expiry), so a re-run with the same
        options changes nothing. Ignored with O(state=absent).
      - The token's owner can refresh it, which gives it the pool's lifetime.
    type: int
  allow_restake:
    description:
      - With V(false), a node that was staked and unstaked in this pool before is not staked again, so that a
        retired node id cannot come back by re-running a playbook.
    type: bool
    default: true
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
- name: Stake 2 SUI for worker-1 (developer tier)
  k3sdaas.core.sui_stake:
    rpc_url: fullnode.testnet.sui.io:443
    key_file: /etc/k3sdaas/operator.key
    package_id: "{{ k3sdaas_package_id }}"
    node_id: worker-1
    amount: 2
  register: stake

- name: Show the node's seal token
  ansible.builtin.debug:
    msg: "{{ stake.token.id }} ({{ stake.token.tier_name }}, valid {{ stake.token.seconds_left }}s)"

- name: Raise worker-1 to the admin tier (adds 3 SUI)
  k3sdaas.core.sui_stake:
    package_id: "{{ k3sdaas_package_id }}"
    node_id: worker-1
    amount: 5 SUI

- name: A test identity whose token has already expired (the signer holds the pool's AdminCap)
  k3sdaas.core.sui_stake:
    package_id: "{{ k3sdaas_package_id }}"
    node_id: expired-probe
    amount: 0.5
    token_ttl_ms: 1
  register: expired

- name: A one-hour grant for a contractor's node, whatever the pool's token lifetime
  k3sdaas.core.sui_stake:
    package_id: "{{ k3sdaas_package_id }}"
    node_id: contractor-1
    owner: "{{ contractor_address }}"
    amount: 2
    token_ttl_ms: 3600000

- name: Retire worker-3 for good
  k3sdaas.core.sui_stake:
    package_id: "{{ k3sdaas_package_id }}"
    node_id: worker-3
    state: absent
"""

RETURN = r"""
token:
  description: The node's SealToken after the change (before it, for O(state=absent)); empty when there is none.
  returned: always
  type: dict
  contains:
    id:
      description: The seal token, the SealToken's object id.
      type: str
      sample: "0x5b2cbbd5c2e3cc80e0b6a1d9a2b8d0d7c4c1a1e9b4f0ad6a8e2f3a4b5c6d7e8f"
    node_id:
      description: The node id.
      type: str
      sample: worker-1
    owner:
      description: The address that owns the token.
      type: str
    stake_mist:
      description: The current stake in MIST.
      type: int
      sample: 2000000000
    tier:
      description: The permission tier, 0 (none) to 4 (super-user).
      type: int
      sample: 2
    tier_name:
      description: The tier's name.
      type: str
      sample: developer
    expires_at_ms:
      description: Expiry, Unix milliseconds.
      type: int
    seconds_left:
      description: Seconds until expiry.
      type: int
    valid:
      description: Whether the token is valid now (tier at least 1 and not expired).
      type: bool
    slashed:
      description: Whether the token was ever slashed.
      type: bool
    slashed_total_mist:
      description: MIST taken by slashing.
      type: int
added_mist:
  description: MIST staked or added by this run.
  returned: always
  type: int
  sample: 0
returned_mist:
  description: MIST paid back to the staker by unstaking.
  returned: always
  type: int
  sample: 0
address:
  description: The signer's address.
  returned: always
  type: str
"""

from ansible_collections.k3sdaas.core.plugins.module_utils.sui import (
    U64_MAX,
    SuiModule,
    address,
    amount_in_mist,
    token_diff,
)


def committed(token):
    """What the operator has put in: slashing lowers the stake but not the commitment."""
    return token.stake_mist + token.slashed_total_mist


async def ensure_present(module, client, wanted_mist, owner):
    node_id = module.params["node_id"]
    token = await client.find_token(node_id)
    result = dict(changed=False, added_mist=0, returned_mist=0, address=client.address)
    if token is None:
        if not module.params["allow_restake"] and await client.node_was_unstaked(node_id):
            module.warn(f"node {node_id} was unstaked before and allow_restake is false; not staking it")
            return dict(result, token={})
        result.update(changed=True, added_mist=wanted_mist)
        # simulated in check mode, the AdminCap calls of token_ttl_ms with it
        after = (await client.stake(node_id, wanted_mist, owner, module.params["token_ttl_ms"])).as_dict()
        return dict(result, token=after, diff=token_diff(None, after))
    # Checked whether or not owner is set: without it the signer's own token is meant, never another's.
    if token.owner != (owner or client.address):
        module.fail_json(
            msg="node {} already has token {} owned by {}, not {}".format(
                node_id, token.token_id, token.owner, owner or f"the signer {client.address}"
            ),
            field="owner",
        )
    missing = wanted_mist - committed(token)
    if missing <= 0:
        return dict(result, token=token.as_dict())
    result.update(changed=True, added_mist=missing)
    after = (await client.add_stake(token.token_id, missing)).as_dict()
    return dict(result, token=after, diff=token_diff(token.as_dict(), after))


async def ensure_absent(module, client):
    token = await client.find_token(module.params["node_id"])
    result = dict(changed=token is not None, added_mist=0, returned_mist=0, address=client.address)
    if token is None:
        return dict(result, token={})
    returned = await client.unstake(token.token_id)
    return dict(result, returned_mist=returned, token=token.as_dict(), diff=token_diff(token.as_dict(), None))


def main():
    module = SuiModule(
        argument_spec=dict(
            node_id=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            amount=dict(type="raw"),
            unit=dict(type="str", choices=["SUI", "MIST"], default="SUI"),
            owner=dict(type="str"),
            allow_restake=dict(type="bool", default=True),
            token_ttl_ms=dict(type="int", no_log=False),
        ),
        required_if=[["state", "present", ["amount"]]],
        ranges=dict(token_ttl_ms=(1, U64_MAX)),
    )
    if module.params["state"] == "absent":
        module.execute(lambda client: ensure_absent(module, client))
    else:
        wanted = module.checked(amount_in_mist, module.params["amount"], module.params["unit"])
        owner = module.checked(address, module.params["owner"], "owner")
        module.execute(lambda client: ensure_present(module, client, wanted, owner))


if __name__ == "__main__":
    main()
