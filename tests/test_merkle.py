"""The Merkle tree against RFC 6962's test vectors, and proofs that break when altered."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain import merkle
from engine.domain.merkle import MemoryTree

# the eight leaves the RFC 6962 reference tests use, and the roots of their prefixes
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# (leaf index counted from 0, tree size, audit path)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (first size, second size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def reference_tree() -> MemoryTree:
    return MemoryTree(merkle.leaf_hash(leaf) for leaf in LEAVES)


def test_roots_of_every_prefix_match_the_rfc_vectors() -> None:
    tree = reference_tree()
    assert merkle.root(tree.subtree, 0).hex() == EMPTY
    assert [tree.root(size).hex() for size in range(1, 9)] == ROOTS


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_rfc_vectors(index: int, size: int, path: list[str]) -> None:
    tree = reference_tree()
    proof = merkle.inclusion_proof(tree.subtree, index, size)
    assert [p.hex() for p in proof] == path
    leaf = merkle.leaf_hash(LEAVES[index])
    assert merkle.verify_inclusion(leaf, index, size, proof, bytes.fromhex(ROOTS[size - 1]))


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_rfc_vectors(first: int, second: int, path: list[str]) -> None:
    tree = reference_tree()
    proof = merkle.consistency_proof(tree.subtree, first, second)
    assert [p.hex() for p in proof] == path
    old, new = bytes.fromhex(ROOTS[first - 1]), bytes.fromhex(ROOTS[second - 1])
    assert merkle.verify_consistency(first, second, old, new, proof)


def test_extend_adds_the_nodes_a_whole_tree_holds() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(37)]
    whole = MemoryTree(leaves)
    stored: dict[tuple[int, int], bytes] = {}
    size = 0
    for batch in (leaves[:1], leaves[1:2], leaves[2:9], leaves[9:16], leaves[16:37]):
        frontier = [stored[r] for r in merkle.frontier_ranges(size)]
        for level, index, digest in merkle.extend(size, frontier, batch):
            stored[(level, index)] = digest
        size += len(batch)
        assert merkle.root(lambda lv, ix: stored[(lv, ix)], size) == whole.root(size)
    assert stored == {
        (level, index): digest
        for level, row in enumerate(whole.levels)
        for index, digest in enumerate(row)
    }


def test_plan_names_only_a_logarithmic_number_of_subtrees() -> None:
    size = 1_000_003
    wanted = merkle.plan(lambda s: merkle.inclusion_proof(s, 123_456, size))
    assert len(wanted) <= 2 * size.bit_length()
    wanted = merkle.plan(lambda s: merkle.consistency_proof(s, 777_777, size))
    assert len(wanted) <= 2 * size.bit_length()


def test_bad_requests_are_refused_in_words() -> None:
    tree = reference_tree()
    with pytest.raises(merkle.ProofError, match="not in a tree of 8"):
        merkle.inclusion_proof(tree.subtree, 8, 8)
    with pytest.raises(merkle.ProofError, match="from size 5 to size 3"):
        merkle.consistency_proof(tree.subtree, 5, 3)


# one tree shared by the property tests: the leaves of 10,000 events
BIG = MemoryTree(merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(10_000))


def flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    altered = list(proof)
    item = bytearray(altered[which])
    item[bit // 8] ^= 1 << (bit % 8)
    altered[which] = bytes(item)
    return altered


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    size, index = case
    proof = merkle.inclusion_proof(BIG.subtree, index, size)
    assert len(proof) <= size.bit_length()
    assert merkle.verify_inclusion(BIG.levels[0][index], index, size, proof, BIG.root(size))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, 9_999).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.data(),
)
def test_any_altered_inclusion_proof_fails(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    proof = merkle.inclusion_proof(BIG.subtree, index, size)
    leaf, top = BIG.levels[0][index], BIG.root(size)
    which = data.draw(st.integers(0, len(proof) - 1))
    attempts: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, index, size, flip(proof, which, data.draw(st.integers(0, 255))), top),
        (leaf, index, size, proof[:which] + proof[which + 1 :], top),
        (leaf, index, size, [*proof, top], top),
        (leaf, index, size, [top, *proof], top),
        (leaf, index, size, proof, BIG.root(size - 1)),
        # a wrong size, with the root of a tree of that size
        (leaf, index, size + 1, proof, BIG.root(size + 1)),
        (leaf, index, size, proof, BIG.root(size + 1)),
        (leaf, (index + 1) % size, size, proof, top),
        (leaf, index + size, size, proof, top),
        (BIG.levels[0][(index + 1) % size], index, size, proof, top),
    ]
    if index < size - 1:
        attempts.append((leaf, index, size - 1, proof, BIG.root(size - 1)))
    for attempt in attempts:
        assert not merkle.verify_inclusion(*attempt), attempt[1:3]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_every_consistency_proof_verifies(case: tuple[int, int]) -> None:
    first, second = case
    proof = merkle.consistency_proof(BIG.subtree, first, second)
    assert len(proof) <= 2 * second.bit_length()
    assert merkle.verify_consistency(first, second, BIG.root(first), BIG.root(second), proof)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, 9_999).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))),
    st.data(),
)
def test_any_altered_consistency_proof_fails(case: tuple[int, int], data: st.DataObject) -> None:
    first, second = case
    proof = merkle.consistency_proof(BIG.subtree, first, second)
    old, new = BIG.root(first), BIG.root(second)
    which = data.draw(st.integers(0, len(proof) - 1))
    attempts = [
        (first, second, old, new, flip(proof, which, data.draw(st.integers(0, 255)))),
        (first, second, old, new, proof[:which] + proof[which + 1 :]),
        (first, second, old, new, [*proof, new]),
        (first, second, old, new, [old, *proof]),
        # a wrong size, with the root of a tree of that size
        (first + 1, second, BIG.root(first + 1), new, proof),
        (first, second + 1, old, BIG.root(second + 1), proof),
        (first - 1, second, BIG.root(first - 1), new, proof),
        (first, second, BIG.root(first - 1) if first > 1 else new, new, proof),
        (first, second, old, BIG.root(second - 1), proof),
    ]
    for attempt in attempts:
        assert not merkle.verify_consistency(*attempt), attempt[:2]


def test_a_frontier_gives_every_prefix_root() -> None:
    frontier = merkle.Frontier()
    assert frontier.root().hex() == EMPTY
    for leaf, expected in zip(LEAVES, ROOTS, strict=True):
        frontier.append(merkle.leaf_hash(leaf))
        assert frontier.root().hex() == expected
