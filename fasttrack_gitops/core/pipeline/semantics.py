"""Checks of meaning that a schema cannot express: the DAG, names, secrets, placeholders, code paths.

A task's result declarations (metrics, plots, artifacts) are checked by
results.check, beside their model.

They read the raw loaded data defensively (a value of the wrong type is the
schema's to report, and is skipped here), so one run reports schema and
semantic problems together.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from functools import cache, partial
from typing import Any, Literal

from fasttrack_gitops.core.pipeline import dag
from fasttrack_gitops.core.pipeline import params as parameters
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, NodePath, diagnostic, did_you_mean, json_path
from fasttrack_gitops.core.pipeline.model import CONCURRENCY_PLACEHOLDERS
from fasttrack_gitops.core.pipeline.units import OutOfRange, parse_amount, parse_duration, parse_size
from fasttrack_gitops.core.pipeline.yamlsource import Document

CodeDirState = Literal["dir", "missing", "not-a-dir", "escapes"]
# Answers "what is at this repository-relative path?" for the repository being
# validated: the working tree today, a git tree at a commit later.
CodeLookup = Callable[[str], CodeDirState]


# The patterns below are compiled when first used, not at import: each is needed only when a file has what it
# looks at (a ${{ }}, a literal env value, an image), and a 1-task `run` or `validate` usually has none of it.
@cache
def _expression() -> re.Pattern[str]:
    return re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


@cache
def _secret_ref() -> re.Pattern[str]:
    return re.compile(r"^\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*$")


@cache
def _secret_name_hint() -> re.Pattern[str]:
    """Whole words of a variable name: GITHUB_TOKEN and DB_PASSWORD look secret, MAX_TOKENS does not."""
    return re.compile(
        r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|(API|ACCESS|PRIVATE|SECRET)_KEY)(_|$)", re.IGNORECASE
    )


@cache
def _gpu_image_hint() -> re.Pattern[str]:
    return re.compile(r"(cuda|ngc-|-gpu|gpu-|tensorrt|triton)", re.IGNORECASE)


# Where a ${{ ... }} is a concurrency placeholder rather than a secret: `concurrency: NAME`, `concurrency.group`.
_CONCURRENCY_GROUP_PATHS = (("concurrency",), ("concurrency", "group"))
# What an author used to GitHub Actions writes in a concurrency group, and our placeholder for it.
_GITHUB_CONTEXT = {
    "github.ref": "ref",
    "github.ref_name": "branch",
    "github.head_ref": "branch",
    "github.sha": "sha",
    "github.event.number": "pr",
    "github.event.pull_request.number": "pr",
    "github.workflow": "pipeline",
    "github.repository": "repository",
    "github.event_name": "event",
}


def check(doc: Document, code_lookup: CodeLookup | None = None) -> list[Diagnostic]:
    data = doc.data if isinstance(doc.data, dict) else {}
    tasks = data.get("tasks")
    found: list[Diagnostic] = []
    if isinstance(tasks, list):
        found += _check_tasks(doc, tasks, code_lookup)
    found += _check_expressions(doc, data, ())
    found += _check_envs(doc, ("environment", "envs"), _get(data, "environment", "envs"))
    found += _check_schedules(doc, data)
    found += _check_params(doc, data.get("params"))
    found += _check_cache_paths(doc, "the pipeline", data.get("cache"), ("cache", "paths"))
    return found


def _check_params(doc: Document, items: Any) -> Iterator[Diagnostic]:
    """Parameters whose default or choices do not fit their type, and names that clash (params.py)."""
    if isinstance(items, list):
        for path, code, message in parameters.problems(items):
            yield _at(doc, code, message, ("params", *path))


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _at(doc: Document, code: str, message: str, path: NodePath, *, key: bool = False) -> Diagnostic:
    m = doc.source.key(path) if key else doc.source.value(path)
    return diagnostic(code, message, doc.file, m.line, m.column, json_path(path))


def _check_tasks(doc: Document, tasks: list[Any], code_lookup: CodeLookup | None) -> Iterator[Diagnostic]:
    if not tasks:
        yield _at(doc, "FT108", "the pipeline has no tasks; add at least one under 'tasks'", ("tasks",))
        return
    first_index: dict[str, int] = {}
    for i, task in enumerate(tasks):
        name = task.get("name") if isinstance(task, dict) else None
        if not isinstance(name, str):
            continue
        if name in first_index:
            first_line = doc.source.value(("tasks", first_index[name], "name")).line
            yield _at(
                doc,
                "FT106",
                f"task name '{name}' is already used on line {first_line}; task names must be unique",
                ("tasks", i, "name"),
            )
        else:
            first_index[name] = i

    graph: dict[str, list[str]] = {}
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        name = task.get("name")
        deps = task.get("dependencies")
        own = name if isinstance(name, str) and first_index.get(name) == i else None
        edges: list[str] = []
        for j, dep in enumerate(deps if isinstance(deps, list) else []):
            if not isinstance(dep, str):
                continue
            path = ("tasks", i, "dependencies", j)
            who = f"task '{name}'" if isinstance(name, str) else f"task #{i + 1}"
            if dep == name:
                yield _at(doc, "FT105", f"{who} depends on itself; remove '{dep}' from its dependencies", path)
            elif dep not in first_index:
                yield _at(doc, "FT103", f"{who} depends on unknown task '{dep}'{did_you_mean(dep, first_index)}", path)
            elif dep in edges:
                yield _at(
                    doc,
                    "FT114",
                    f"{who} lists dependency '{dep}' twice; inputs are numbered by position, so list each once",
                    path,
                )
            else:
                edges.append(dep)
        if own is not None:
            graph[own] = edges
        yield from _check_task_values(doc, task, i, code_lookup)

    if any(isinstance(t, dict) and isinstance(t.get("service"), dict) for t in tasks):
        # only deployment tasks name services: services.py (and cron.py below) load when a file has what they check
        from fasttrack_gitops.core.pipeline import services

        yield from services.check_names(doc, tasks)
    cycle = dag.find_cycle(graph)
    if cycle:
        i = first_index[cycle[0]]
        j = tasks[i]["dependencies"].index(cycle[1])
        yield _at(
            doc,
            "FT104",
            f"dependency cycle: {' -> '.join(cycle)} (each task depends on the next); remove one of these dependencies",
            ("tasks", i, "dependencies", j),
        )


def _check_task_values(
    doc: Document, task: dict[str, Any], i: int, code_lookup: CodeLookup | None
) -> Iterator[Diagnostic]:
    base: NodePath = ("tasks", i)
    name = task.get("name")
    who = f"task '{name}'" if isinstance(name, str) else f"task #{i + 1}"

    for path, parse in _quantities(task):
        try:
            value = parse()
        except OutOfRange as e:
            diag_code = "FT115" if path[0] in ("timeout", "retry") else "FT109"
            yield _at(doc, diag_code, f"{who} {'.'.join(path)}: {e}", base + path)
            continue
        except (ValueError, TypeError):
            continue  # a spelling the schema does not allow: the schema reports it
        if path == ("timeout",) and value == 0:
            yield _at(
                doc,
                "FT115",
                f"{who} has a timeout of 0; write a positive duration like 30m, or remove the key for no timeout",
                base + path,
            )

    code = task.get("code")
    if isinstance(code, str) and code:
        yield from _check_code(doc, who, code, base + ("code",), code_lookup)

    yield from _check_cache_paths(doc, who, task.get("cache"), base + ("cache", "paths"))
    if any(key in task for key in ("metrics", "plots", "artifacts")):  # results.check says nothing otherwise
        from fasttrack_gitops.core.pipeline import results

        yield from results.check(doc, who, task, base)
    if isinstance(task.get("service"), dict):  # services.check says nothing of a task without one
        from fasttrack_gitops.core.pipeline import services

        yield from services.check(doc, who, task, base)

    env = task.get("environment")
    yield from _check_envs(doc, base + ("environment", "envs"), _get(env, "envs"))
    image = _get(env, "image")
    resources = task.get("resources")
    if not isinstance(resources, dict):
        resources = {}
    wants_accelerator = any("." in key and not key.startswith("x-") for key in resources)
    if isinstance(image, str) and _gpu_image_hint().search(image) and not wants_accelerator:
        yield _at(
            doc,
            "FT201",
            f"{who} uses the GPU image '{image}' but requests no GPU; add resources "
            "cuda.shares or cuda.device, or use a CPU image",
            base + ("environment", "image"),
        )
    mem = resources.get("mem")
    if isinstance(mem, int) and not isinstance(mem, bool) and 0 < mem < (1 << 20):
        yield _at(
            doc,
            "FT204",
            f"{who} asks for mem {mem}, which is {mem} bytes; write a unit, e.g. '{mem}g'",
            base + ("resources", "mem"),
        )


def _quantities(task: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Callable[[], float]]]:
    """(path in the task, parser) for every number-like value: parsed here only to find values out of range."""
    resources = task.get("resources")
    for key, value in resources.items() if isinstance(resources, dict) else ():
        if key == "mem":
            yield ("resources", key), partial(parse_size, value)
        elif not key.startswith("x-"):
            yield ("resources", key), partial(parse_amount, value)
    shmem = _get(task, "resource_opts", "shmem")
    if shmem is not None:
        yield ("resource_opts", "shmem"), lambda: parse_size(shmem)
    if task.get("timeout") is not None:
        yield ("timeout",), lambda: parse_duration(task["timeout"])
    if _get(task, "retry", "delay") is not None:
        yield ("retry", "delay"), lambda: parse_duration(task["retry"]["delay"])


def _check_code(
    doc: Document, who: str, code: str, path: NodePath, code_lookup: CodeLookup | None
) -> Iterator[Diagnostic]:
    normal = posixpath.normpath(code)
    if code.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", code) or "\\" in code:
        yield _at(
            doc,
            "FT112",
            f"{who} has code '{code}', which is not a path relative to the repository root; "
            "write it like tasks/train (forward slashes, no leading /)",
            path,
        )
        return
    if normal == ".." or normal.startswith("../"):
        yield _at(
            doc,
            "FT112",
            f"{who} has code '{code}', which leads out of the repository; code must be a directory inside it",
            path,
        )
        return
    if code_lookup is None:
        return
    state = code_lookup(normal)
    if state == "escapes":
        yield _at(
            doc,
            "FT112",
            f"{who} has code '{code}', which is a symlink leading out of the repository; "
            "code must be a directory inside it",
            path,
        )
    elif state == "missing":
        yield _at(
            doc,
            "FT113",
            f"{who} has code '{code}', which does not exist in the repository; create it or fix the path",
            path,
        )
    elif state == "not-a-dir":
        yield _at(doc, "FT113", f"{who} has code '{code}', which is a file, not a directory", path)


def _check_cache_paths(doc: Document, who: str, cache: Any, path: NodePath) -> Iterator[Diagnostic]:
    paths = _get(cache, "paths")
    for j, pattern in enumerate(paths if isinstance(paths, list) else []):
        if not isinstance(pattern, str) or not pattern:
            continue  # the schema reports it
        parts = pattern.lstrip("!").split("/")
        if pattern.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", pattern) or "\\" in pattern or ".." in parts:
            yield _at(
                doc,
                "FT118",
                f"{who} has cache path '{pattern}', which is not a path inside the repository; "
                "write it relative to the repository root, without '..' (data/labels.csv, configs/**)",
                path + (j,),
            )


def _check_envs(doc: Document, path: NodePath, envs: Any) -> Iterator[Diagnostic]:
    if not isinstance(envs, dict):
        return
    for key, value in envs.items():
        if literal_secret(key, value):
            yield _at(
                doc,
                "FT202",
                f"environment variable {key} looks like a secret but has a literal value, "
                f'which ends up in git and in job records; write "${{{{ secrets.{key} }}}}"',
                path + (key,),
            )


def literal_secret(name: str, value: Any) -> bool:
    """An environment variable whose name looks secret (API_KEY, HF_TOKEN) holding a literal value (FT202)."""
    return (
        isinstance(value, str)
        and bool(value)
        and "${{" not in value
        and bool(_secret_name_hint().search(name))
        and not name.startswith("x-")
    )


def _check_expressions(doc: Document, node: Any, path: NodePath) -> Iterator[Diagnostic]:
    """Every ${{ ... }} in the file must be a secrets.NAME reference, except in the concurrency group.

    The group is a name made per job from what triggered it, so there the
    expressions are the placeholders (and a secret has no place: group names
    are shown in job records and logs).
    """
    stack: list[tuple[Any, NodePath]] = [(node, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, where + (k,)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, where + (i,)) for i, v in enumerate(value))
        elif isinstance(value, str) and "${{" in value:
            if where in _CONCURRENCY_GROUP_PATHS:
                for message in _placeholder_problems(value):
                    yield _at(doc, "FT117", message, where)
            else:
                for message in _expression_problems(value):
                    yield _at(doc, "FT110", message, where)


def _expression_problems(text: str) -> Iterator[str]:
    for match in _expression().finditer(text):
        inner = match.group(1)
        if not _secret_ref().match(inner):
            name = inner.strip()
            suggestion = re.sub(r"[^A-Za-z0-9_]", "_", name.split(".", 1)[-1]) or "NAME"
            if suggestion[0].isdigit():
                suggestion = "_" + suggestion
            yield (
                f"'{match.group(0)}' is not a secret reference; write ${{{{ secrets.NAME }}}} with NAME made of "
                f"letters, digits and '_' (e.g. ${{{{ secrets.{suggestion} }}}})"
            )
    if text.count("${{") > len(_expression().findall(text)):
        yield "'${{' is not closed with '}}'; write ${{ secrets.NAME }}"


def _placeholder_problems(text: str) -> Iterator[str]:
    valid = ", ".join(CONCURRENCY_PLACEHOLDERS)
    for match in _expression().finditer(text):
        name = match.group(1).strip()
        if name in CONCURRENCY_PLACEHOLDERS:
            continue
        if _secret_ref().match(name):
            yield (
                f"'{match.group(0)}' is a secret, which a concurrency group cannot use (group names are shown "
                f"in job records); use a placeholder: {valid}"
            )
        else:
            github = _GITHUB_CONTEXT.get(name)
            hint = f" (did you mean '{github}'?)" if github else did_you_mean(name, CONCURRENCY_PLACEHOLDERS)
            yield f"'{match.group(0)}' is not a concurrency placeholder{hint}; use one of: {valid}"
    if text.count("${{") > len(_expression().findall(text)):
        yield "'${{' is not closed with '}}'; write a placeholder like ${{ branch }}"


def _check_schedules(doc: Document, data: dict[str, Any]) -> Iterator[Diagnostic]:
    schedule = _get(data, "on", "schedule")
    for i, item in enumerate(schedule if isinstance(schedule, list) else []):
        cron = _get(item, "cron")
        if isinstance(cron, str):
            from fasttrack_gitops.core.pipeline.cron import parse_cron

            try:
                parse_cron(cron)
            except ValueError as e:
                yield _at(
                    doc,
                    "FT116",
                    f"schedule '{cron}' is not a valid cron expression: {e}",
                    ("on", "schedule", i, "cron"),
                )
