"""The task graph: cycles, order, layers and reverse edges, on small graphs and a 1,000-task chain."""

from __future__ import annotations

import pytest

from fasttrack_gitops.core.pipeline.dag import dependents, find_cycle, layers, topological_order

DIAMOND = {"prepare": [], "left": ["prepare"], "right": ["prepare"], "join": ["left", "right"]}


def chain(n: int) -> dict[str, list[str]]:
    return {f"t{i}": ([f"t{i - 1}"] if i else []) for i in range(n)}


def test_no_cycle_in_an_empty_graph_or_a_dag():
    assert find_cycle({}) is None
    assert find_cycle({"a": []}) is None
    assert find_cycle(DIAMOND) is None


def test_self_loop_is_a_cycle_of_one():
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_cycle_is_reported_as_a_path_back_to_its_start():
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) == ["a", "c", "b", "a"]


def test_cycle_reached_from_a_task_outside_it_starts_at_the_cycle():
    graph = {"entry": ["x"], "x": ["y"], "y": ["z"], "z": ["x"]}
    assert find_cycle(graph) == ["x", "y", "z", "x"]


def test_edges_to_unknown_tasks_are_ignored():
    assert find_cycle({"a": ["ghost"], "b": ["a", "ghost"]}) is None
    assert topological_order({"a": ["ghost"], "b": ["a"]}) == ["a", "b"]


def test_topological_order_keeps_file_order_for_ties():
    assert topological_order({"b": [], "a": [], "c": ["a", "b"]}) == ["b", "a", "c"]
    assert topological_order({"join": ["left", "right"], "left": ["prepare"], "right": ["prepare"], "prepare": []}) == [
        "prepare",
        "left",
        "right",
        "join",
    ]


def test_topological_order_refuses_a_cycle():
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"a": ["b"], "b": ["a"], "c": []})


def test_layers_group_tasks_by_earliest_step():
    assert layers(DIAMOND) == [["prepare"], ["left", "right"], ["join"]]
    assert layers({"a": [], "b": [], "c": ["a"], "d": ["c", "b"]}) == [["a", "b"], ["c"], ["d"]]
    assert layers({}) == []


def test_dependents_are_the_reverse_edges():
    assert dependents(DIAMOND) == {"prepare": ["left", "right"], "left": ["join"], "right": ["join"], "join": []}
    assert dependents({"a": ["ghost"]}) == {"a": []}


def test_a_thousand_task_chain_needs_no_recursion():
    graph = chain(1000)
    assert find_cycle(graph) is None
    assert topological_order(graph) == [f"t{i}" for i in range(1000)]
    assert layers(graph) == [[f"t{i}"] for i in range(1000)]
    assert dependents(graph)["t0"] == ["t1"]


def test_a_thousand_task_chain_closed_into_a_ring_is_one_long_cycle():
    graph = chain(1000)
    graph["t0"] = ["t999"]
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] == "t0"
    assert len(cycle) == 1001
    assert all(b in graph[a] for a, b in zip(cycle, cycle[1:]))
