"""The pipeline schema, as a user meets it: unknown keys, missing keys, wrong types and value formats.

Every bad input asserts the code, the 1-based line and column, and the part
of the message that tells the author what to write instead.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.schema import schema_path

FILE = "pipelines/p.yaml"
HEAD = 'version: "26.4.4"\nname: demo\n'


def check(text: str):
    return check_pipeline(textwrap.dedent(text).encode("utf-8"), FILE)


def one_task(extra: str = "", name: str = "a") -> str:
    """A pipeline of one custom task; `extra` is indented under the task (lines 6 and on)."""
    return HEAD + f"tasks:\n  - name: {name}\n    command: echo hi\n" + textwrap.indent(textwrap.dedent(extra), "    ")


def only(result, code: str):
    assert [d.code for d in result.diagnostics] == [code], result.diagnostics
    return result.diagnostics[0]


def at(d) -> tuple[int, int]:
    return (d.line, d.column)


def assert_valid(result):
    assert [d for d in result.diagnostics if d.is_error] == []
    assert result.pipeline is not None


# --- unknown keys (FT101) ----------------------------------------------------


def test_misspelt_top_level_key_suggests_the_right_one():
    d = only(check(HEAD + "descriptin: trains\ntasks:\n  - name: a\n    command: x\n"), "FT101")
    assert at(d) == (3, 1)
    assert "unknown key 'descriptin' in the pipeline (did you mean 'description'?)" in d.message
    assert d.path == "$.descriptin"


@pytest.mark.parametrize("typo, meant", [("dependancies", "dependencies"), ("environmnt", "environment")])
def test_misspelt_task_key_suggests_the_right_one(typo, meant):
    d = only(check(one_task(f"{typo}: {{}}\n")), "FT101")
    assert at(d) == (6, 5)
    assert f"unknown key '{typo}' in task 'a' (did you mean '{meant}'?)" in d.message
    assert d.path == f"$.tasks[0].{typo}"


def test_scaling_group_with_underscore_suggests_the_dash_spelling():
    d = only(check(one_task("environment:\n  scaling_group: default\n")), "FT101")
    assert at(d) == (7, 7)
    assert "unknown key 'scaling_group' in task 'a' environment (did you mean 'scaling-group'?)" in d.message


def test_branch_under_on_push_suggests_branches():
    d = only(check(HEAD + "on:\n  push:\n    branch: [main]\ntasks:\n  - name: a\n    command: x\n"), "FT101")
    assert at(d) == (5, 5)
    assert "unknown key 'branch' in on.push (did you mean 'branches'?)" in d.message
    assert d.path == "$.on.push.branch"


def test_misspelt_retry_key_suggests_the_right_one():
    d = only(check(one_task("retry:\n  max_attempt: 3\n")), "FT101")
    assert at(d) == (7, 7)
    assert "unknown key 'max_attempt' in task 'a' retry (did you mean 'max_attempts'?)" in d.message


def test_unknown_key_far_from_anything_lists_the_known_keys():
    d = only(check(one_task() + "zzqqxx: 1\n"), "FT101")
    assert at(d) == (6, 1)
    assert "did you mean" not in d.message
    assert "known keys here: version, name, description, ownership, environment, params, tasks" in d.message


def test_two_unknown_keys_are_two_diagnostics():
    result = check(one_task("dependancies: []\nenvironmnt: {}\n"))
    assert [(d.code, d.line) for d in result.diagnostics] == [("FT101", 6), ("FT101", 7)]


# --- required keys (FT102) ---------------------------------------------------


@pytest.mark.parametrize(
    "missing, advice",
    [
        ("name", ""),
        ("tasks", "a list of the pipeline's tasks"),
        ("version", 'version: "26.4.4"'),
    ],
)
def test_missing_top_level_key(missing, advice):
    lines = {"version": 'version: "1"\n', "name": "name: demo\n", "tasks": "tasks:\n  - name: a\n    command: x\n"}
    text = "".join(v for k, v in lines.items() if k != missing)
    d = only(check(text), "FT102")
    assert at(d) == (1, 1)
    assert f"the pipeline has no '{missing}'" in d.message
    assert advice in d.message
    assert d.path == "$"


def test_custom_task_without_command():
    d = only(check(HEAD + "tasks:\n  - name: a\n    type: custom\n"), "FT102")
    assert at(d) == (4, 5)
    assert "task 'a' has no 'command'" in d.message
    assert "write command: ..." in d.message
    assert d.path == "$.tasks[0]"


def test_task_without_a_type_needs_a_command_too():
    d = only(check(HEAD + "tasks:\n  - name: a\n"), "FT102")
    assert "task 'a' has no 'command'" in d.message


def test_deployment_task_without_service():
    d = only(check(HEAD + "tasks:\n  - name: serve\n    type: deployment\n"), "FT102")
    assert at(d) == (4, 5)
    assert "task 'serve' has no 'service'" in d.message
    assert "describes the service it starts" in d.message


def test_task_without_a_name_is_named_by_its_position():
    d = only(check(HEAD + "tasks:\n  - name: a\n    command: x\n  - command: y\n"), "FT102")
    assert at(d) == (6, 5)
    assert "task #2 has no 'name'" in d.message


# --- wrong types and enums (FT100) --------------------------------------------


def test_tasks_as_a_string_is_a_type_error():
    d = only(check(HEAD + "tasks: foo\n"), "FT100")
    assert at(d) == (3, 8)
    assert "tasks is the string 'foo'; expected a list" in d.message


def test_skip_as_a_quoted_string_is_a_type_error():
    d = only(check(one_task('skip: "no"\n')), "FT100")
    assert at(d) == (6, 11)
    assert "task 'a' skip is the string 'no'; expected true or false" in d.message


def test_capitalised_task_type_suggests_the_lowercase_one():
    d = only(check(one_task("type: Custom\n")), "FT100")
    assert at(d) == (6, 11)
    assert "expected one of: custom, Custom Task, deployment, serving (did you mean 'custom'?)" in d.message


@pytest.mark.parametrize("version", ['"26.4.4"', "26.4", "25.6.5.post2", "26.4.4rc6", "3"])
def test_version_may_be_a_string_or_a_number(version):
    result = check(f"version: {version}\nname: demo\ntasks:\n  - name: a\n    command: x\n")
    assert_valid(result)
    assert result.pipeline.version == version.strip('"')


def test_version_as_a_list_is_a_type_error():
    d = only(check("version: [1]\nname: demo\ntasks:\n  - name: a\n    command: x\n"), "FT100")
    assert at(d) == (1, 10)
    assert "version is a list; expected a string or a number" in d.message


# --- resources (FT109) ---------------------------------------------------------


@pytest.mark.parametrize("shares, amount", [("1.5", 1.5), ("'5'", 5.0), ("2", 2.0), ("'0.25'", 0.25)])
def test_gpu_shares_may_be_a_number_or_a_numeric_string(shares, amount):
    result = check(one_task(f"resources:\n  cuda.shares: {shares}\n"))
    assert_valid(result)
    assert result.pipeline.task("a").resources.accelerators == (("cuda.shares", amount),)


def test_gpu_shares_that_are_not_a_number_are_a_resource_error():
    d = only(check(one_task("resources:\n  cuda.shares: 'abc'\n")), "FT109")
    assert at(d) == (7, 20)
    assert "task 'a' resources.cuda.shares is 'abc'" in d.message
    assert "a numeric string such as '5' or '1.5'" in d.message


def test_other_vendors_accelerators_are_accepted():
    result = check(one_task("resources:\n  rocm.device: 1\n"))
    assert_valid(result)
    assert result.pipeline.task("a").resources.accelerators == (("rocm.device", 1.0),)


def test_memory_with_a_space_before_the_unit_is_a_resource_error():
    d = only(check(one_task("resources:\n  mem: 16 GB\n")), "FT109")
    assert at(d) == (7, 12)
    assert "task 'a' resources.mem is '16 GB'" in d.message
    assert "no space" in d.message


@pytest.mark.parametrize(
    "mem, size",
    [
        ("1.5G", 3 << 29),
        ("512m", 512 << 20),
        ("16g", 16 << 30),
        ("2GiB", 2 << 30),
        ("2gb", 2 << 30),
        ("1073741824", 1 << 30),
        ("0g", 0),
    ],
)
def test_memory_sizes_in_binary_units(mem, size):
    result = check(one_task(f"resources:\n  mem: {mem}\n"))
    assert_valid(result)
    assert result.pipeline.task("a").resources.mem == size


@pytest.mark.parametrize("cpu", ["0", "-1", '"0"', "0.0", '"abc"'])
def test_cpu_must_be_a_positive_number(cpu):
    d = only(check(one_task(f"resources:\n  cpu: {cpu}\n")), "FT109")
    assert at(d) == (7, 12)
    assert "task 'a' resources.cpu is" in d.message
    assert "a positive number such as 2 or 0.5" in d.message


@pytest.mark.parametrize("cpu, cores", [("0.5", 0.5), ('"2"', 2.0), ("4", 4.0), ('".5"', 0.5)])
def test_cpu_as_number_or_numeric_string(cpu, cores):
    result = check(one_task(f"resources:\n  cpu: {cpu}\n"))
    assert_valid(result)
    assert result.pipeline.task("a").resources.cpu == cores


def test_memory_in_kubernetes_spelling_2Gi():
    result = check(one_task("resources:\n  mem: 2Gi\n"))
    assert_valid(result)
    assert result.pipeline.task("a").resources.mem == 2 << 30


def test_shared_memory_size_is_checked_like_memory():
    d = only(check(one_task("resource_opts:\n  shmem: 2 g\n")), "FT109")
    assert at(d) == (7, 14)


def test_infinite_cpu_is_a_resource_error_that_says_what_was_written():
    d = only(check(one_task("resources:\n  cpu: .inf\n")), "FT109")
    assert at(d) == (7, 12)
    assert "null" not in d.message


def test_absurdly_large_memory_is_a_diagnostic_not_a_crash():
    result = check(one_task('resources:\n  mem: "1' + "0" * 400 + '"\n'))
    assert [d.code for d in result.diagnostics] == ["FT109"]


def test_absurdly_large_cpu_is_a_diagnostic_not_a_crash():
    result = check(one_task('resources:\n  cpu: "1' + "0" * 400 + '"\n'))
    assert [d.code for d in result.diagnostics] == ["FT109"]


# --- durations (FT115) ---------------------------------------------------------


def test_timeout_in_words_is_a_duration_error():
    d = only(check(one_task("timeout: 5 minutes\n")), "FT115")
    assert at(d) == (6, 14)
    assert "task 'a' timeout is '5 minutes'" in d.message
    assert "such as 90s, 45m, 2h or 1h30m" in d.message


@pytest.mark.parametrize(
    "timeout, seconds",
    [("90s", 90), ("45m", 2700), ("2h", 7200), ("1h30m", 5400), ("600", 600), ("1.5", 1.5), ("250ms", 0.25)],
)
def test_timeout_spellings(timeout, seconds):
    result = check(one_task(f"timeout: {timeout}\n"))
    assert_valid(result)
    assert result.pipeline.task("a").timeout == seconds


@pytest.mark.parametrize("timeout", ["0", "0s", '"0m"'])
def test_timeout_of_zero_is_refused(timeout):
    d = only(check(one_task(f"timeout: {timeout}\n")), "FT115")
    assert at(d) == (6, 14)
    assert "has a timeout of 0" in d.message


def test_retry_delay_is_a_duration():
    d = only(check(one_task("retry:\n  max_attempts: 2\n  delay: soon\n")), "FT115")
    assert at(d) == (8, 14)
    assert "task 'a' retry.delay is 'soon'" in d.message
    result = check(one_task("retry:\n  max_attempts: 2\n  delay: 2m\n  backoff: 2\n"))
    assert_valid(result)
    assert result.pipeline.task("a").retry.delay == 120


# --- mounts (FT111) ------------------------------------------------------------


def test_mount_with_a_space_in_the_alias_is_a_mount_error():
    d = only(check(one_task('mounts: ["data:/a b"]\n')), "FT111")
    assert at(d) == (6, 14)
    assert "task 'a' mounts[0] is 'data:/a b'" in d.message
    assert "vfolder or vfolder:alias" in d.message


@pytest.mark.parametrize("mount", ["data", "data:alias", "baift-examples:examples", "data:/home/work/data"])
def test_mount_spellings(mount):
    result = check(one_task(f"mounts: [{mount!r}]\n"))
    assert_valid(result)
    assert str(result.pipeline.task("a").mounts[0]) == mount


# --- task names (FT107) ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["-bad", "bad-", "x" * 41, "a b", "ä", ".hidden", "a/b"],
    ids=["leading-dash", "trailing-dash", "41-chars", "space", "non-ascii", "leading-dot", "slash"],
)
def test_task_name_rules(name):
    d = only(check(one_task(name=json.dumps(name))), "FT107")
    assert at(d) == (4, 11)
    assert f"name is {name!r}" in d.message
    assert "1-40 characters of letters, digits, '_', '.', '-', starting and ending with a letter or digit" in d.message


@pytest.mark.parametrize("name", ["a", "x" * 40, "a.b_c-d", "7", "Train2"])
def test_task_names_that_are_accepted(name):
    result = check(one_task(name=json.dumps(name)))
    assert_valid(result)
    assert result.pipeline.tasks[0].name == name


def test_task_name_with_a_trailing_newline_is_a_task_name_error():
    d = only(check(one_task(name='"train\\n"')), "FT107")
    assert at(d) == (4, 11)


# --- ownership and the four task types ---------------------------------------------


@pytest.mark.parametrize(
    "ownership",
    ["domain: default\n  scope: user", "domain_name: default\n  scope: personal", "domain: default\n  scope: project"],
)
def test_ownership_spellings_of_both_export_shapes(ownership):
    result = check(HEAD + f"ownership:\n  {ownership}\ntasks:\n  - name: a\n    command: x\n")
    assert_valid(result)


def test_ownership_scope_must_be_known():
    d = only(check(HEAD + "ownership:\n  scope: Project\ntasks:\n  - name: a\n    command: x\n"), "FT100")
    assert at(d) == (4, 10)
    assert "(did you mean 'project'?)" in d.message


@pytest.mark.parametrize("task_type", ["custom", "Custom Task"])
def test_command_task_types(task_type):
    result = check(one_task(f"type: {task_type}\n"))
    assert_valid(result)
    assert result.pipeline.task("a").type == task_type
    assert not result.pipeline.task("a").is_service


@pytest.mark.parametrize("task_type", ["deployment", "serving"])
def test_service_task_types(task_type):
    result = check(
        HEAD
        + f"""tasks:
  - name: serve
    type: {task_type}
    service:
      name: api-service
      replicas: 1
      open_to_public: true
"""
    )
    assert_valid(result)
    task = result.pipeline.task("serve")
    assert task.is_service and task.command is None
    assert task.service == {"name": "api-service", "replicas": 1, "open_to_public": True}


def test_unknown_service_key_suggests_the_right_one():
    d = only(check(HEAD + "tasks:\n  - name: s\n    type: serving\n    service:\n      replica: 1\n"), "FT101")
    assert at(d) == (7, 7)
    assert "(did you mean 'replicas'?)" in d.message


# --- environment variables, triggers, notify ---------------------------------------


def test_environment_variable_name_must_be_a_shell_name():
    d = only(check(HEAD + "environment:\n  envs:\n    MY-VAR: x\ntasks:\n  - name: a\n    command: x\n"), "FT100")
    assert at(d) == (5, 5)
    assert "'MY-VAR'" in d.message


def test_bad_environment_variable_name_is_explained_at_the_key():
    d = only(
        check(HEAD + "environment:\n  envs:\n    GOOD: x\n    MY-VAR: x\ntasks:\n  - name: a\n    command: x\n"),
        "FT100",
    )
    assert at(d) == (6, 5)
    assert "'MY-VAR' is not a valid environment variable name" in d.message
    assert d.path == "$.environment.envs['MY-VAR']"


def test_trigger_shapes():
    for on in ("push", "[push, manual]", "{push: {branches: main}, pull_request: null, manual: true}"):
        assert_valid(check(HEAD + f"on: {on}\ntasks:\n  - name: a\n    command: x\n"))


def test_unknown_trigger_event_in_a_mapping_suggests_one():
    d = only(check(HEAD + "on:\n  pull-request: {}\ntasks:\n  - name: a\n    command: x\n"), "FT101")
    assert at(d) == (4, 3)
    assert "(did you mean 'pull_request'?)" in d.message


def test_slack_on_lists_events_once():
    d = only(check(one_task() + "notify:\n  slack:\n    on: [failure, failure]\n"), "FT100")
    assert at(d) == (8, 9)
    assert "lists an item twice" in d.message


def test_schema_file_is_the_one_shipped_in_schemas():
    data = json.loads(schema_path().read_text(encoding="utf-8"))
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(data["required"]) == {"version", "name", "tasks"}


# --- model results: metrics, plots, artifacts ----------------------------------------


def test_the_results_keys_of_the_issue_example_are_valid():
    result = check(
        one_task("""\
            metrics:
              files: [metrics.json]
              rules:
                accuracy: {direction: higher, noise: 0.002, gate: {min: 0.90, max_regression: "1%"}}
                loss: {direction: lower}
            plots: [{path: plots/roc.png, title: ROC curve}, plots/pr.svg]
            artifacts: [model/]
            """)
    )
    assert_valid(result)
    task = result.pipeline.tasks[0]
    assert task.metrics.files == ("metrics.json",)
    assert [p.label for p in task.plots] == ["ROC curve", "pr.svg"]
    assert task.artifacts == ("model/",)


def test_a_direction_other_than_higher_or_lower_is_a_schema_error():
    d = only(check(one_task("metrics: {files: [m.json], rules: {acc: {direction: up}}}\n")), "FT100")
    assert at(d) == (6, 57)
    assert "higher" in d.message and "lower" in d.message


@pytest.mark.parametrize("noise", ["-1", "'1'", "'-1%'", "'1 %'", "'abc'"])
def test_noise_is_a_non_negative_number_or_a_percentage(noise):
    d = only(check(one_task(f"metrics: {{files: [m.json], rules: {{acc: {{noise: {noise}}}}}}}\n")), "FT100")
    assert d.line == 6


@pytest.mark.parametrize("noise", ["0", "0.002", "'1%'", "'0.5%'"])
def test_noise_spellings(noise):
    assert_valid(check(one_task(f"metrics: {{files: [m.json], rules: {{acc: {{noise: {noise}}}}}}}\n")))


def test_an_unknown_gate_key_suggests_the_right_one():
    d = only(check(one_task("metrics: {files: [m.json], rules: {acc: {gate: {minimum: 0.9}}}}\n")), "FT101")
    assert "minimum" in d.message and "did you mean 'min'" in d.message


def test_metrics_need_files():
    d = only(check(one_task("metrics: {rules: {acc: {direction: higher}}}\n")), "FT102")
    assert "files" in d.message


def test_a_plot_needs_a_path():
    d = only(check(one_task("plots: [{title: ROC}]\n")), "FT102")
    assert "plots[0] has no 'path'" in d.message
