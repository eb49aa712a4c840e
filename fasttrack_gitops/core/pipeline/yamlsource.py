"""Safe YAML loading that remembers where every node came from.

PyYAML composes the text into a node graph (libyaml when available) and we
build plain Python data from it ourselves, because the stock constructor
loses positions, keeps the last of two duplicate keys without a word, reads
the key `on` as the boolean true, and expands aliases without a bound (a
"billion laughs" file). Here:

- every value and every mapping key has a 1-based (line, column);
- mapping keys are always the text written (`on`, `yes`, `1` stay strings);
- duplicate keys, tabs used for indentation, invalid UTF-8, oversized files,
  alias bombs, deep nesting and non-JSON YAML (custom tags, complex keys) are
  diagnostics, never exceptions.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, NodePath, diagnostic, json_path

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses and composes in C

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP, _SEQ, _MAP, _MERGE = (
    _TAG + t for t in ("str", "null", "bool", "int", "float", "timestamp", "seq", "map", "merge")
)
# Plain scalars YAML 1.1 reads as booleans although a person may have meant a word.
_SURPRISING_BOOLEANS = {"yes", "no", "on", "off"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 1 << 20  # 1 MiB
    max_nodes: int = 200_000  # after alias expansion; a 1,000-task pipeline has ~40,000
    max_depth: int = 64  # a pipeline nests about 6 deep


@dataclass(frozen=True)
class Mark:
    line: int
    column: int


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a document was written.

    It keeps the composed nodes and reads their marks only when asked: a
    1,000-task file has ~30,000 nodes and a diagnostic or two.
    """

    values: dict[NodePath, Node] = field(default_factory=dict)
    keys: dict[NodePath, Node] = field(default_factory=dict)

    def value(self, path: NodePath) -> Mark:
        """The position of the value at path, or of its nearest written ancestor."""
        while path not in self.values and path:
            path = path[:-1]
        node = self.values.get(path)
        return _mark(node) if node is not None else Mark(1, 1)

    def key(self, path: NodePath) -> Mark:
        """The position of the key that names path (the value's, for list items)."""
        node = self.keys.get(path)
        return _mark(node) if node is not None else self.value(path)


@dataclass
class Document:
    data: Any
    source: SourceMap
    file: str
    text: str


class _Stop(Exception):
    """Loading cannot go on; carries the diagnostic that says why."""

    def __init__(self, diag: Diagnostic):
        self.diag = diag


def load(raw: bytes, file: str, limits: Limits = Limits()) -> tuple[Document | None, list[Diagnostic]]:
    """Parse raw bytes of one YAML document. Returns (document or None, diagnostics)."""
    with paused_gc():
        return _load(raw, file, limits)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bounded input is turned into many small objects.

    A 1,000-task file makes ~500,000 of them and no garbage cycles, yet they
    set off the collector over and over (a full pass walks them all each
    time): pausing it takes 40% off loading, and as much again off checking.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _load(raw: bytes, file: str, limits: Limits) -> tuple[Document | None, list[Diagnostic]]:
    try:
        if len(raw) > limits.max_bytes:
            raise _Stop(too_large(len(raw), limits, file))
        text = _decode(raw, file)
        root = _compose(text, file)
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL):
            raise _Stop(diagnostic("FT007", "file is empty; a pipeline needs at least 'name' and 'tasks'", file, 1, 1))
        if not isinstance(root, MappingNode):
            m = _mark(root)
            raise _Stop(
                diagnostic(
                    "FT007",
                    f"the top level is a {_kind(root)}, not a mapping of keys such as 'name' and 'tasks'",
                    file,
                    m.line,
                    m.column,
                )
            )
        if "&" in text:  # only anchors make aliases; without them the document is as big as the file
            _check_expansion(root, file, limits)
        builder = _Builder(file, limits.max_depth)
        data = builder.build(root, ())
    except _Stop as stop:
        return None, [stop.diag]
    return Document(data, builder.source, file, text), builder.diagnostics


def too_large(size: int, limits: Limits, file: str) -> Diagnostic:
    return diagnostic(
        "FT002",
        f"file is {_human_size(size)}, over the {_human_size(limits.max_bytes)} limit; "
        "split the pipeline or raise the limit with --max-file-size",
        file,
        1,
        1,
    )


def _human_size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB".replace(".0 ", " ")
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB".replace(".0 ", " ")
    return f"{n} bytes"


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
        raise _Stop(
            diagnostic("FT003", f"invalid UTF-8 byte 0x{raw[e.start]:02x}; save the file as UTF-8", file, line, column)
        ) from None


def _compose(text: str, file: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        tab = _tab_in_indentation(text, line)
        if tab:
            raise _Stop(
                diagnostic(
                    "FT005", "tab character used for indentation; YAML indents with spaces only", file, line, tab
                )
            ) from None
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise _Stop(diagnostic("FT004", f"YAML syntax error: {problem}", file, line, column)) from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow
        before = text[: e.position]
        line = before.count("\n") + 1
        column = e.position - (before.rfind("\n") + 1) + 1
        char = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or "\0")
        raise _Stop(
            diagnostic(
                "FT004",
                f"character U+{char:04X} is not allowed in YAML; remove it or write it "
                "as an escape in a double-quoted string",
                file,
                line,
                column,
            )
        ) from None
    except yaml.YAMLError as e:  # an error without a position
        raise _Stop(diagnostic("FT004", f"YAML syntax error: {e}", file, 1, 1)) from None
    except RecursionError:
        raise _Stop(diagnostic("FT009", "the document nests too deeply to be read", file, 1, 1)) from None


def _tab_in_indentation(text: str, line: int) -> int:
    """1-based column of a tab in the leading whitespace of the line (or the one before), else 0."""
    lines = text.splitlines()
    for n in (line, line - 1):
        if 1 <= n <= len(lines):
            row = lines[n - 1]
            indent = row[: len(row) - len(row.lstrip(" \t"))]
            if "\t" in indent:
                return indent.index("\t") + 1
    return 0


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "mapping"
    if isinstance(node, SequenceNode):
        return "list"
    return "scalar"


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        items: list[Node] = node.value  # the stubs leave Node.value untyped
        return items
    return []


def _check_expansion(root: Node, file: str, limits: Limits) -> None:
    """Refuse alias bombs and deep nesting before anything is expanded.

    The composed graph shares aliased nodes, so the size of the expanded
    document is computed once per distinct node (memoised), in time linear in
    the file, however large the expansion would be.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    aliased = False

    def size(node: Node, depth: int) -> int:
        nonlocal aliased
        key = id(node)
        if key in sizes:
            aliased = True
            return sizes[key]
        if depth > limits.max_depth:
            m = _mark(node)
            raise _Stop(
                diagnostic(
                    "FT009", f"the document nests more than {limits.max_depth} levels deep", file, m.line, m.column
                )
            )
        if key in in_progress:
            m = _mark(node)
            raise _Stop(diagnostic("FT008", "a YAML alias refers to the node that contains it", file, m.line, m.column))
        in_progress.add(key)
        total = 1
        for child in _children(node):
            total += size(child, depth + 1)
            if total > limits.max_nodes:
                m = _mark(node)
                what = "YAML aliases expand" if aliased else "the document expands"
                raise _Stop(
                    diagnostic(
                        "FT008",
                        f"{what} to more than {limits.max_nodes:,} nodes; "
                        "this looks like an alias bomb, not a pipeline",
                        file,
                        m.line,
                        m.column,
                    )
                )
        in_progress.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


class _Builder:
    """Builds JSON-like data from composed nodes, recording where each came from."""

    def __init__(self, file: str, max_depth: int):
        self.file = file
        self.max_depth = max_depth
        self.source = SourceMap()
        self.diagnostics: list[Diagnostic] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: Node, path: NodePath) -> Any:
        self.source.values[path] = node
        if len(path) > self.max_depth:
            self._stop("FT009", f"the document nests more than {self.max_depth} levels deep", node, path)
        if type(node) is ScalarNode:
            return self._scalar(node, path)
        if type(node) is MappingNode:
            return self._mapping(node, path)
        if node.tag != _SEQ:
            self._unsupported(node, path)
        return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]

    def _mapping(self, node: MappingNode, path: NodePath) -> dict[str, Any]:
        if node.tag != _MAP:
            self._unsupported(node, path)
        result: dict[str, Any] = {}
        keys = self.source.keys
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                self._stop("FT010", "a mapping key must be a plain word, not a list or mapping", key_node, path)
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = key_node.value
            child = path + (key,)
            if key in result:
                m = _mark(key_node)
                self.diagnostics.append(
                    diagnostic(
                        "FT006",
                        f"duplicate key '{key}' (first defined on line {_mark(keys[child]).line}); remove one of them",
                        self.file,
                        m.line,
                        m.column,
                        json_path(child),
                    )
                )
                continue
            keys[child] = key_node
            result[key] = self.build(value_node, child)
        # `<<: *anchor` (docker compose style): written keys win over merged ones,
        # and earlier merge sources over later ones.
        for key_node, value_node in self._merged_pairs(merges, path):
            key = key_node.value
            if key not in result:
                keys[path + (key,)] = key_node
                result[key] = self.build(value_node, path + (key,))
        return result

    def _merged_pairs(self, sources: list[Node], path: NodePath) -> list[tuple[Node, Node]]:
        """The (key, value) pairs that `<<` brings in, a merged mapping's own `<<` resolved the same way."""
        pairs: list[tuple[Node, Node]] = []
        for source in sources:
            for merged in source.value if isinstance(source, SequenceNode) else [source]:
                if not isinstance(merged, MappingNode):
                    self._stop("FT010", "'<<' merges mappings only", merged, path)
                for key, _ in merged.value:
                    if type(key) is not ScalarNode:
                        self._stop("FT010", "a mapping key must be a plain word, not a list or mapping", key, path)
                nested = [value for key, value in merged.value if key.tag == _MERGE]
                pairs += [(key, value) for key, value in merged.value if key.tag != _MERGE]
                pairs += self._merged_pairs(nested, path)
        return pairs

    def _stop(self, code: str, message: str, node: Node, path: NodePath) -> NoReturn:
        m = _mark(node)
        raise _Stop(diagnostic(code, message, self.file, m.line, m.column, json_path(path)))

    def _scalar(self, node: ScalarNode, path: NodePath) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            if not node.style and node.value.lower() in _SURPRISING_BOOLEANS:  # libyaml: '' for plain
                m = _mark(node)
                self.diagnostics.append(
                    diagnostic(
                        "FT203",
                        f"'{node.value}' is read as the boolean {self._scalars.construct_object(node)}; "
                        f'write true/false, or quote it ("{node.value}") if you meant the word',
                        self.file,
                        m.line,
                        m.column,
                        json_path(path),
                    )
                )
            return self._scalars.construct_object(node)
        if tag == _INT:
            return self._scalars.construct_object(node)
        if tag == _FLOAT:
            number = self._scalars.construct_object(node)
            # .inf and .nan have no JSON form: keep the text, and the schema says what is wrong with it.
            return number if math.isfinite(number) else node.value
        if tag == _TIMESTAMP:
            return node.value  # JSON has no dates: keep the text as written
        self._unsupported(node, path)

    def _unsupported(self, node: Node, path: NodePath) -> NoReturn:
        self._stop(
            "FT010",
            f"unsupported YAML tag '{node.tag}'; pipelines use plain mappings, lists, strings, numbers and booleans",
            node,
            path,
        )
