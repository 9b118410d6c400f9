"""RFC 6962 trees and inclusion proofs, against Certificate Transparency's published test vectors."""

from __future__ import annotations

import pytest

from k3sdaas.nautilus.audit import batch_message, inclusion_path, leaf_hash, merkle_root, root_from_path

# The eight leaves and the roots of their prefixes from CT's merkle_tree_test (RFC 6962 test data).
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
             bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size: int) -> None:
    assert merkle_root([leaf_hash(leaf) for leaf in CT_LEAVES[:size]]).hex() == CT_ROOTS[size - 1]


def test_every_inclusion_path_leads_to_the_root_and_only_from_its_own_leaf() -> None:
    for size in range(1, 34):
        leaves = [leaf_hash(bytes([i])) for i in range(size)]
        root = merkle_root(leaves)
        for index in range(size):
            path = inclusion_path(leaves, index)
            assert root_from_path(index, size, leaves[index], path) == root
            other = leaves[(index + 1) % size]
            if size > 1:
                assert root_from_path(index, size, other, path) != root
                assert root_from_path((index + 1) % size, size, leaves[index], path) != root
        assert root_from_path(size, size, leaves[0], inclusion_path(leaves, 0)) is None


def test_a_path_too_long_or_too_short_for_the_tree_is_refused() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(5)]
    path = inclusion_path(leaves, 2)
    assert root_from_path(2, 5, leaves[2], [*path, leaves[0]]) is None
    assert root_from_path(2, 5, leaves[2], path[:-1]) is None


def test_a_leaf_is_not_a_node_domain_separation() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    root = merkle_root([left, right])
    # A second-preimage attempt: present the concatenation of the children as one leaf.
    assert leaf_hash(left + right) != root


def test_the_signed_message_is_the_bcs_of_the_move_intent_message() -> None:
    from k3sdaas_localnet.sui.handlers.k8s_gateway import audit_batch_bcs
    from k3sdaas_localnet.sui.handlers.registry import INTENT_AUDIT_ANCHOR, intent_message_bcs

    root = bytes(range(32))
    assert batch_message(root, 10, 12, 1_764_000_000_000) == intent_message_bcs(
        INTENT_AUDIT_ANCHOR, 1_764_000_000_000, audit_batch_bcs(root, 3, 10, 12))
