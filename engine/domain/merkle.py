"""The Merkle tree over the audit trail, as RFC 6962 and RFC 9162 define it.

Leaves and interior nodes are hashed apart (`SHA-256(0x00 ‖ leaf)`, `SHA-256(0x01 ‖ left ‖
right)`), so no leaf can pass for a node. The tree of `n` leaves is stored as the hashes of
its *perfect subtrees*: the subtree at `(level, index)` covers leaves
`[index·2^level, (index+1)·2^level)`. Every root, inclusion proof and consistency proof is
made from a logarithmic number of them, read through an accessor `subtree(level, index)`;
`plan_*` name those subtrees first, so a store can read them in one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Subtree = Callable[[int, int], bytes]
Node = tuple[int, int, bytes]  # level, index, hash

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that cannot be made or does not verify; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_ranges(begin: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees `(level, index)` that make up leaves `[begin, end)`, left first.

    `begin` must be a multiple of a power of two at least `end - begin`, as every range a
    root or proof needs is.
    """
    found = []
    position = begin
    for level in range((end - begin).bit_length() - 1, -1, -1):
        if (end - begin) >> level & 1:
            found.append((level, position >> level))
            position += 1 << level
    return found


def range_hash(subtree: Subtree, begin: int, end: int) -> bytes:
    """MTH(D[begin:end]) from its perfect subtrees."""
    if end <= begin:
        return EMPTY_ROOT
    hashes = [subtree(level, index) for level, index in perfect_ranges(begin, end)]
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def root(subtree: Subtree, size: int) -> bytes:
    """The root of the tree of the first `size` leaves."""
    return range_hash(subtree, 0, size)


def inclusion_proof(subtree: Subtree, index: int, size: int) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _split(end - begin)
        if index < begin + k:
            path.append(range_hash(subtree, begin + k, end))
            end = begin + k
        else:
            path.append(range_hash(subtree, begin, begin + k))
            begin += k
    path.reverse()
    return path


def consistency_proof(subtree: Subtree, first: int, second: int) -> list[bytes]:
    """The proof that the tree of `first` leaves is a prefix of that of `second` (§2.1.2)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    path: list[bytes] = []
    begin, end, whole = 0, second, True
    m = first
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            path.append(range_hash(subtree, begin + k, end))
            end = begin + k
        else:
            path.append(range_hash(subtree, begin, begin + k))
            begin += k
            m -= k
            whole = False
    if not whole:
        path.append(range_hash(subtree, begin, end))
    path.reverse()
    return path


def plan(make: Callable[[Subtree], object]) -> list[tuple[int, int]]:
    """The perfect subtrees `make` reads, in the order it reads them, without their hashes.

    Which subtrees a root or proof needs depends only on the sizes and indexes, never on
    the hashes, so a store can fetch exactly these in one query and then call `make` again.
    """
    wanted: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        wanted.append((level, index))
        return EMPTY_ROOT

    make(record)
    return wanted


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """Whether `proof` shows the leaf hash `leaf` at `index` under `expected_root` (§2.1.3.2)."""
    if not 0 <= index < size or any(len(p) != 32 for p in proof):
        return False
    fn, sn, result = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(p, result)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == expected_root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `first` leaves is a prefix of `second`'s (§2.1.4.2)."""
    if not 0 <= first <= second or any(len(p) != 32 for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: its own root is the start
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def frontier_ranges(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees of the first `size` leaves, largest first: what `extend` needs."""
    return perfect_ranges(0, size)


def extend(size: int, frontier: Sequence[bytes], leaves: Iterable[bytes]) -> list[Node]:
    """The nodes that appending leaf hashes to a tree of `size` leaves adds, level 0 too.

    `frontier` holds the hashes of `frontier_ranges(size)`, largest first.
    """
    stack = list(frontier)
    if len(stack) != size.bit_count():
        raise ProofError(f"a tree of {size} leaves has {size.bit_count()} perfect subtrees")
    nodes: list[Node] = []
    for hashed in leaves:
        index, level, current = size, 0, hashed
        nodes.append((0, index, current))
        while index & 1:
            current = node_hash(stack.pop(), current)
            index >>= 1
            level += 1
            nodes.append((level, index, current))
        stack.append(current)
        size += 1
    return nodes


class MemoryTree:
    """A whole tree in memory: for tests, benchmarks and recomputing a trail's root."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        """How many leaves the tree holds."""
        return len(self.levels[0])

    def append(self, hashed_leaf: bytes) -> None:
        """Add a leaf by its leaf hash."""
        level, current = 0, hashed_leaf
        while True:
            if len(self.levels) == level:
                self.levels.append([])
            row = self.levels[level]
            row.append(current)
            if len(row) % 2:
                return
            current = node_hash(row[-2], current)
            level += 1

    def subtree(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree at `(level, index)`."""
        try:
            return self.levels[level][index]
        except IndexError:
            raise ProofError(f"no perfect subtree at level {level}, index {index}") from None

    def root(self, size: int | None = None) -> bytes:
        """The root at `size` leaves (all of them by default)."""
        return root(self.subtree, self.size if size is None else size)


class Frontier:
    """The root of a growing tree in logarithmic memory: its perfect subtrees' hashes only."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    @classmethod
    def of(cls, size: int, stack: Sequence[bytes]) -> Frontier:
        """The frontier of a tree of `size` leaves from the hashes of `frontier_ranges(size)`,
        largest first: a stored tree's, to go on appending from a trusted size."""
        if len(stack) != size.bit_count():
            raise ProofError(f"a tree of {size} leaves has {size.bit_count()} perfect subtrees")
        frontier = cls()
        frontier.size, frontier.stack = size, list(stack)
        return frontier

    def append(self, hashed_leaf: bytes) -> None:
        """Add a leaf by its leaf hash."""
        index, current = self.size, hashed_leaf
        while index & 1:
            current = node_hash(self.stack.pop(), current)
            index >>= 1
        self.stack.append(current)
        self.size += 1

    def root(self) -> bytes:
        """The root of the leaves added so far."""
        if not self.stack:
            return EMPTY_ROOT
        result = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            result = node_hash(left, result)
        return result
