"""Reading YAML that may be hostile: limits on size, nesting, alias expansion and integers.

PyYAML's ``safe_load`` is safe against code execution, not against resource exhaustion:
a 1 KB "billion laughs" document (nine levels of ten aliases) expands to 10^9 values
once anything walks it, 5,000 nested brackets or a self-referencing alias end in
RecursionError, and a 5,000-digit integer hits Python's int-to-str limit.  So a document
is read in three passes, each bounded before the next one runs:

1. **events** (PyYAML's parser is a state machine, no recursion): document size, nesting
   depth and number of alias uses are checked while streaming;
2. **compose** (recursive, but the depth is now bounded): a node graph in which an alias
   is a second reference to the anchored node, never a copy;
3. **expansion** (iterative, memoised per node): the size and depth the document *would*
   have with every alias expanded, and cycles (self-referencing aliases), are checked
   before a single Python object is built.

Integers longer than :data:`LIMITS.max_int_digits` digits are refused while constructing.
The same reader serves scenario files, ``--set`` values and YAML topology files.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from inl_sim.errors import InlSimError, ScenarioError

__all__ = ["YamlLimits", "LIMITS", "load_yaml"]


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML document; far above any real scenario or topology file
    (the shipped ones are < 5 KB, depth 4, no aliases)."""

    max_bytes: int = 20_000_000          # a 100,000-node edge list is about 5 MB (libyaml: ~1 s)
    max_depth: int = 64                  # nesting of mappings/lists, aliases expanded
    max_aliases: int = 10_000            # alias uses (``*name``) in the document
    max_expanded: int = 2_000_000        # values the document holds with aliases expanded
    max_int_digits: int = 40             # 2**64 has 20 digits; seeds and sizes fit easily


LIMITS = YamlLimits()
# libyaml's parser and composer when present (same events and nodes, about 10x faster).
_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LimitExceeded(Exception):
    """Internal: raised inside PyYAML's machinery, turned into the caller's error class."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    digits = sum(ch.isdigit() for ch in node.value)
    if digits > LIMITS.max_int_digits:
        raise _LimitExceeded(f"an integer with {digits} digits (limit {LIMITS.max_int_digits}); "
                             "write a smaller number")
    return yaml.SafeLoader.construct_yaml_int(loader, node)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose integer constructor refuses absurdly long literals."""


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _check_events(text: str) -> None:
    depth = aliases = 0
    for event in yaml.parse(text, Loader=_FAST):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > LIMITS.max_depth:
                raise _LimitExceeded(f"nesting deeper than {LIMITS.max_depth} levels; flatten the document")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > LIMITS.max_aliases:
                raise _LimitExceeded(f"more than {LIMITS.max_aliases} alias uses (*name); "
                                     "write the values out instead of aliasing them")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Size and depth of the alias-expanded tree, and cycles, by one iterative DFS."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in kids)
            depth[key] = 1 + max((depth[id(c)] for c in kids), default=0)
            if size[key] > LIMITS.max_expanded:
                raise _LimitExceeded(f"aliases expand to more than {LIMITS.max_expanded:,} values "
                                     "(an alias bomb?); write the values out or use fewer nested aliases")
            if depth[key] > LIMITS.max_depth:
                raise _LimitExceeded(f"aliases expand to nesting deeper than {LIMITS.max_depth} levels; "
                                     "flatten the document")
            continue
        if key in size:
            continue
        if key in depth:  # visited, not finished: the node contains itself
            raise _LimitExceeded("a self-referencing alias (a node that contains itself); "
                                 "remove the recursive *alias")
        depth[key] = -1
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))


def load_yaml(text: str, where: str, error: type[InlSimError] = ScenarioError) -> object:
    """Parse one YAML document within :data:`LIMITS`.

    Parameters
    ----------
    text
        The document.
    where
        What the text is (a file path, ``--set gate.beta``), named in every error.
    error
        The exception class to raise (``ScenarioError`` or ``TopologyError``).

    Raises
    ------
    error
        On invalid YAML or a limit exceeded, naming ``where``, the limit and the fix.
    """
    if len(text) > LIMITS.max_bytes:
        raise error(f"{where}: document of {len(text):,} characters exceeds the limit of "
                    f"{LIMITS.max_bytes:,}; split it or use a generator")
    try:
        _check_events(text)
        node = yaml.compose(text, Loader=_FAST)
        if node is None:
            return None
        _check_expansion(node)
        loader = _BoundedLoader("")
        try:
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except _LimitExceeded as exc:
        raise error(f"{where}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())[:200]
        raise error(f"{where}: not valid YAML ({first}); fix the syntax") from None
    except (ValueError, OverflowError, RecursionError, UnicodeError) as exc:
        raise error(f"{where}: not valid YAML ({exc.__class__.__name__}: {str(exc)[:120]}); "
                    "fix the value") from None
