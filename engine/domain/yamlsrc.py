"""Safe YAML with positions: every value keeps the line and column it was written at.

PyYAML composes the document into nodes (which constructs no object, so tags such as
`!!python/object` are never executed); we then build plain values ourselves, refusing any
tag outside YAML's core types and bounding how far aliases may expand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.domain.errors import Problem

MAX_BYTES = 1024 * 1024
MAX_NODES = 50_000  # after alias expansion; a real SOP has a few hundred
NESTED = "the file nests lists and keys deeper than any SOP needs; refused"

_CORE = "tag:yaml.org,2002:"
REFUSED = object()  # stands in for a value whose tag was refused; already reported

_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass
class Node:
    """A YAML value with where it stands: a scalar, a `dict[str, Node]` or a `list[Node]`."""

    value: Any
    line: int
    column: int
    # for mappings: the position of each key, so "unknown key" points at the key itself
    key_pos: dict[str, tuple[int, int]] = field(default_factory=dict)

    def problem(self, message: str) -> Problem:
        """A problem located at this value."""
        return Problem(self.line, self.column, message)


class YamlRefused(Exception):
    """The file cannot be read as safe YAML; carries one located problem."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.message)


def parse(text: str | bytes) -> tuple[Node, list[Problem]]:
    """Parse one YAML document into located nodes and the problems met on the way.

    Raise YamlRefused when nothing sensible can be read at all (syntax, size, alias bomb).
    """
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise YamlRefused(Problem(1, 1, f"the file is {len(raw):,} bytes; the limit is 1 MiB"))
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise YamlRefused(Problem(line, 1, "the file is not UTF-8 text")) from None
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = e.problem or e.context or "unreadable YAML"
        raise YamlRefused(Problem(line, col, f"this is not valid YAML: {what}")) from None
    except yaml.YAMLError as e:
        raise YamlRefused(Problem(1, 1, f"this is not valid YAML: {e}")) from None
    except RecursionError:
        raise YamlRefused(Problem(1, 1, NESTED)) from None
    if root is None:
        raise YamlRefused(Problem(1, 1, "the file is empty"))
    builder = _Builder()
    try:
        tree = builder.build(root)
    except RecursionError:
        raise YamlRefused(Problem(1, 1, NESTED)) from None
    return tree, builder.problems


class _Builder:
    def __init__(self) -> None:
        self.count = 0
        self.problems: list[Problem] = []
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node) -> Node:
        self.count += 1
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if self.count > MAX_NODES:
            raise YamlRefused(
                Problem(line, col, "aliases here expand past the size any SOP needs; refused")
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, line, col)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _CORE + "seq":
                return self._bad_tag(node, line, col)
            return Node([self.build(item) for item in node.value], line, col)
        if node.tag not in _SCALAR_TAGS:
            return self._bad_tag(node, line, col)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            # an implicitly resolved timestamp such as 2026-02-30
            value = node.value
        if isinstance(value, str) and "\x00" in value:
            self.problems.append(Problem(line, col, "this text holds a NUL character (\\0)"))
            return Node(REFUSED, line, col)
        return Node(value, line, col)

    def _mapping(self, node: yaml.MappingNode, line: int, col: int) -> Node:
        if node.tag != _CORE + "map":
            return self._bad_tag(node, line, col)
        out: dict[str, Node] = {}
        keys: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _CORE + "merge":
                self.problems.append(
                    Problem(kline, kcol, "keys must be plain words; this one is not")
                )
                continue
            key = str(key_node.value)
            if key in out:
                first = keys[key][0]
                self.problems.append(
                    Problem(kline, kcol, f"key `{key}` appears twice (first on line {first})")
                )
                continue
            keys[key] = (kline, kcol)
            out[key] = self.build(value_node)
        return Node(out, line, col, keys)

    def _bad_tag(self, node: yaml.Node, line: int, col: int) -> Node:
        self.problems.append(
            Problem(
                line,
                col,
                f"the tag `{node.tag.replace(_CORE, '!!')}` is not allowed: "
                "SOP files hold plain data",
            )
        )
        return Node(REFUSED, line, col)
