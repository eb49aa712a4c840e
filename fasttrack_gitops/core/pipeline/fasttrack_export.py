"""The round trip with the FastTrack GUI: a repository pipeline as a file FastTrack imports, and back. Pure.

`export` writes the pipeline in the shape of the target cluster's release,
as the two real exports show it (tests/data/fasttrack-examples):

| release     | ownership                      | a plain task    | a service task |
|-------------|--------------------------------|-----------------|----------------|
| before 26.4 | `domain_name`, `scope: personal` | `Custom Task`   | `serving`      |
| 26.4 on     | `domain`, `scope: user`          | `custom`        | `deployment`   |

Everything FastTrack does not know (code, timeout, cache, metrics, plots,
artifacts, a service's model folder, on, concurrency, notify) moves under
one top-level key, `x-fasttrack-gitops`, with what the shape change
replaced, so nothing is lost. With ship_code a task with a `code:` folder
gets a first command line that enters the folder's copy in the pipeline
data folder, `/pipeline/vfroot/fasttrack-gitops/code/<tree id>`, recorded
there too.

`from_export` undoes all of it: a file `export` wrote becomes the
repository file it came from; a file made in the GUI becomes one in the
shape it has. `secret_literals` then turns secret-looking literal values
(FT202) into `${{ secrets.NAME }}` references and names them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.pipeline.model import GITOPS_PIPELINE_KEYS, GITOPS_TASK_KEYS, Pipeline, to_fasttrack
from fasttrack_gitops.core.pipeline.semantics import literal_secret

GITOPS_KEY = "x-fasttrack-gitops"
GITOPS_SERVICE_KEYS = ("model",)  # the model folder: the GUI picks it in a dialog, exports do not carry it
CODE_FOLDER = "fasttrack-gitops/code"  # where --ship-code puts each code tree (by its id) in the pipeline data folder
CODE_ROOT = f"/pipeline/vfroot/{CODE_FOLDER}"  # the same, as a task of a FastTrack pipeline sees it
_RELEASE = re.compile(r"(\d+)\.(\d+)")


class NotAnExport(UsageError):
    """The file is not a FastTrack pipeline export (the message says what is missing)."""


@dataclass(frozen=True)
class Shape:
    """What a FastTrack release calls things."""

    domain_key: str  # "domain" or "domain_name"
    own_scope: str  # the scope of a user's own pipeline: "user" or "personal"
    custom_type: str  # "custom" or "Custom Task"
    service_type: str  # "deployment" or "serving"


NEW = Shape("domain", "user", "custom", "deployment")  # 26.4.4rc6 (docs-rag.yaml)
OLD = Shape("domain_name", "personal", "Custom Task", "serving")  # 25.6.5.post2 (torchtune-llama-3.1-8b.yaml)
_CUSTOM_TYPES = ("custom", "Custom Task")
_SERVICE_TYPES = ("deployment", "serving")
_DOMAIN_KEYS = ("domain", "domain_name")
_OWN_SCOPES = ("user", "personal")


def shape_of(version: str) -> Shape:
    """The shape a release's import expects: 26.4 and later the new words, earlier the old; unreadable: new."""
    m = _RELEASE.match(str(version).strip())
    if m is None:
        return NEW
    return NEW if (int(m.group(1)), int(m.group(2))) >= (26, 4) else OLD


def export(
    pipeline: Pipeline, *, target_version: str | None = None, code_trees: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The pipeline as a FastTrack export for the target release (default: the version the file names).

    code_trees (task -> tree id): ship each task's code folder; its command
    first enters the tree's copy under CODE_ROOT.
    """
    full = to_fasttrack(pipeline, include_gitops=True)
    shape = shape_of(target_version or pipeline.version)
    kept: dict[str, Any] = {key: full.pop(key) for key in GITOPS_PIPELINE_KEYS if key in full}
    replaced: dict[str, Any] = {}
    if target_version is not None and str(target_version) != full["version"]:
        replaced["version"] = full["version"]
        full["version"] = str(target_version)
    ownership = _ownership(full.get("ownership") or {}, shape)
    if "ownership" in full and ownership != full["ownership"]:
        replaced["ownership"] = full["ownership"]
        full["ownership"] = ownership
    tasks_kept: dict[str, Any] = {}
    for task in full["tasks"]:
        extra: dict[str, Any] = {key: task.pop(key) for key in GITOPS_TASK_KEYS if key in task}
        service = task.get("service")
        if isinstance(service, dict):
            hidden = {key: service.pop(key) for key in GITOPS_SERVICE_KEYS if key in service}
            if hidden:
                extra["service"] = hidden
        written = _task_type(task["type"], shape)
        if written != task["type"]:
            extra["type"] = task["type"]
            task["type"] = written
        tree = (code_trees or {}).get(task["name"]) if extra.get("code") else None
        if tree is not None and task.get("command") is not None:
            prefix = ship_prefix(tree)
            task["command"] = prefix + task["command"]
            extra["shipped"] = prefix
        if extra:
            tasks_kept[task["name"]] = extra
    if tasks_kept:
        kept["tasks"] = tasks_kept
    if replaced:
        kept["replaced"] = replaced
    if kept:
        full[GITOPS_KEY] = kept
    return full


def ship_prefix(tree: str) -> str:
    """The line put before a shipped task's command: enter its code, or fail saying where it should be."""
    folder = f"{CODE_ROOT}/{tree}"
    return f"cd {folder} || {{ echo 'fasttrack-gitops: upload the code to {folder} first' >&2; exit 1; }}\n"


def from_export(data: Any, *, file: str = "the file") -> dict[str, Any]:
    """A FastTrack export (a parsed YAML document) as a repository pipeline mapping: what export added undone.

    NotAnExport when the document is not one: a mapping with a version, a
    name and a list of named tasks.
    """
    _check_export(data, file)
    out = copy.deepcopy(dict(data))
    kept = out.pop(GITOPS_KEY, None) or {}
    if not isinstance(kept, dict):
        raise NotAnExport(f"{file}: {GITOPS_KEY} is not a mapping; it holds what `fasttrack-gitops export` moved")
    replaced, tasks_kept = kept.get("replaced") or {}, kept.get("tasks") or {}
    if not (isinstance(replaced, dict) and isinstance(tasks_kept, dict)) or any(
        not isinstance(extra, dict) for extra in tasks_kept.values() if extra
    ):
        raise NotAnExport(
            f"{file}: {GITOPS_KEY} is not as `fasttrack-gitops export` writes it (its replaced, tasks and each task "
            "are mappings); export the pipeline again"
        )
    for key in ("version", "ownership"):
        if key in replaced:
            out[key] = replaced[key]
    for task in out["tasks"]:
        extra = dict(tasks_kept.get(task["name"]) or {})
        prefix = extra.pop("shipped", None)
        if (
            isinstance(prefix, str)
            and prefix
            and isinstance(task.get("command"), str)
            and task["command"].startswith(prefix)
        ):
            task["command"] = task["command"][len(prefix) :]
        if "type" in extra:
            task["type"] = extra.pop("type")
        hidden = extra.pop("service", None)
        if isinstance(hidden, dict) and isinstance(task.get("service"), dict):
            task["service"].update(hidden)
        task.update({key: value for key, value in extra.items() if key in GITOPS_TASK_KEYS})
    for key in GITOPS_PIPELINE_KEYS:
        if key in kept:
            out[key] = kept[key]
    return out


def secret_literals(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Secret-looking literal env values (FT202) replaced by `${{ secrets.NAME }}`; the places replaced.

    The values themselves are dropped here: they must reach the secrets
    store (FTG_SECRET_NAME, --secrets-file, the daemon's environment), never
    the repository.
    """
    out = copy.deepcopy(data)
    places: list[str] = []
    scopes: list[tuple[str, Any]] = [("environment.envs", (out.get("environment") or {}).get("envs"))]
    scopes += [(f"task {t.get('name')}", (t.get("environment") or {}).get("envs")) for t in out.get("tasks") or ()]
    for where, envs in scopes:
        if not isinstance(envs, dict):
            continue
        for name, value in envs.items():
            if literal_secret(name, value):
                envs[name] = f"${{{{ secrets.{name} }}}}"
                places.append(f"{name} ({where})")
    return out, places


def _check_export(data: Any, file: str) -> None:
    if not isinstance(data, dict):
        raise NotAnExport(f"{file} is not a FastTrack pipeline export: its top level is not a mapping")
    missing = [key for key in ("version", "name", "tasks") if key not in data]
    if missing:
        raise NotAnExport(
            f"{file} is not a FastTrack pipeline export: it has no {', '.join(missing)} "
            "(export one from FastTrack's pipeline page, or write a pipeline file by hand)"
        )
    tasks = data["tasks"]
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tasks):
        raise NotAnExport(f"{file} is not a FastTrack pipeline export: 'tasks' is not a list of tasks with names")


def _ownership(ownership: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in ownership.items():
        if key in _DOMAIN_KEYS:
            out[shape.domain_key] = value
        elif key == "scope" and value in _OWN_SCOPES:
            out[key] = shape.own_scope
        else:
            out[key] = value
    return out


def _task_type(kind: str, shape: Shape) -> str:
    if kind in _CUSTOM_TYPES:
        return shape.custom_type
    if kind in _SERVICE_TYPES:
        return shape.service_type
    return kind


def to_yaml(data: Mapping[str, Any]) -> str:
    """YAML as people write pipelines: keys in order, multi-line commands as `|` blocks, unicode kept."""
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(c in value for c in "\r\t") and value == value.rstrip(" "):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _text)
