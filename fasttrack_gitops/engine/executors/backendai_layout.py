"""Where the `backendai` executor keeps a pipeline's files, and the script that lays them out in a session. Pure.

The pipeline data folder is one vfolder per (repository, pipeline), named by
`folder_name`. Inside it (relative paths):

    code/<tree id>/                     a task's code, uploaded once per git tree id;
    code/<tree id>/.ftg-complete        written last: the tree is complete (it lists the executable files)
    jobs/<job id>/tasks/<task>/outputs  a task instance's /pipeline/outputs (and /pipeline/output)
    jobs/<job id>/vfroot                the job's shared /pipeline/vfroot

Every session mounts the whole folder at FOLDER_MOUNT (/pipeline/ftg-folder)
and its startup command (`startup_script`) builds FastTrack's layout from it:
`/pipeline/outputs`, `/pipeline/output`, `/pipeline/input1..N` (the outputs of
the task's dependencies, in the order of its `dependencies` list) and
`/pipeline/vfroot` become symlinks into the folder where the container lets
us write under /pipeline, and the PIPELINE_* variables always name a path
that works: the /pipeline one when its link was made, else the real folder.
When the mount path itself is not reachable (the realstack agent without a
sandbox runs the command on the host and links the folder at
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

import hashlib
import json
import re
import shlex
import unicodedata
from collections.abc import Sequence

from fasttrack_gitops.engine.executors.base import PIPELINE_ROOT

FOLDER_MOUNT = f"{PIPELINE_ROOT}/ftg-folder"  # where every session mounts the pipeline data folder
FOLDER_VARIABLE = "BACKENDAI_VFOLDER_FTG_FOLDER"  # where the agent says it is reachable (no sandbox)
CODE_MARKER = ".ftg-complete"
COMMAND_VARIABLE = "FTG_TASK_COMMAND"
CODE_COPY = ".ftg-code"  # the task's working directory, under the kernel's own
SETUP_FAILED = 125
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


def outputs_path(job_id: str, task: str) -> str:
    return f"jobs/{component(job_id, 'job id')}/tasks/{component(task, 'task')}/outputs"


def vfroot_path(job_id: str) -> str:
    return f"jobs/{component(job_id, 'job id')}/vfroot"


def code_path(tree: str) -> str:
    return f"code/{component(tree, 'code tree')}"


def startup_script(*, job_id: str, task: str, dependencies: Sequence[str], attempt: int, tree: str) -> str:
    """The batch session's startup command (POSIX sh); see the module doc."""
    q = shlex.quote
    job = "$ftg_root/" + q(f"jobs/{component(job_id, 'job id')}")
    lines = [
        f"# fasttrack-gitops: FastTrack's /pipeline layout, then the task's command (attempt {int(attempt)})",
        f'ftg_fail() {{ printf "fasttrack-gitops: %s\\n" "$*" >&2; exit {SETUP_FAILED}; }}',
        f"ftg_root={q(FOLDER_MOUNT)}",
        "ftg_links=1",
        'if [ ! -d "$ftg_root" ]; then',
        f"  ftg_root=${{{FOLDER_VARIABLE}:-}}",
        "  ftg_links=0",
        f'  [ -n "$ftg_root" ] && [ -d "$ftg_root" ] || ftg_fail {q(f"the pipeline data folder is mounted neither at {FOLDER_MOUNT} nor at ${FOLDER_VARIABLE}")}',
        "fi",
        # Link $2 to $1 when we own /pipeline and $2 is free; ftg_path is the path to use either way.
        (
            'ftg_link() { ftg_path=$1; if [ "$ftg_links" = 1 ] && [ ! -e "$2" ] && [ ! -L "$2" ] '
            '&& ln -s -- "$1" "$2" 2>/dev/null; then ftg_path=$2; fi; }'
        ),
        f"ftg_job={job}",
        "ftg_out=$ftg_job/" + q(f"tasks/{component(task, 'task')}/outputs"),
    ]
    if int(attempt) > 1:  # a retry starts from an empty outputs folder, as with the local executor
        lines.append('rm -rf -- "$ftg_out"')
    lines += [
        'mkdir -p -- "$ftg_out" "$ftg_job/vfroot" || ftg_fail "cannot create $ftg_out"',
        f'ftg_link "$ftg_out" {q(PIPELINE_ROOT + "/outputs")}; PIPELINE_OUTPUT_ROOT=$ftg_path',
        f'ftg_link "$ftg_out" {q(PIPELINE_ROOT + "/output")}',
        f'ftg_link "$ftg_job/vfroot" {q(PIPELINE_ROOT + "/vfroot")}; PIPELINE_VFROOT=$ftg_path',
    ]
    exported = ["PIPELINE_OUTPUT_ROOT", "PIPELINE_VFROOT"]
    for k, dependency in enumerate(dependencies, start=1):
        source = "$ftg_job/" + q(f"tasks/{component(dependency, 'dependency')}/outputs")
        lines += [
            f'ftg_in={source}; mkdir -p -- "$ftg_in" || ftg_fail "cannot create $ftg_in"',  # a skipped dependency: empty
            f'ftg_link "$ftg_in" {q(f"{PIPELINE_ROOT}/input{k}")}; PIPELINE_INPUT{k}=$ftg_path',
        ]
        exported.append(f"PIPELINE_INPUT{k}")
    if dependencies:
        lines.append("PIPELINE_INPUT_ROOT=$PIPELINE_INPUT1")
        exported.append("PIPELINE_INPUT_ROOT")
    lines += [
        "export " + " ".join(exported),
        "ftg_code=$ftg_root/" + q(code_path(tree)),
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


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.]+", "-", ascii_text).strip("._-")
