"""How the `backendai` executor lays out the pipeline data folder in a session: its startup script. Pure.

The folder's names and paths (its vfolder name, jobs/<job id>/..., code/<tree id>/,
where sessions mount it) are datafolder.py's; this module adds what only this
executor needs: the marker that says a code tree was uploaded whole, and the
script. In the folder, `code/<tree id>/.ftg-complete` (CODE_MARKER) is written
last, when the tree is complete; it lists the executable files.

Every session mounts the whole folder at datafolder.FOLDER_MOUNT
(/pipeline/ftg-folder) and its startup command (`startup_script`) builds
FastTrack's layout from it: `/pipeline/outputs`, `/pipeline/output`,
`/pipeline/input1..N` (the outputs of the task's dependencies, in the order of
its `dependencies` list) and `/pipeline/vfroot` become symlinks into the folder
where the container lets us write under /pipeline, and the PIPELINE_* variables
always name a path that works: the /pipeline one when its link was made, else
the real folder. When the mount path itself is not reachable (the realstack
agent without a sandbox runs the command on the host and links the folder at
`work/.mounts/ftg-folder`), the script finds the folder through
`$BACKENDAI_VFOLDER_FTG_FOLDER` and never touches the host's /pipeline.
The code is copied into the kernel's own working directory (`./.ftg-code`,
so a task that writes where it runs never changes the shared tree), its
executable bits restored from the marker, and the command runs there with
`/bin/sh -c`, read from the FTG_TASK_COMMAND variable: the command (where
resolved secrets may be) never enters the script text, and every name or
path that does is shlex-quoted. A setup step that fails exits SETUP_FAILED
(125) with a `fasttrack-gitops:` line on stderr, which lands in the log.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from fasttrack_gitops.engine import datafolder

CODE_MARKER = ".ftg-complete"
COMMAND_VARIABLE = "FTG_TASK_COMMAND"
CODE_COPY = ".ftg-code"  # the task's working directory, under the kernel's own
SETUP_FAILED = 125


def startup_script(*, job_id: str, task: str, dependencies: Sequence[str], attempt: int, tree: str) -> str:
    """The batch session's startup command (POSIX sh); see the module doc."""
    q = shlex.quote
    job = "$ftg_root/" + q(datafolder.job_in_folder(job_id))
    vfroot = f'"$ftg_job/{datafolder.JOB_VFROOT}"'
    lines = [
        f"# fasttrack-gitops: FastTrack's /pipeline layout, then the task's command (attempt {int(attempt)})",
        f'ftg_fail() {{ printf "fasttrack-gitops: %s\\n" "$*" >&2; exit {SETUP_FAILED}; }}',
        f"ftg_root={q(datafolder.FOLDER_MOUNT)}",
        "ftg_links=1",
        'if [ ! -d "$ftg_root" ]; then',
        f"  ftg_root=${{{datafolder.FOLDER_VARIABLE}:-}}",
        "  ftg_links=0",
        f'  [ -n "$ftg_root" ] && [ -d "$ftg_root" ] || ftg_fail {q(f"the pipeline data folder is mounted neither at {datafolder.FOLDER_MOUNT} nor at ${datafolder.FOLDER_VARIABLE}")}',
        "fi",
        # Link $2 to $1 when we own /pipeline and $2 is free; ftg_path is the path to use either way.
        (
            'ftg_link() { ftg_path=$1; if [ "$ftg_links" = 1 ] && [ ! -e "$2" ] && [ ! -L "$2" ] '
            '&& ln -s -- "$1" "$2" 2>/dev/null; then ftg_path=$2; fi; }'
        ),
        f"ftg_job={job}",
        "ftg_out=$ftg_job/" + q(datafolder.task_outputs(datafolder.component(task, "task"))),
    ]
    if int(attempt) > 1:  # a retry starts from an empty outputs folder, as with the local executor
        lines.append('rm -rf -- "$ftg_out"')
    lines += [
        f'mkdir -p -- "$ftg_out" {vfroot} || ftg_fail "cannot create $ftg_out"',
        f'ftg_link "$ftg_out" {q(datafolder.OUTPUTS)}; {datafolder.OUTPUTS_VARIABLE}=$ftg_path',
        f'ftg_link "$ftg_out" {q(datafolder.SEED_OUTPUT)}',
        f"ftg_link {vfroot} {q(datafolder.VFROOT)}; {datafolder.VFROOT_VARIABLE}=$ftg_path",
    ]
    exported = [datafolder.OUTPUTS_VARIABLE, datafolder.VFROOT_VARIABLE]
    for k, dependency in enumerate(dependencies, start=1):
        source = "$ftg_job/" + q(datafolder.task_outputs(datafolder.component(dependency, "dependency")))
        lines += [
            f'ftg_in={source}; mkdir -p -- "$ftg_in" || ftg_fail "cannot create $ftg_in"',  # a skipped dependency: empty
            f'ftg_link "$ftg_in" {q(datafolder.input_mount(k))}; {datafolder.input_variable(k)}=$ftg_path',
        ]
        exported.append(datafolder.input_variable(k))
    if dependencies:
        lines.append(f"{datafolder.FIRST_INPUT_VARIABLE}=${datafolder.input_variable(1)}")
        exported.append(datafolder.FIRST_INPUT_VARIABLE)
    lines += [
        "export " + " ".join(exported),
        "ftg_code=$ftg_root/" + q(datafolder.code_in_folder(tree)),
        f'[ -f "$ftg_code/{CODE_MARKER}" ] || ftg_fail "the task\'s code is not in the pipeline data folder: $ftg_code"',
        f"ftg_work=$PWD/{CODE_COPY}",
        (
            'rm -rf -- "$ftg_work" && mkdir -p -- "$ftg_work" && cp -R -- "$ftg_code/." "$ftg_work/" '
            '|| ftg_fail "cannot copy the task\'s code to $ftg_work"'
        ),
        'cd "$ftg_work" || ftg_fail "cannot enter $ftg_work"',
        f'while IFS= read -r ftg_x; do [ -z "$ftg_x" ] || chmod +x -- "./$ftg_x" 2>/dev/null; done < {CODE_MARKER}',
        f"rm -f -- {CODE_MARKER}",
        f"ftg_command=${COMMAND_VARIABLE}; unset {COMMAND_VARIABLE}",  # the rest is not exported: exec drops it
        'exec /bin/sh -c "$ftg_command"',
    ]
    return "\n".join(lines) + "\n"


def code_marker(executables: Sequence[str]) -> bytes:
    """The marker's text: the executable files (relative paths), one a line; names with a newline are left out."""
    return "".join(f"{path}\n" for path in sorted(executables) if "\n" not in path and "\r" not in path).encode()
