"""Checks of meaning: the task graph, names, secrets, placeholders, code directories, schedules, warnings.

Each bad input asserts the code, the 1-based line and column, and the part of
the message that tells the author what to fix. A property test builds random
DAGs, checks they are accepted, then closes a path into a cycle and checks the
reported cycle is a real one.
"""

from __future__ import annotations

import json
import random
import re
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline import Limits, check_pipeline
from fasttrack_gitops.core.pipeline.diagnostics import CODES
from fasttrack_gitops.core.pipeline.model import CONCURRENCY_PLACEHOLDERS
from fasttrack_gitops.core.render.diagnostics import text_line

FILE = "pipelines/p.yaml"
HEAD = 'version: "26.4.4"\nname: demo\n'


def check(text: str, **kwargs):
    return check_pipeline(textwrap.dedent(text).encode("utf-8"), FILE, **kwargs)


def pipeline(*tasks: str, top: str = "") -> str:
    """HEAD, then `top` (top-level keys), then the tasks, each a YAML block for one list item."""
    return HEAD + top + "tasks:\n" + "".join(tasks)


def task(name: str, deps: list[str] | None = None, extra: str = "") -> str:
    out = f"  - name: {name}\n    command: echo {name}\n"
    if deps is not None:
        out += f"    dependencies: [{', '.join(deps)}]\n"
    return out + textwrap.indent(textwrap.dedent(extra), "    ")


def only(result, code: str):
    assert [d.code for d in result.diagnostics] == [code], result.diagnostics
    return result.diagnostics[0]


def at(d) -> tuple[int, int]:
    return (d.line, d.column)


def errors(result) -> list:
    return [d for d in result.diagnostics if d.is_error]


# --- the task graph --------------------------------------------------------------


def test_a_pipeline_needs_at_least_one_task():
    d = only(check(HEAD + "tasks: []\n"), "FT108")
    assert at(d) == (3, 8)
    assert "the pipeline has no tasks; add at least one under 'tasks'" in d.message


def test_duplicate_task_names_are_reported_at_the_second_naming_the_first_line():
    result = check(pipeline(task("a"), task("b"), task("a")))
    d = only(result, "FT106")
    assert at(d) == (8, 11)
    assert "task name 'a' is already used on line 4" in d.message
    assert d.path == "$.tasks[2].name"


def test_unknown_dependency_suggests_the_closest_task_name():
    result = check(pipeline(task("train"), task("b", ["trian"])))
    d = only(result, "FT103")
    assert at(d) == (8, 20)
    assert d.message == "task 'b' depends on unknown task 'trian' (did you mean 'train'?)"
    assert text_line(d) == (
        f"{FILE}:8:20: error FT103: task 'b' depends on unknown task 'trian' (did you mean 'train'?)"
    )
    assert d.path == "$.tasks[1].dependencies[0]"


def test_unknown_dependency_far_from_any_name_has_no_suggestion():
    d = only(check(pipeline(task("train"), task("b", ["zzzz"]))), "FT103")
    assert d.message == "task 'b' depends on unknown task 'zzzz'"


def test_a_task_that_depends_on_itself():
    d = only(check(pipeline(task("a", ["a"]))), "FT105")
    assert at(d) == (6, 20)
    assert "task 'a' depends on itself; remove 'a' from its dependencies" in d.message


def test_a_dependency_listed_twice():
    d = only(check(pipeline(task("a"), task("b", ["a", "a"]))), "FT114")
    assert at(d) == (8, 23)  # the second 'a'
    assert "task 'b' lists dependency 'a' twice" in d.message
    assert "inputs are numbered by position" in d.message


def test_three_task_cycle_is_reported_in_dependency_order():
    result = check(pipeline(task("a", ["c"]), task("b", ["a"]), task("c", ["b"])))
    d = only(result, "FT104")
    assert at(d) == (6, 20)  # a's dependency on c, where the cycle starts
    assert "dependency cycle: a -> c -> b -> a (each task depends on the next)" in d.message
    assert d.path == "$.tasks[0].dependencies[0]"
    assert result.pipeline is None


def test_two_task_cycle():
    d = only(check(pipeline(task("a", ["b"]), task("b", ["a"]))), "FT104")
    assert "dependency cycle: a -> b -> a" in d.message


def test_dependencies_may_be_null_or_empty():
    result = check(pipeline(task("a", []), task("b", extra="dependencies:\n")))
    assert result.diagnostics == []
    assert result.pipeline.graph == {"a": (), "b": ()}


def test_one_thousand_task_chain_is_accepted_without_hitting_the_recursion_limit():
    """How long checking a 1,000-task chain takes is bench/validate_bench.py's figure."""
    tasks = [{"name": "t0", "command": "x"}] + [
        {"name": f"t{i}", "command": "x", "dependencies": [f"t{i - 1}"]} for i in range(1, 1000)
    ]
    raw = yaml.safe_dump({"version": "1", "name": "chain", "tasks": tasks}).encode()
    result = check_pipeline(raw, FILE)
    assert result.diagnostics == []
    assert len(result.pipeline.tasks) == 1000


def test_one_thousand_task_cycle_does_not_hit_the_recursion_limit():
    tasks = [{"name": f"t{i}", "command": "x", "dependencies": [f"t{(i - 1) % 1000}"]} for i in range(1000)]
    raw = yaml.safe_dump({"version": "1", "name": "ring", "tasks": tasks}).encode()
    d = only(check_pipeline(raw, FILE), "FT104")
    assert d.message.startswith("dependency cycle: t0 -> t999 -> t998")


# --- random DAGs (property) ----------------------------------------------------------


def _render(order: list[int], deps: dict[int, list[int]]) -> bytes:
    tasks = []
    for i in order:
        entry: dict = {"name": f"t{i}", "command": f"echo {i}"}
        if deps[i] or i % 2:
            entry["dependencies"] = [f"t{d}" for d in deps[i]]
        tasks.append(entry)
    return yaml.safe_dump({"version": "26.4.4", "name": "random-dag", "tasks": tasks}, sort_keys=False).encode()


def _reachable(deps: dict[int, list[int]], start: int) -> set[int]:
    """The tasks start depends on, directly or through others."""
    seen: set[int] = set()
    stack = list(deps[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(deps[node])
    return seen


@st.composite
def dags(draw):
    n = draw(st.integers(min_value=1, max_value=30))
    deps = {i: draw(st.lists(st.sampled_from(range(i)), unique=True, max_size=4)) if i else [] for i in range(n)}
    order = draw(st.permutations(range(n)))
    return n, deps, list(order)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=dags(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_random_dags_are_accepted_and_closing_a_path_reports_a_real_cycle(dag, seed):
    n, deps, order = dag
    result = check_pipeline(_render(order, deps), FILE)
    assert result.diagnostics == []
    assert {t.name for t in result.pipeline.tasks} == {f"t{i}" for i in range(n)}

    # Close a path: u depends (through >= 1 edge) on v; making v depend on u is a cycle.
    pairs = [(u, v) for u in range(n) for v in sorted(_reachable(deps, u))]
    if not pairs:
        return
    u, v = random.Random(seed).choice(pairs)
    deps[v] = deps[v] + [u]
    result = check_pipeline(_render(order, deps), FILE)
    d = only(result, "FT104")
    match = re.match(r"dependency cycle: (.+) \(each task depends on the next\)", d.message)
    assert match, d.message
    cycle = match.group(1).split(" -> ")
    assert len(cycle) >= 3 and cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1  # a simple cycle
    edges = {(f"t{a}", f"t{b}") for a, bs in deps.items() for b in bs}
    for here, there in zip(cycle, cycle[1:]):
        assert (here, there) in edges, f"{here} does not depend on {there}"
    # reported at the first task's dependency on the second
    first = order.index(int(cycle[0][1:]))
    assert d.path == f"$.tasks[{first}].dependencies[{deps[int(cycle[0][1:])].index(int(cycle[1][1:]))}]"


# --- secrets ----------------------------------------------------------------------------


def env_task(value: str) -> str:
    return pipeline(task("a", extra=f"environment:\n  envs:\n    KEY: {json.dumps(value)}\n"))


@pytest.mark.parametrize(
    "value",
    [
        "${{ secrets.HF_TOKEN }}",
        "${{secrets.A}}",
        "Bearer ${{ secrets.A_1 }} and ${{ secrets._B }}",
        "no expression at all",
        "${ not an expression }",
    ],
)
def test_well_formed_secret_references_are_accepted(value):
    assert check(env_task(value)).diagnostics == []


@pytest.mark.parametrize(
    "value, suggestion",
    [
        ("${{ secret.X }}", "${{ secrets.X }}"),
        ("${{ secrets.my-key }}", "${{ secrets.my_key }}"),
        ("${{ secrets.1X }}", "${{ secrets._1X }}"),
        ("${{ env.X }}", "${{ secrets.X }}"),
    ],
)
def test_malformed_secret_reference(value, suggestion):
    d = only(check(env_task(value)), "FT110")
    assert at(d) == (8, 14)
    assert f"'{value}' is not a secret reference" in d.message
    assert f"(e.g. {suggestion})" in d.message
    assert d.path == "$.tasks[0].environment.envs.KEY"


def test_unclosed_secret_reference():
    d = only(check(env_task("${{ secrets.X")), "FT110")
    assert at(d) == (8, 14)
    assert "'${{' is not closed with '}}'" in d.message


def test_an_expression_written_with_a_yaml_escape_is_still_checked():
    """ "\u0024{{" is "${{" once YAML has read it; the check looks at values, not at the file's text."""
    d = only(check(pipeline(task("a", extra='description: "uses \\u0024{{ env.HOME }}"\n'))), "FT110")
    assert d.path == "$.tasks[0].description"


def test_expressions_are_checked_everywhere_not_only_in_envs():
    d = only(check(pipeline(task("a", extra="description: 'uses ${{ env.HOME }}'\n"))), "FT110")
    assert at(d) == (6, 18)
    assert d.path == "$.tasks[0].description"


# --- code directories ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, why",
    [
        ("/abs", "is not a path relative to the repository root"),
        ("../up", "leads out of the repository"),
        ("a/../../up", "leads out of the repository"),
        ("C:\\x", "is not a path relative to the repository root"),
        ("tasks\\train", "is not a path relative to the repository root"),
    ],
)
def test_code_directory_that_leaves_the_repository(code, why):
    d = only(check(pipeline(task("a", extra=f"code: {json.dumps(code)}\n"))), "FT112")
    assert at(d) == (6, 11)
    assert f"task 'a' has code '{code}', which {why}" in d.message


@pytest.mark.parametrize(
    "state, code, phrase",
    [
        ("missing", "FT113", "does not exist in the repository"),
        ("not-a-dir", "FT113", "is a file, not a directory"),
        ("escapes", "FT112", "is a symlink leading out of the repository"),
    ],
)
def test_code_directory_checked_against_the_repository(state, code, phrase):
    asked: list[str] = []

    def lookup(path: str) -> str:
        asked.append(path)
        return state

    d = only(check(pipeline(task("a", extra="code: tasks/./train/\n")), code_lookup=lookup), code)
    assert at(d) == (6, 11)
    assert phrase in d.message
    assert asked == ["tasks/train"]  # normalised before the lookup


def test_code_directory_that_exists_is_fine():
    result = check(pipeline(task("a", extra="code: tasks/train\n")), code_lookup=lambda path: "dir")
    assert result.diagnostics == []
    assert result.pipeline.task("a").code == "tasks/train"


def test_code_directory_is_not_looked_up_without_a_lookup():
    assert check(pipeline(task("a", extra="code: tasks/nowhere\n"))).diagnostics == []


# --- schedules --------------------------------------------------------------------------------


def scheduled(cron: str) -> str:
    return pipeline(task("a"), top=f"on:\n  schedule:\n    - cron: {json.dumps(cron)}\n")


@pytest.mark.parametrize(
    "cron, why",
    [
        ("0 25 * * *", "hour: 25 is outside 0-23"),
        ("* * *", "has 5 fields"),
        ("*/0 * * * *", "minute: step '0' must be a positive whole number"),
        ("5-1 * * * *", "minute: range '5-1' runs backwards"),
        ("0 0 * * 8", "day of week: 8 is outside 0-7"),
        ("0 0 1 foo *", "month: 'foo' is not a number or a name"),
        ("@daily", "has 5 fields"),
    ],
)
def test_invalid_cron_schedule(cron, why):
    d = only(check(scheduled(cron)), "FT116")
    assert at(d) == (5, 13)
    assert f"schedule '{cron}' is not a valid cron expression" in d.message
    assert why in d.message
    assert d.path == "$.on.schedule[0].cron"


@pytest.mark.parametrize(
    "cron",
    [
        "0 3 * * 1-5",
        "*/15 * * * MON-FRI",
        "*/15 * * * mon-fri",
        "0 0 1 jan *",
        "0 0 1 JAN sun",
        "1,2,3-5/2 * * * *",
        "0 0 * * 7",
        "59 23 31 12 6",
    ],
)
def test_valid_cron_schedule(cron):
    result = check(scheduled(cron))
    assert result.diagnostics == []
    assert result.pipeline.triggers == {"schedule": [{"cron": cron}]}


# --- concurrency placeholders ----------------------------------------------------------------------


def grouped(group: str, *, short: bool = False) -> str:
    """A pipeline whose concurrency group is `group`: `concurrency: G` when short, else `concurrency: {group: G}`."""
    top = f"concurrency: {json.dumps(group)}\n" if short else f"concurrency:\n  group: {json.dumps(group)}\n"
    return pipeline(task("a"), top=top)


@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize(
    "group",
    [
        "deploy-${{ branch }}",
        "${{ref}}",
        "${{ pipeline }}-${{ pr }}-${{ sha }}",
        "${{ repository }}/${{ event }}",
        "no placeholder",
    ],
)
def test_concurrency_placeholders_are_accepted(group, short):
    result = check(grouped(group, short=short))
    assert result.diagnostics == []
    assert result.pipeline.concurrency["group"] == group  # expanded per job, not at check time


def test_every_placeholder_is_accepted():
    group = "-".join(f"${{{{ {name} }}}}" for name in CONCURRENCY_PLACEHOLDERS)
    assert check(grouped(group)).diagnostics == []


@pytest.mark.parametrize(
    "group, hint",
    [
        ("deploy-${{ brnch }}", " (did you mean 'branch'?)"),
        ("deploy-${{ Branch }}", " (did you mean 'branch'?)"),
        ("${{ github.ref }}", " (did you mean 'ref'?)"),
        ("${{ github.head_ref }}", " (did you mean 'branch'?)"),
        ("${{ github.event.pull_request.number }}", " (did you mean 'pr'?)"),
        ("${{ whatever }}", ""),
    ],
)
def test_unknown_concurrency_placeholder(group, hint):
    d = only(check(grouped(group)), "FT117")
    assert at(d) == (4, 10)
    assert d.path == "$.concurrency.group"
    expression = group[group.index("${{") :]
    assert d.message == (
        f"'{expression}' is not a concurrency placeholder{hint}; "
        "use one of: ref, branch, pr, sha, pipeline, repository, event"
    )


def test_a_secret_in_the_concurrency_group_is_refused():
    d = only(check(grouped("${{ secrets.DEPLOY_KEY }}", short=True)), "FT117")
    assert at(d) == (3, 14)
    assert d.path == "$.concurrency"
    assert "'${{ secrets.DEPLOY_KEY }}' is a secret, which a concurrency group cannot use" in d.message
    assert "use a placeholder: ref, branch" in d.message


def test_unclosed_concurrency_placeholder():
    d = only(check(grouped("deploy-${{ branch")), "FT117")
    assert "'${{' is not closed with '}}'; write a placeholder like ${{ branch }}" in d.message


def test_placeholders_mean_nothing_outside_the_concurrency_group():
    d = only(check(pipeline(task("a", extra="description: 'on ${{ branch }}'\n"))), "FT110")
    assert d.path == "$.tasks[0].description"
    result = check(pipeline(task("a"), top="concurrency:\n  group: g\n  x-note: '${{ branch }}'\n"))
    assert [(d.code, d.path) for d in result.diagnostics] == [("FT110", "$.concurrency['x-note']")]


# --- warnings ------------------------------------------------------------------------------------


def test_gpu_image_without_a_gpu_warns():
    image = "cr.backend.ai/cloud/ngc-pytorch:24.09-pytorch2.5-py310-cuda12.6"
    result = check(pipeline(task("a", extra=f"environment:\n  image: {image}\n")))
    d = only(result, "FT201")
    assert d.severity == "warning"
    assert at(d) == (7, 14)
    assert f"task 'a' uses the GPU image '{image}' but requests no GPU" in d.message
    assert result.pipeline is not None  # a warning does not make the pipeline invalid


def test_gpu_image_with_gpu_shares_does_not_warn():
    image = "cr.backend.ai/cloud/ngc-pytorch:24.09-pytorch2.5-py310-cuda12.6"
    extra = f"environment:\n  image: {image}\nresources:\n  cuda.shares: 1\n"
    assert check(pipeline(task("a", extra=extra))).diagnostics == []


def test_literal_secret_looking_environment_variable_warns():
    d = only(check(pipeline(task("a"), top="environment:\n  envs:\n    HF_TOKEN: hf_abc\n")), "FT202")
    assert d.severity == "warning"
    assert at(d) == (5, 15)
    assert "environment variable HF_TOKEN looks like a secret but has a literal value" in d.message
    assert 'write "${{ secrets.HF_TOKEN }}"' in d.message


def test_the_real_torchtune_example_warns_about_its_literal_hf_token(fasttrack_examples):
    path = next(p for p in fasttrack_examples if p.name.startswith("torchtune"))
    result = check_pipeline(path.read_bytes(), str(path))
    d = only(result, "FT202")
    assert at(d) == (9, 15)
    assert "HF_TOKEN" in d.message
    assert errors(result) == []


def test_empty_secret_looking_variable_does_not_warn():
    assert check(pipeline(task("a"), top="environment:\n  envs:\n    GITHUB_TOKEN: ''\n")).diagnostics == []


def test_max_tokens_is_not_a_secret():
    assert check(pipeline(task("a"), top="environment:\n  envs:\n    MAX_TOKENS: '4096'\n")).diagnostics == []


def test_memory_as_a_bare_small_number_warns_it_is_bytes():
    d = only(check(pipeline(task("a", extra="resources:\n  mem: 16\n"))), "FT204")
    assert d.severity == "warning"
    assert at(d) == (7, 12)
    assert "task 'a' asks for mem 16, which is 16 bytes; write a unit, e.g. '16g'" in d.message


def test_memory_as_a_large_byte_count_does_not_warn():
    assert check(pipeline(task("a", extra="resources:\n  mem: 1073741824\n"))).diagnostics == []


# --- parameters ------------------------------------------------------------------------------------


def test_params_with_defaults_of_their_type_are_valid_and_typed_by_their_default():
    top = "params:\n  - {name: lr, type: number, default: 0.1}\n  - {name: epochs, default: 3}\n  - {name: tag, default: x}\n"
    result = check(pipeline(task("a"), top=top))
    assert result.diagnostics == []
    assert [(p.name, p.type, p.value) for p in result.pipeline.params] == [
        ("lr", "number", 0.1),
        ("epochs", "integer", 3),
        ("tag", "string", "x"),
    ]


@pytest.mark.parametrize(
    ("item", "code", "where", "says"),
    [
        ("{name: lr, type: integer, default: 0.5}", "FT140", (4, 40), "default 0.5 is not of its type integer"),
        ("{name: ok, type: boolean, default: 'yes'}", "FT140", (4, 40), "default 'yes' is not of its type boolean"),
        ("{name: m, default: a, choices: [b, c]}", "FT140", (4, 22), "default 'a' is not one of its choices b, c"),
        ("{name: n, type: integer, default: 1, choices: [1, x]}", "FT140", (4, 52), "choice 'x' is not of its type"),
        ("{name: 9lives, default: 1}", "FT100", (4, 13), ""),
        ("{name: lr, kind: float}", "FT101", (4, 5), ""),
    ],
)
def test_a_parameter_that_does_not_fit_is_an_error_at_its_line(item, code, where, says):
    result = check(pipeline(task("a"), top=f"params:\n  - {item}\n"))
    [d] = result.diagnostics
    assert (d.code, d.severity) == (code, "error")
    assert d.line == where[0] and says in d.message


def test_two_parameters_whose_names_differ_only_in_case_clash():
    result = check(pipeline(task("a"), top="params:\n  - {name: lr, default: 1}\n  - {name: LR, default: 2}\n"))
    [d] = result.diagnostics
    assert (d.code, d.line) == ("FT141", 5)
    assert "both would be PARAM_LR" in d.message


# --- every diagnostic is complete -------------------------------------------------------------------


BAD_FILES = [
    b"",
    b"- a\n",
    b"x: [\n",
    b'version: "1"\nname: d\ntasks:\n\t- name: a\n',
    b"a: 1\na: 2\n",
    b"\xff\xfe",
    b"a: &a [*a]\n",
    b"x: !foo 1\n",
    b"? [a]\n: 1\n",
    "x: " + "[" * 100 + "]" * 100,
    HEAD + "tasks: []\n",
    HEAD + "tasks: foo\n",
    HEAD + "descriptin: x\ntasks:\n  - name: a\n",
    pipeline(task("a"), task("a")),
    pipeline(task("b", ["trian"])),
    pipeline(task("a", ["a"])),
    pipeline(task("x"), task("a", ["x", "x"])),
    pipeline(task("a", ["b"]), task("b", ["a"])),
    env_task("${{ env.X }}"),
    env_task("${{ secrets.X"),
    scheduled("61 * * * *"),
    grouped("deploy-${{ brnch }}"),
    pipeline(task("-bad", extra="resources:\n  cpu: 0\n  mem: 16 GB\n  cuda.shares: abc\n")),
    pipeline(task("a", extra="timeout: soon\nmounts: ['a b']\ncode: /abs\ntype: Custom\n")),
    pipeline(task("a", extra="environment:\n  image: x/cuda:1\n  envs: {API_KEY: k}\nresources:\n  mem: 16\n")),
    pipeline(task("a", extra="environment:\n  scaling_group: x\nretry:\n  max_attempt: 1\n")),
    pipeline(task("a", extra="code: tasks/x\n")),
    "version: 1\n",
]


def test_every_diagnostic_has_every_field():
    seen: set[str] = set()
    for bad in BAD_FILES:
        raw = bad if isinstance(bad, bytes) else bad.encode()
        result = check_pipeline(raw, FILE, limits=Limits(), code_lookup=lambda path: "missing")
        assert result.diagnostics, bad
        for d in result.diagnostics:
            assert d.file == FILE
            assert isinstance(d.line, int) and d.line >= 1, d
            assert isinstance(d.column, int) and d.column >= 1, d
            assert d.severity in ("error", "warning"), d
            assert d.code in CODES, d
            assert CODES[d.code][0] == d.severity, d
            assert isinstance(d.message, str) and d.message.strip(), d
            assert d.path.startswith("$"), d
            assert set(d.as_dict()) == {"file", "line", "column", "severity", "code", "message", "path"}
            seen.add(d.code)
    # the sample is broad: most of the file- and pipeline-level codes show up
    assert {
        "FT003",
        "FT004",
        "FT005",
        "FT006",
        "FT007",
        "FT008",
        "FT009",
        "FT010",
        "FT100",
        "FT101",
        "FT102",
        "FT103",
        "FT104",
        "FT105",
        "FT106",
        "FT107",
        "FT108",
        "FT109",
        "FT110",
        "FT111",
        "FT112",
        "FT113",
        "FT114",
        "FT115",
        "FT116",
        "FT117",
        "FT201",
        "FT202",
        "FT204",
    } <= seen, sorted(seen)


def test_diagnostics_come_sorted_by_position():
    result = check(pipeline(task("b", ["zz"]), task("a", ["a"]), top="descriptin: x\n"))
    keys = [(d.line, d.column) for d in result.diagnostics]
    assert keys == sorted(keys) and len(keys) == 3


# --- model results: metrics files, plots, artifacts -------------------------------


@pytest.mark.parametrize(
    ("extra", "what"),
    [
        ("metrics: {files: [../metrics.json]}\n", "metrics file '../metrics.json'"),
        ("metrics: {files: [/tmp/metrics.json]}\n", "metrics file '/tmp/metrics.json'"),
        ("plots: [../x.png]\n", "plot '../x.png'"),
        ("plots: [{path: /etc/x.png, title: X}]\n", "plot '/etc/x.png'"),
        ("plots: ['out\\x.png']\n", "plot 'out\\x.png'"),
        ("artifacts: [model/../../x]\n", "artifact 'model/../../x'"),
        ("artifacts: ['C:/model']\n", "artifact 'C:/model'"),
    ],
)
def test_a_results_path_must_stay_inside_the_task_outputs(extra, what):
    d = only(check(pipeline(task("a", extra=extra))), "FT119")
    assert d.line == 6
    assert f"task 'a' has {what}, which is not a path inside the task's outputs" in d.message
    assert "without '..'" in d.message


def test_a_plot_escaping_the_outputs_is_located_at_its_path():
    d = only(check(pipeline(task("a", extra="plots:\n  - {path: ../x.png, title: X}\n"))), "FT119")
    assert at(d) == (7, 16)


@pytest.mark.parametrize("path", ["plots/roc.pdf", "plots/roc", "report.html"])
def test_a_plot_must_be_an_image(path):
    d = only(check(pipeline(task("a", extra=f"plots: [{path}]\n"))), "FT120")
    assert f"plot '{path}', which is not a PNG, SVG or JPEG image" in d.message
    assert "artifacts" in d.message


@pytest.mark.parametrize("path", ["a.png", "b.SVG", "c.jpg", "d/e.jpeg"])
def test_plot_extensions_that_are_images(path):
    assert check(pipeline(task("a", extra=f"plots: [{path}]\n"))).diagnostics == []


def test_a_metrics_file_must_be_json_yaml_or_toml():
    d = only(check(pipeline(task("a", extra="metrics: {files: [ok.json, ok.yml, ok.toml, bad.csv]}\n"))), "FT121")
    assert "metrics file 'bad.csv', which is not JSON, YAML or TOML" in d.message


def test_max_regression_needs_a_direction():
    extra = "metrics:\n  files: [m.json]\n  rules:\n    acc: {gate: {max_regression: '1%'}}\n"
    d = only(check(pipeline(task("a", extra=extra))), "FT123")
    assert at(d) == (9, 22)
    assert "gates metric 'acc' on max_regression but gives no direction" in d.message
    assert "direction: higher" in d.message


def test_an_empty_rule_name_is_refused_at_the_key():
    extra = "metrics:\n  files: [m.json]\n  rules:\n    '': {direction: higher}\n"
    d = only(check(pipeline(task("a", extra=extra))), "FT122")
    assert at(d) == (9, 9)


def test_x_keys_in_rules_are_anchors_not_metrics():
    extra = "metrics:\n  files: [m.json]\n  rules:\n    x-up: &up {direction: higher}\n    acc: *up\n"
    result = check(pipeline(task("a", extra=extra)))
    assert result.diagnostics == []
    assert list(result.pipeline.tasks[0].metrics.rules) == ["acc"]
