"""The batch session one attempt asks the manager for. Pure.

The task's image, resources (cpu, mem, the accelerators; shmem as a resource
option), cluster mode and size, scaling group, project (group), its own
`vfolder:alias` mounts, the pipeline data folder (mounted at
datafolder.FOLDER_MOUNT), and environ = the task's variables (secrets
resolved) + PIPELINE_* at FastTrack's paths + FTG_TASK_COMMAND (the command,
which layout.py's startup script runs); the script reads each input from
the job `spec.input_jobs` names and writes the outputs' manifest when
`spec.manifest` asks for it.
"""

from __future__ import annotations

from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.core.pipeline.units import format_size
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec, session_name
from fasttrack_gitops.engine.executors.backendai import layout
from fasttrack_gitops.engine.executors.base import AttemptSpec


def session_spec(spec: AttemptSpec, folder: str, tree: str) -> SessionSpec:
    """The batch session for one attempt: the task's settings, the folders, the layout script."""
    task = spec.task
    mounts = [m.vfolder for m in task.mounts if m.vfolder != folder]
    mount_map = {m.vfolder: m.alias for m in task.mounts if m.alias and m.vfolder != folder}
    environ = {
        **spec.env,
        **datafolder.mounted_variables(len(spec.inputs)),
        layout.COMMAND_VARIABLE: task.command or "",
    }
    script = layout.startup_script(
        job_id=spec.job_id,
        task=task.name,
        dependencies=task.dependencies,
        attempt=spec.number,
        tree=tree,
        input_jobs=spec.input_jobs,
        manifest=spec.manifest,
    )
    return SessionSpec(
        name=session_name(spec.job_id, task.name, spec.number),
        image=task.image or "",
        startup_command=script,
        group=task.project,
        scaling_group=task.scaling_group,
        resources=resources(task),
        resource_opts={"shmem": format_size(task.resources.shmem)} if task.resources.shmem else {},
        cluster_mode=task.cluster_mode,
        cluster_size=task.cluster_size,
        environ=environ,
        mounts=(*mounts, folder),
        mount_map={**mount_map, folder: datafolder.FOLDER_MOUNT},
    )


def resources(task: Task) -> dict[str, int | float | str]:
    """cpu, mem and the accelerators (cuda.shares, cuda.device, ...) as the manager takes them."""
    found: dict[str, int | float | str] = {"cpu": _number(task.resources.cpu), "mem": format_size(task.resources.mem)}
    found.update({slot: _number(amount) for slot, amount in task.resources.accelerators if amount})
    return found


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
