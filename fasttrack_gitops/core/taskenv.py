"""A task's environment: pipeline and task envs in FastTrack's order, secrets resolved, parameters added. Pure.

`${{ secrets.NAME }}` is resolved when a job starts, from the secrets the
caller gathered (FTG_SECRET_NAME variables, a --secrets-file). Every secret
value is a mask: executors replace it with *** in logs, and nothing that
prints may show it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.pipeline import params as parameters
from fasttrack_gitops.core.pipeline.model import Pipeline, Task

SECRET_ENV_PREFIX = "FTG_SECRET_"
_REFERENCE = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Variables the executor sets to the pipeline data folder; they win over envs of the same name.
_RESERVED = re.compile(r"^PIPELINE_(OUTPUT_ROOT|INPUT_ROOT|INPUT[0-9]+|VFROOT)$")


class SecretsError(UsageError):
    """A secret is named but not provided, or the secrets file is malformed."""


@dataclass(frozen=True)
class TaskEnvironment:
    env: dict[str, str]  # pipeline envs, then the task's (which win), secrets resolved, then PARAM_<NAME>
    command: str | None  # the command with secret references resolved
    warnings: tuple[str, ...]  # e.g. a PIPELINE_* variable that the data folder path replaces


def referenced_secrets(pipeline: Pipeline) -> list[str]:
    """Every secret name the pipeline refers to, in order of first use."""
    names: list[str] = []
    texts = [v for _, v in pipeline.envs]
    for task in pipeline.tasks:
        texts += [v for _, v in task.envs] + [task.command or ""]
    for text in texts:
        for name in _REFERENCE.findall(text):
            if name not in names:
                names.append(name)
    return names


def check_secrets(pipeline: Pipeline, secrets: Mapping[str, str]) -> None:
    """Raise before anything runs when a referenced secret is not provided."""
    missing = [n for n in referenced_secrets(pipeline) if n not in secrets]
    if missing:
        listed = ", ".join(missing)
        example = missing[0]
        raise SecretsError(
            f"pipeline '{pipeline.name}' uses secret{'s' if len(missing) > 1 else ''} {listed}, not provided; "
            f"set {SECRET_ENV_PREFIX}{example}=... in the environment or put {example}=... in a file given "
            "with --secrets-file"
        )


def task_environment(pipeline: Pipeline, task: Task, secrets: Mapping[str, str]) -> TaskEnvironment:
    """The variables a task instance gets (before the executor adds PIPELINE_*).

    The job's parameter values come last and win: a value given with
    --param reaches the task as data in its environment, never through a
    command line, so shell metacharacters in it are harmless.
    """
    env = {k: _resolve(v, secrets) for k, v in pipeline.envs}
    env.update({k: _resolve(v, secrets) for k, v in task.envs})
    values = parameters.environment(pipeline.params)
    warnings = tuple(
        f"task '{task.name}': {name} is set to the pipeline data folder path, not to the value in the pipeline file"
        for name in env
        if _RESERVED.match(name)
    ) + tuple(
        f"task '{task.name}': {name} is set to the parameter's value, not to the value in the pipeline file"
        for name in env
        if name in values
    )
    env.update(values)
    command = _resolve(task.command, secrets) if task.command is not None else None
    return TaskEnvironment(env, command, warnings)


def _resolve(text: str, secrets: Mapping[str, str]) -> str:
    return _REFERENCE.sub(lambda m: secrets[m.group(1)], text)


def secrets_from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    return {k[len(SECRET_ENV_PREFIX) :]: v for k, v in environ.items() if k.startswith(SECRET_ENV_PREFIX)}


def parse_dotenv(text: str, file: str) -> dict[str, str]:
    """NAME=value lines; blank lines and # comments skipped; optional quotes; `export ` allowed."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise SecretsError(f"{file}:{number}: expected NAME=value (NAME of letters, digits and '_')")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def masks(secrets: Mapping[str, str], used: Iterable[str]) -> tuple[str, ...]:
    """The values to hide: every provided secret the pipeline uses (empty values hide nothing)."""
    return tuple(sorted({secrets[n] for n in used if secrets.get(n)}, key=lambda v: (-len(v), v)))
