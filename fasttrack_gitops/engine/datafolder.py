"""The pipeline data folder: every path and name of it, on this machine and in Backend.AI. Pure, but `copy_outputs`.

FastTrack mounts the pipeline data folder at /pipeline in every task:

    /pipeline/outputs     the task instance's outputs (also /pipeline/output, the seed's spelling)
    /pipeline/input<k>    the outputs of the k-th task of its `dependencies` list, k from 1
    /pipeline/vfroot      the folder every task of the job shares

and names them in PIPELINE_OUTPUT_ROOT, PIPELINE_INPUT<k> (PIPELINE_INPUT_ROOT: the first) and
PIPELINE_VFROOT (`variables`). Behind those paths each job has a folder, laid out alike wherever it is:

    tasks/<task>/outputs  a task instance's outputs
    vfroot                the job's shared folder

On this machine a job's folder is <state dir>/data/<job id>; it also holds work/<tree id>, the job's
copy of a task's code (its working directory), copied from <state dir>/trees/<tree id>, where each
code tree is materialised once. In Backend.AI the pipeline data folder is one vfolder per (repository,
pipeline), named by `folder_name`, holding jobs/<job id>/ (the job's folder) and code/<tree id>/ (a
task's code, uploaded once); every session mounts it at FOLDER_MOUNT and its startup script
(executors/backendai/layout.py) links the /pipeline paths into it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import unicodedata
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

# -- inside a task: where FastTrack mounts the folders, and the variables that name them

ROOT = "/pipeline"
OUTPUTS = f"{ROOT}/outputs"
SEED_OUTPUT = f"{ROOT}/output"  # the seed's spelling of OUTPUTS: the same folder
VFROOT = f"{ROOT}/vfroot"

OUTPUTS_VARIABLE = "PIPELINE_OUTPUT_ROOT"
VFROOT_VARIABLE = "PIPELINE_VFROOT"
FIRST_INPUT_VARIABLE = "PIPELINE_INPUT_ROOT"  # the first input, when the task has dependencies
# Every name `variables` sets; an executor never passes its own process's values of them on.
VARIABLE = re.compile(r"PIPELINE_(OUTPUT_ROOT|INPUT_ROOT|INPUT[0-9]+|VFROOT)")


def input_mount(k: int) -> str:
    """Where the outputs of the k-th dependency (from 1) are mounted."""
    return f"{ROOT}/input{int(k)}"


def input_variable(k: int) -> str:
    return f"PIPELINE_INPUT{int(k)}"


def variables(outputs: str | PathLike, inputs: Sequence[str | PathLike], vfroot: str | PathLike) -> dict[str, str]:
    """The PIPELINE_* variables for a task whose folders are these (inputs in dependency order), as absolute paths."""
    env = {OUTPUTS_VARIABLE: _absolute(outputs), VFROOT_VARIABLE: _absolute(vfroot)}
    for k, path in enumerate(inputs, start=1):
        env[input_variable(k)] = _absolute(path)
    if inputs:
        env[FIRST_INPUT_VARIABLE] = env[input_variable(1)]
    return env


def mounted_variables(dependencies: int) -> dict[str, str]:
    """The PIPELINE_* variables where FastTrack mounts the folders, for a task with that many dependencies."""
    return variables(OUTPUTS, [input_mount(k) for k in range(1, dependencies + 1)], VFROOT)


def mounts(outputs: Path, inputs: Sequence[Path], vfroot: Path) -> list[tuple[Path, str]]:
    """(folder, where FastTrack mounts it) for every folder under /pipeline; inputs in dependency order.

    The outputs folder appears twice: at OUTPUTS (FastTrack 2) and at SEED_OUTPUT.
    """
    found = [(outputs, OUTPUTS), (outputs, SEED_OUTPUT)]
    found += [(path, input_mount(k)) for k, path in enumerate(inputs, start=1)]
    found.append((vfroot, VFROOT))
    return found


# -- a job's folder (relative paths: the same on this machine and in the Backend.AI vfolder)


def task_outputs(task: str) -> str:
    """A task instance's outputs folder, relative to its job's folder."""
    return f"tasks/{task}/outputs"


JOB_VFROOT = "vfroot"  # the job's shared folder, relative to its job's folder


def task_manifest(task: str) -> str:
    """Where a Backend.AI session writes its outputs' manifest (core/cache.py), relative to its job's folder:
    beside the outputs, not in them."""
    return f"tasks/{task}/manifest.txt"


# -- the task cache (engine/cache), relative to the cache's folder: the same on this machine and in the vfolder

CACHE_IN_FOLDER = "cache"  # the cache's folder in the Backend.AI pipeline data folder


def cache_entry(key: str) -> str:
    """A cache entry: the outputs one cache key stands for."""
    return f"entries/{component(key, 'cache key')}.json"


def cache_latest(task: str) -> str:
    """The newest entry recorded for a task of this name."""
    return f"latest/{component(task, 'task')}.json"


# -- on this machine, under the state folder


def job_folder(state_dir: Path, job_id: str) -> Path:
    """A job's pipeline data folder: <state dir>/data/<job id>."""
    return state_dir / "data" / job_id


def outputs_folder(job: Path, task: str) -> Path:
    """A task instance's outputs (its /pipeline/outputs) in the job's folder `job`."""
    return job / task_outputs(task)


def vfroot_folder(job: Path) -> Path:
    """The job's /pipeline/vfroot in its folder `job`."""
    return job / JOB_VFROOT


def work_folder(job: Path, tree: str) -> Path:
    """The job's own copy of a code tree: the working directory of the tasks whose code it is."""
    return job / "work" / tree


def state_of_job_folder(job: Path) -> Path:
    """The state folder a job's folder (job_folder) is in."""
    return job.parent.parent


def model_folder(state_dir: Path, name: str) -> Path:
    """A model storage folder on this machine (a deployment task's `service.model`): <state dir>/models/<name>."""
    return state_dir / "models" / component(name, "model folder")


def tree_folder(state_dir: Path, tree: str) -> Path:
    """A code tree materialised once for every job: <state dir>/trees/<tree id>."""
    return state_dir / "trees" / tree


def cache_folder(state_dir: Path, repository: str, pipeline: str) -> Path:
    """The local task cache of one (repository, pipeline): <state dir>/cache/<folder name>."""
    return state_dir / "cache" / folder_name(repository, pipeline)


def copy_outputs(task: str, source_job: Path, target_job: Path) -> bool:
    """Copy a task's outputs from one job's folder into another's (a failed-only re-run reuses them).

    False when the task left no outputs folder (nothing is copied).
    """
    outputs = outputs_folder(source_job, task)
    if not outputs.is_dir():
        return False
    shutil.copytree(outputs, outputs_folder(target_job, task), symlinks=True, dirs_exist_ok=True)
    return True


# -- in Backend.AI: the vfolder, and where sessions find it

FOLDER_MOUNT = f"{ROOT}/ftg-folder"  # where every session mounts the pipeline data folder
FOLDER_VARIABLE = "BACKENDAI_VFOLDER_FTG_FOLDER"  # where the agent says it is reachable (no sandbox)
NAME_LIMIT = 64  # the manager's vfolder name column


def folder_name(repository: str, pipeline: str, *, prefix: str = "ftg") -> str:
    """The pipeline data folder's name: `ftg-<repository>-<pipeline>-<hash>`, at most 64 characters.

    The readable part is the repository's last path component and the
    pipeline's name, folded to ASCII letters, digits, `_`, `.` and `-` and
    cut to fit; a hash of the exact (repository, pipeline) always ends the
    name, so inputs that fold alike still get different folders. It never
    starts with a dot (dot-folders auto-mount into every session).
    """
    digest = hashlib.sha256(json.dumps([repository, pipeline]).encode()).hexdigest()[:10]
    base = re.split(r"[/\\:]", repository.rstrip("/\\"))[-1]
    base = base.removesuffix(".git")
    room = NAME_LIMIT - len(prefix) - len(digest) - 2
    readable = "-".join(part for part in (_slug(base)[:24], _slug(pipeline)) if part)[:room].strip("._-")
    return f"{prefix}-{readable}-{digest}" if readable else f"{prefix}-{digest}"


def component(name: str, what: str) -> str:
    """`name` when it can be one folder name in the vfolder; ValueError otherwise."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"{what} {name!r} cannot name a folder in the pipeline data folder")
    return name


def job_in_folder(job_id: str) -> str:
    """A job's folder in the vfolder."""
    return f"jobs/{component(job_id, 'job id')}"


def code_in_folder(tree: str) -> str:
    """A task's code in the vfolder, uploaded once per git tree id."""
    return f"code/{component(tree, 'code tree')}"


def _absolute(path: str | PathLike) -> str:
    text = str(path)
    return text if text.startswith("/") else str(Path(path).absolute())


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.]+", "-", ascii_text).strip("._-")
