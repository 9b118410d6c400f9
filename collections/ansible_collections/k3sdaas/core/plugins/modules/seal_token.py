#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: seal_token
short_description: Read, refresh or remove a worker node's SealToken
version_added: 0.1.0
description:
  - Looks a SealToken up by its id (the 64-hex seal token) or by the node it belongs to, and reports whether it is
    valid, its tier, its expiry and the seconds left.
  - O(state=refreshed) extends the token's expiry by the pool's TTL when fewer than O(refresh_within) seconds are
    left (or it has expired). Only the token's owner can refresh.
  - O(state=absent) unstakes the token (owner only); the stake is paid back to the staker.
  - With O(min_tier) or O(min_valid_for) the module fails when the token does not meet them, which makes it a
    pre-flight check before joining a node.
options:
  token_id:
    description:
      - The seal token (the SealToken's object id). Mutually exclusive with O(node_id).
    type: str
  node_id:
    description:
      - The node whose live token to use. Mutually exclusive with O(token_id).
    type: str
  state:
    description:
      - V(present) only reads the token; it never creates one (M(k3sdaas.core.sui_stake) does). A missing token is
        reported as RV(exists=false), and fails only when O(min_tier) or O(min_valid_for) is set.
      - V(refreshed) refreshes the token when needed. V(absent) unstakes it.
    type: str
    choices: [present, refreshed, absent]
    default: present
  refresh_within:
    description:
      - With O(state=refreshed), refresh when fewer than this many seconds of validity are left.
      - Must not be negative.
    type: int
    default: 604800
  min_tier:
    description:
      - Fail unless the token is valid and has at least this tier, by number (V(1)-V(4)) or name
        (V(viewer), V(developer), V(admin), V(super-user)). V(0) is refused, as it requires nothing.
    type: str
  min_valid_for:
    description:
      - Fail unless the token is valid and stays valid for at least this many seconds.
      - Must not be negative.
    type: int
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
- name: Pre-flight - the node needs a developer token valid for another day
  k3sdaas.core.seal_token:
    package_id: "{{ k3sdaas_package_id }}"
    node_id: "{{ inventory_hostname }}"
    min_tier: developer
    min_valid_for: 86400

- name: Keep the token fresh (refresh when less than a week is left)
  k3sdaas.core.seal_token:
    package_id: "{{ k3sdaas_package_id }}"
    token_id: "{{ seal_token }}"
    key_file: /etc/k3sdaas/node.key
    state: refreshed
  register: token

- name: Rotate - drop the old token
  k3sdaas.core.seal_token:
    package_id: "{{ k3sdaas_package_id }}"
    token_id: "{{ old_seal_token }}"
    state: absent
"""

RETURN = r"""
exists:
  description: Whether the token exists (before O(state=absent) removed it).
  returned: always
  type: bool
  sample: true
valid:
  description: Whether the token is valid now (tier at least 1 and not expired).
  returned: always
  type: bool
  sample: true
tier:
  description: The token's tier, 0 when there is no token.
  returned: always
  type: int
  sample: 2
tier_name:
  description: The tier's name.
  returned: always
  type: str
  sample: developer
expires_at_ms:
  description: Expiry in Unix milliseconds, 0 when there is no token.
  returned: always
  type: int
seconds_left:
  description: Seconds of validity left, 0 when expired or absent.
  returned: always
  type: int
  sample: 2591990
token:
  description: The whole token, as M(k3sdaas.core.sui_stake) returns it; empty when there is none.
  returned: always
  type: dict
slash_reasons:
  description: The reasons the token was slashed for, oldest first (from the chain's C(Slashed) events); empty when
    it never was or there is no token.
  returned: always
  type: list
  elements: str
  sample: ["incident-2024-0042: attestation mismatch"]
returned_mist:
  description: MIST paid back by O(state=absent).
  returned: always
  type: int
  sample: 0
"""

from ansible_collections.k3sdaas.core.plugins.module_utils.sui import (
    U64_MAX,
    SuiModule,
    address,
    tier_number,
    token_diff,
)

try:
    from k3sdaas.chain import InsufficientStake, ObjectNotFound, TokenExpired
except ImportError:
    pass  # SuiModule reports the missing runtime library


MAX_SECONDS = U64_MAX // 1000  # expiry is u64 milliseconds on chain


async def look_up(module, client, token_id):
    if token_id:
        try:
            return await client.get_token(token_id)
        except ObjectNotFound:
            return None
    return await client.find_token(module.params["node_id"])


def check_requirements(module, token, min_tier):
    """Raise the typed error that says why the token fails the pre-flight options."""
    min_valid_for = module.params["min_valid_for"]
    if min_tier is None and min_valid_for is None:
        return
    what = module.params["token_id"] or "the token of node {}".format(module.params["node_id"])
    if token is None:
        raise ObjectNotFound(
            f"{what} does not exist", field="token_id" if module.params["token_id"] else "node_id"
        )
    if token.tier == 0:
        raise InsufficientStake(
            f"{what} has tier 0 (stake {token.stake_mist} MIST): it is not valid", field="min_tier"
        )
    if token.seconds_left() == 0:
        raise TokenExpired(f"{what} expired at {token.expires_at_ms} ms", field="min_valid_for")
    if min_tier is not None and token.tier < min_tier:
        raise InsufficientStake(
            f"{what} has tier {token.tier} ({token.tier_name}), below the required {min_tier}",
            field="min_tier",
        )
    if min_valid_for is not None and token.seconds_left() < min_valid_for:
        raise TokenExpired(
            f"{what} is valid for {token.seconds_left()} more seconds, fewer than the required {min_valid_for}",
            field="min_valid_for",
        )


def summary(token, returned_mist=0):
    if token is None:
        return dict(
            exists=False,
            valid=False,
            tier=0,
            tier_name="none",
            expires_at_ms=0,
            seconds_left=0,
            token={},
            slash_reasons=[],
            returned_mist=returned_mist,
        )
    data = token.as_dict()
    return dict(
        exists=True,
        valid=token.valid,
        tier=token.tier,
        tier_name=token.tier_name,
        expires_at_ms=token.expires_at_ms,
        seconds_left=data["seconds_left"],
        token=data,
        slash_reasons=[],
        returned_mist=returned_mist,
    )


async def run(module, client, token_id, min_tier):
    token = await look_up(module, client, token_id)
    state = module.params["state"]
    if state == "absent":
        if token is None:
            return dict(summary(None), changed=False)
        returned = await client.unstake(token.token_id)  # simulated in check mode
        return dict(summary(token, returned), changed=True, diff=token_diff(token.as_dict(), None))
    if state == "refreshed":
        if token is None:
            raise ObjectNotFound("no token to refresh", field="token_id" if token_id else "node_id")
        if token.seconds_left() < module.params["refresh_within"]:
            after = await client.refresh(token.token_id)
            check_requirements(module, after, min_tier)
            return dict(summary(after), changed=True, diff=token_diff(token.as_dict(), after.as_dict()))
    check_requirements(module, token, min_tier)
    reasons = await client.slash_reasons(token.token_id) if token is not None and token.slashed else []
    return dict(summary(token), slash_reasons=reasons, changed=False)


def main():
    module = SuiModule(
        argument_spec=dict(
            token_id=dict(type="str"),
            node_id=dict(type="str"),
            state=dict(type="str", choices=["present", "refreshed", "absent"], default="present"),
            refresh_within=dict(type="int", default=604800),
            min_tier=dict(type="str"),
            min_valid_for=dict(type="int"),
        ),
        mutually_exclusive=[["token_id", "node_id"]],
        required_one_of=[["token_id", "node_id"]],
        ranges=dict(refresh_within=(0, MAX_SECONDS), min_valid_for=(0, MAX_SECONDS)),
    )
    token_id = module.checked(address, module.params["token_id"], "token_id")
    min_tier = (
        None
        if module.params["min_tier"] is None
        else module.checked(tier_number, module.params["min_tier"], "min_tier")
    )
    if min_tier == 0:
        module.fail_json(msg="min_tier 0 requires nothing; use 1 (viewer) to 4 (super-user)", field="min_tier")
    module.execute(lambda client: run(module, client, token_id, min_tier))


if __name__ == "__main__":
    main()
