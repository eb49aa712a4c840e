"""Diagnostics: what a check found, where, and the stable code that names it.

Every code the program can emit is listed in ``CODES`` with its severity and a
one-line summary; README.md documents the same table (a test keeps them in
step), so a code seen in CI can be looked up.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"

# Where a value sits in a loaded document: ("tasks", 1, "dependencies", 0).
NodePath = tuple[str | int, ...]

# code -> (severity, summary)
CODES: dict[str, tuple[str, str]] = {
    # The file itself: reading, encoding, YAML.
    "FT001": (ERROR, "the file cannot be read"),
    "FT002": (ERROR, "the file is larger than the size limit"),
    "FT003": (ERROR, "the file is not valid UTF-8"),
    "FT004": (ERROR, "YAML syntax error"),
    "FT005": (ERROR, "a tab character is used for indentation"),
    "FT006": (ERROR, "a mapping key appears twice"),
    "FT007": (ERROR, "the file is empty or its top level is not a mapping"),
    "FT008": (ERROR, "YAML aliases expand beyond the limit, or refer to themselves"),
    "FT009": (ERROR, "the document nests deeper than the limit"),
    "FT010": (ERROR, "a YAML feature that pipelines do not use (custom tag, complex key)"),
    # The schema.
    "FT100": (ERROR, "a value does not match the pipeline schema"),
    "FT101": (ERROR, "unknown key"),
    "FT102": (ERROR, "a required key is missing"),
    # Meaning.
    "FT103": (ERROR, "a task depends on a task that does not exist"),
    "FT104": (ERROR, "the dependencies form a cycle"),
    "FT105": (ERROR, "a task depends on itself"),
    "FT106": (ERROR, "two tasks have the same name"),
    "FT107": (ERROR, "a task name is not 1-40 characters of [A-Za-z0-9_.-] starting and ending with a letter or digit"),
    "FT108": (ERROR, "the pipeline has no tasks"),
    "FT109": (ERROR, "a resource value does not parse (cpu, mem, shmem, GPU)"),
    "FT110": (ERROR, "a ${{ ... }} expression is not a well-formed secrets.NAME reference"),
    "FT111": (ERROR, "a mount is not written vfolder or vfolder:alias"),
    "FT112": (ERROR, "a code directory leaves the repository"),
    "FT113": (ERROR, "a code directory does not exist in the repository"),
    "FT114": (ERROR, "a dependency is listed twice"),
    "FT115": (ERROR, "a duration (timeout, retry delay) does not parse"),
    "FT116": (ERROR, "a schedule is not a valid cron expression"),
    "FT117": (ERROR, "an unknown placeholder in concurrency.group"),
    "FT118": (ERROR, "a cache path is not a path inside the repository"),
    "FT119": (ERROR, "a metrics file, plot or artifact is not a path inside the task's outputs"),
    "FT120": (ERROR, "a plot is not a PNG, SVG or JPEG image by its name"),
    "FT121": (ERROR, "a metrics file is not .json, .yaml, .yml or .toml"),
    "FT122": (ERROR, "a metric rule has an empty name"),
    "FT123": (ERROR, "a metric gate has max_regression but its rule has no direction"),
    "FT130": (ERROR, "a service name breaks Backend.AI's name rule (4-24 characters of [A-Za-z0-9_-])"),
    "FT131": (ERROR, "a service asks for fewer than 1 or more than 64 replicas"),
    "FT132": (ERROR, "a model definition path is not a .yaml/.yml file inside the model folder"),
    "FT133": (ERROR, "a model folder name is not a vfolder name"),
    "FT134": (ERROR, "two deployment tasks name the same service"),
    "FT140": (ERROR, "a parameter's default or choice is not of its type, or the default is not one of its choices"),
    "FT141": (ERROR, "two parameters have the same name, ignoring case"),
    # Warnings: probably a slip.
    "FT201": (WARNING, "a GPU image on a task that requests no GPU"),
    "FT202": (WARNING, "a secret-looking environment variable has a literal value"),
    "FT203": (WARNING, "an unquoted yes/no/on/off value that YAML 1.1 reads as a boolean"),
    "FT204": (WARNING, "a memory size given as a bare small number (bytes)"),
    # The repository.
    "FT301": (ERROR, "no pipeline files found in the repository"),
    "FT302": (ERROR, "two pipeline files use the same pipeline name"),
    # The daemon's configuration (serve --config).
    "FT401": (ERROR, "a secret is written in the configuration instead of named by a *_env or *_file key"),
    "FT402": (ERROR, "the environment variable a *_env key names is not set"),
    "FT403": (ERROR, "the file a *_file key names cannot be read"),
    "FT404": (ERROR, "a ${VAR} in the configuration is not set in the environment, or is malformed"),
    "FT405": (ERROR, "two repositories have the same name"),
    "FT406": (ERROR, "listen is not host:port"),
    "FT407": (ERROR, "a repository url is not a local path or a file, http(s), ssh or scp-like git URL"),
    "FT408": (ERROR, "a repository with a remote url is set to be watched"),
    "FT409": (ERROR, "a duration or size in the configuration does not parse or is out of range"),
    "FT410": (ERROR, "settings that go together are missing, or settings that exclude each other are both given"),
    "FT411": (ERROR, "a URL in the configuration is not http:// or https://"),
    "FT412": (ERROR, "a repository name is not the owner/repo form its provider uses"),
}


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    column: int
    severity: str
    code: str
    message: str
    path: str = "$"

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnostic(code: str, message: str, file: str, line: int, column: int, path: str = "$") -> Diagnostic:
    """Make a diagnostic whose severity comes from the code table."""
    severity, _ = CODES[code]
    return Diagnostic(file=file, line=line, column=column, severity=severity, code=code, message=message, path=path)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.column, d.code)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def json_path(path: NodePath) -> str:
    """('tasks', 1, 'dependencies', 0) -> '$.tasks[1].dependencies[0]'."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            out.append(f"[{part!r}]")
    return "".join(out)


def _fold(word: str) -> str:
    return word.lower().replace("-", "_").replace(" ", "_")


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a candidate is close to word, else ''.

    Case and '-'/'_' differences count as close: `scaling_group` finds
    `scaling-group`, `Custom` finds `custom`.
    """
    candidates = [c for c in candidates if c != word]
    folded = {_fold(c): c for c in candidates}
    if _fold(word) in folded:
        return f" (did you mean '{folded[_fold(word)]}'?)"
    close = difflib.get_close_matches(_fold(word), list(folded), n=1, cutoff=0.6)
    return f" (did you mean '{folded[close[0]]}'?)" if close else ""
