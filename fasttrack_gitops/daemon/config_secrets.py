"""The secrets of the daemon's configuration: which keys name them, refusing one written as a value, resolving one.

Secrets are never written in the file. A `*_env` key names an environment
variable and a `*_file` key a file; both are resolved once, when the file is
loaded, so the daemon gets the values and a missing one stops it before it
starts rather than at the first webhook. No message ever holds a secret's
value (config.py leaves them out of the dataclasses' repr too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, diagnostic, json_path
from fasttrack_gitops.core.pipeline.yamlsource import Document
from fasttrack_gitops.daemon.config_values import dotted, local_path, looks_like_secret, read_secret_file

# Where secrets may be named, and which: each as <secret>_env or <secret>_file, never <secret> itself.
SECRETS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("api_token", "read_token", "signing_secret"),
    ("github",): ("webhook_secret", "token", "private_key"),
    ("gitlab",): ("webhook_token", "token"),
    ("slack",): ("bot_token", "webhook_url"),
    ("backendai",): ("access_key", "secret_key"),
}


class SecretProblem(Exception):
    """A secret the configuration names that cannot be had: `code`, and the `key` to report it at."""

    def __init__(self, code: str, message: str, key: tuple, *, at_key: bool = False):
        super().__init__(message)
        self.code, self.key, self.at_key = code, key, at_key


# --- before the schema ----------------------------------------------------------------------


def without_literal_secrets(doc: Document) -> tuple[Any, list[Diagnostic]]:
    """The data without secrets written as values, and a diagnostic for each (which never shows the value).

    They are taken out before the schema check, so they are reported once and
    as what they are, not as unknown keys.
    """
    data = doc.data
    found: list[Diagnostic] = []
    for section, names in SECRETS.items():
        holder = data.get(section[0]) if section else data
        written = [n for n in names if isinstance(holder, dict) and n in holder]
        for name in written:
            path = section + (name,)
            m = doc.source.key(path)
            found.append(
                diagnostic(
                    "FT401",
                    f"{dotted(path)}: secrets are never written in the configuration; name an environment "
                    f"variable with {name}_env (or a file with {name}_file)",
                    doc.file,
                    m.line,
                    m.column,
                    json_path(path),
                )
            )
        if written:
            kept = {k: v for k, v in holder.items() if k not in written}
            data = {**data, section[0]: kept} if section else kept
    return data, found


def redacted(d: Diagnostic) -> Diagnostic:
    """A schema message about an *_env value quotes it, and the value may be the secret itself: say it without."""
    if d.code == "FT100" and d.path.endswith("_env"):
        return replace(
            d,
            message=f"{d.path[2:]} must be the name of an environment variable (letters, digits and "
            "'_', e.g. GITHUB_TOKEN), never the secret itself",
        )
    return d


# --- after the schema: resolving ------------------------------------------------------------


def resolve_secret(
    section: tuple,
    holder: dict,
    name: str,
    environ: Mapping[str, str],
    folder: Path,
    fallback_env: str | None = None,
) -> str | None:
    """The secret <name> that holder names by <name>_env or <name>_file, else the fallback variable's, else None.

    A relative file is in `folder`, the configuration's. SecretProblem when
    both keys are written, the variable is unset or empty, or the file
    cannot be read.
    """
    env_key, file_key = f"{name}_env", f"{name}_file"
    if env_key in holder and file_key in holder:
        raise SecretProblem(
            "FT410",
            f"{dotted(section + (file_key,))} and {env_key} both name the {name}; keep one",
            section + (file_key,),
            at_key=True,
        )
    if env_key in holder:
        return _env_secret(section + (env_key,), holder[env_key], environ)
    if file_key in holder:
        path = section + (file_key,)
        try:
            return read_secret_file(local_path(folder, holder[file_key]))
        except ValueError as e:
            raise SecretProblem("FT403", f"{dotted(path)}: {e}", path) from None
    if fallback_env is None:
        return None
    return (environ.get(fallback_env) or "").strip() or None


def _env_secret(path: tuple, variable: str, environ: Mapping[str, str]) -> str:
    value = (environ.get(variable) or "").strip()
    if value:
        return value
    if looks_like_secret(variable):
        raise SecretProblem(
            "FT402",
            f"{dotted(path)} must name an environment variable, and what it holds looks like a "
            "token itself; put the token in a variable and write the variable's name here",
            path,
        )
    raise SecretProblem(
        "FT402",
        f"{dotted(path)} names {variable}, which is not set (or empty) in the environment "
        "of the daemon; set it, or remove the key",
        path,
    )
