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

An input is read where its outputs are: `input_jobs` names, for each
dependency, the job whose folder holds them, this job's or, for a dependency
the task cache reused, the earlier job that made them (in the same vfolder,
so nothing is copied). Another job's outputs must be there: a setup that
finds them gone fails rather than hand the task an empty input.

With `manifest`, the session lists its outputs once the command exited 0
(core/cache.py's `<sha256> <size> <path>` lines, sorted by path bytes) into
`tasks/<task>/manifest.txt` beside them, with sh, find, sort, sha256sum and
stat only (any image has them; the runner never downloads the outputs to
hash them). It is written under a temporary name and renamed into place, so
a reader finds a whole manifest or none. Outputs that cannot be cached (a
symlink, a FIFO, socket or device, a name with a line break, which the
line format cannot hold) get a single `! <reason>` line instead, which the
index reports as the reason (executors/backendai/cache.py). The task's exit
status is the command's either way.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from fasttrack_gitops.engine import datafolder

CODE_MARKER = ".ftg-complete"
COMMAND_VARIABLE = "FTG_TASK_COMMAND"
CODE_COPY = ".ftg-code"  # the task's working directory, under the kernel's own
SETUP_FAILED = 125


def startup_script(
    *,
    job_id: str,
    task: str,
    dependencies: Sequence[str],
    attempt: int,
    tree: str,
    input_jobs: Sequence[str] = (),
    manifest: bool = False,
) -> str:
    """The batch session's startup command (POSIX sh); see the module doc. `input_jobs`: the job whose folder
    holds each dependency's outputs, in input order (empty: this job for all)."""
    q = shlex.quote
    datafolder.component(task, "task")
    sources = _input_jobs(job_id, dependencies, input_jobs)
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
        "ftg_out=$ftg_job/" + q(datafolder.task_outputs(task)),
    ]
    if int(attempt) > 1:  # a retry starts from an empty outputs folder, as with the local executor
        lines.append('rm -rf -- "$ftg_out"')
    lines += [
        f'mkdir -p -- "$ftg_out" {vfroot} || ftg_fail "cannot create $ftg_out"',
        f'ftg_link "$ftg_out" {q(datafolder.OUTPUTS)}; {datafolder.OUTPUTS_VARIABLE}=$ftg_path',
        f'ftg_link "$ftg_out" {q(datafolder.SEED_OUTPUT)}',
        f"ftg_link {vfroot} {q(datafolder.VFROOT)}; {datafolder.VFROOT_VARIABLE}=$ftg_path",
    ]
    if manifest:  # an earlier attempt's manifest must not stand for this one's outputs
        lines += [
            "ftg_manifest=$ftg_job/" + q(datafolder.task_manifest(task)),
            'rm -f -- "$ftg_manifest" || ftg_fail "cannot remove the manifest of an earlier attempt: $ftg_manifest"',
        ]
    exported = [datafolder.OUTPUTS_VARIABLE, datafolder.VFROOT_VARIABLE]
    for k, (dependency, source_job) in enumerate(zip(dependencies, sources, strict=True), start=1):
        outputs = q(datafolder.task_outputs(datafolder.component(dependency, "dependency")))
        if source_job == job_id:  # a skipped dependency of this job left no folder: its input is empty
            lines.append(f'ftg_in=$ftg_job/{outputs}; mkdir -p -- "$ftg_in" || ftg_fail "cannot create $ftg_in"')
        else:  # reused from the job that made them: they must be there, never made up empty
            gone = f"the outputs of '{dependency}' reused from job {source_job} are gone: "
            lines.append(
                f"ftg_in=$ftg_root/{q(datafolder.job_in_folder(source_job))}/{outputs}; "
                f'[ -d "$ftg_in" ] || ftg_fail {q(gone)}"$ftg_in"'
            )
        lines.append(f'ftg_link "$ftg_in" {q(datafolder.input_mount(k))}; {datafolder.input_variable(k)}=$ftg_path')
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
    ]
    if not manifest:
        lines.append('exec /bin/sh -c "$ftg_command"')
    else:  # the shell stays to list the outputs, and exits with the command's status
        lines += [
            MANIFEST_FUNCTIONS,
            '/bin/sh -c "$ftg_command"',
            "ftg_status=$?",
            'if [ "$ftg_status" -eq 0 ]; then ftg_write_manifest; fi',
            'exit "$ftg_status"',
        ]
    return "\n".join(lines) + "\n"


# ftg_list FOLDER: the manifest of FOLDER's files on stdout, or one `! <reason>` line when they cannot be cached.
# Names with a line break (what Python's splitlines splits on: \n \r \v \f \x1c-\x1e, U+0085, U+2028, U+2029)
# are looked for first, so every path printed after that is one line; a printed path shows breaks as '?'.
# The files are hashed one by one (`sha256sum < file`): sha256sum escapes names with a backslash in its own
# output, so the path printed is the one `find` gave. ftg_write_manifest: ftg_list into a temporary file renamed
# to $ftg_manifest; when it fails, a line in the log and no manifest (the outputs are then not cached).
MANIFEST_FUNCTIONS = r"""ftg_list() {
  if [ -L "$1" ]; then echo "! outputs is a symbolic link; the outputs are not cached"; return 0; fi
  mkdir -p -- "$1" && cd "$1" || return 1
  ftg_b=$(printf '\n\r\013\014\034\035\036x'); ftg_b=${ftg_b%x}
  ftg_bad=$(LC_ALL=C find . \( -name "*[$ftg_b]*" -o -name "*$(printf '\302\205')*" \
    -o -name "*$(printf '\342\200\250')*" -o -name "*$(printf '\342\200\251')*" \) -exec printf '%s\000' {} + \
    | LC_ALL=C tr '\000\n\r\013\014\034\035\036' '\n???????' | head -n 1)
  if [ -n "$ftg_bad" ]; then
    printf '! outputs/%s has a name with a line break; the outputs are not cached\n' "${ftg_bad#./}"; return 0
  fi
  ftg_bad=$(LC_ALL=C find . ! -type f ! -type d -exec printf '%s\000' {} + | LC_ALL=C tr '\000' '\n' | head -n 1)
  if [ -n "$ftg_bad" ]; then
    if [ -L "$ftg_bad" ]; then ftg_why="is a symbolic link"
    elif [ -p "$ftg_bad" ]; then ftg_why="is a FIFO"
    elif [ -S "$ftg_bad" ]; then ftg_why="is a socket"
    elif [ -b "$ftg_bad" ] || [ -c "$ftg_bad" ]; then ftg_why="is a device"
    else ftg_why="is not a regular file"; fi
    printf '! outputs/%s %s; the outputs are not cached\n' "${ftg_bad#./}" "$ftg_why"; return 0
  fi
  LC_ALL=C find . -type f -print > "$ftg_manifest.files" || return 1
  LC_ALL=C sort -- "$ftg_manifest.files" | while IFS= read -r ftg_f; do
    ftg_h=$(sha256sum < "$ftg_f") && ftg_s=$(stat -c %s -- "$ftg_f") || exit 1
    printf '%s %s %s\n' "${ftg_h%% *}" "$ftg_s" "${ftg_f#./}"
  done
}
ftg_write_manifest() {
  if ( ftg_list "$ftg_out" ) > "$ftg_manifest.tmp" && mv -f -- "$ftg_manifest.tmp" "$ftg_manifest"; then
    rm -f -- "$ftg_manifest.files"
  else
    rm -f -- "$ftg_manifest.tmp" "$ftg_manifest.files"
    printf 'fasttrack-gitops: %s\n' "cannot write the outputs' manifest $ftg_manifest; they are not cached" >&2
  fi
}"""


def _input_jobs(job_id: str, dependencies: Sequence[str], input_jobs: Sequence[str]) -> tuple[str, ...]:
    """The job whose folder holds each dependency's outputs; ValueError when they do not pair up."""
    if not input_jobs:
        return tuple(job_id for _ in dependencies)
    if len(input_jobs) != len(dependencies):
        raise ValueError(
            f"{len(input_jobs)} input jobs for {len(dependencies)} dependencies: each dependency needs the job "
            "whose folder holds its outputs"
        )
    return tuple(datafolder.component(job, "input job") for job in input_jobs)


def code_marker(executables: Sequence[str]) -> bytes:
    """The marker's text: the executable files (relative paths), one a line; names with a newline are left out."""
    return "".join(f"{path}\n" for path in sorted(executables) if "\n" not in path and "\r" not in path).encode()
