"""The task graph: order, cycles, layers. Pure functions over name -> dependencies."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

Graph = Mapping[str, Sequence[str]]  # task name -> the names it depends on


def find_cycle(graph: Graph) -> list[str] | None:
    """A cycle as a path that returns to its start (['a', 'c', 'b', 'a']), or None.

    Iterative depth-first search (a 1,000-task chain must not hit Python's
    recursion limit); edges to unknown tasks are ignored here, they are
    reported on their own.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in graph:
        if colour[start] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        colour[start] = GREY
        while stack:
            node, i = stack[-1]
            deps = [d for d in graph[node] if d in colour]
            if i < len(deps):
                stack[-1] = (node, i + 1)
                nxt = deps[i]
                if colour[nxt] == GREY:
                    # Report in the direction people read pipelines: a -> (depends on) ...
                    return path[path.index(nxt) :] + [nxt]
                if colour[nxt] == WHITE:
                    colour[nxt] = GREY
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                colour[node] = BLACK
                stack.pop()
                path.pop()
    return None


def topological_order(graph: Graph) -> list[str]:
    """Every task after the tasks it depends on (Kahn's algorithm, breadth first from the roots in file order).

    Raises ValueError on a cycle. Dependencies on unknown tasks are ignored.
    """
    waiting = {name: sum(1 for d in deps if d in graph) for name, deps in graph.items()}
    children = dependents(graph)
    ready = deque(name for name in graph if waiting[name] == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) != len(graph):
        raise ValueError("the graph has a cycle")
    return order


def layers(graph: Graph) -> list[list[str]]:
    """Tasks grouped by the earliest step they can run in, each group in file order."""
    level: dict[str, int] = {}
    for name in topological_order(graph):
        level[name] = 1 + max((level[d] for d in graph[name] if d in graph), default=-1)
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in graph:
        out[level[name]].append(name)
    return out


def dependents(graph: Graph) -> dict[str, list[str]]:
    """The reverse edges: task name -> the tasks that depend on it."""
    out: dict[str, list[str]] = {name: [] for name in graph}
    for name, deps in graph.items():
        for d in deps:
            if d in out:
                out[d].append(name)
    return out
