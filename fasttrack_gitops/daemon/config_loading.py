"""Reading the daemon's configuration file (`serve --config FILE`): load, check, resolve, or say every problem.

It is read the way a pipeline file is (a position for every value, the same
Diagnostic type, a JSON Schema in schemas/ that catches typos with a
suggestion); secrets written as values are refused first (config_secrets.py);
then what a schema cannot judge is checked while the values are resolved
(config_resolver.py), each problem at its file:line:col with what to do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.pipeline import schema
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, has_errors, sort_key
from fasttrack_gitops.core.pipeline.yamlsource import Limits, load
from fasttrack_gitops.daemon.config import DaemonConfig
from fasttrack_gitops.daemon.config_resolver import Resolver
from fasttrack_gitops.daemon.config_secrets import redacted, without_literal_secrets

SCHEMA_FILE = "config.schema.json"


def read_config(path: Path, environ: Mapping[str, str] | None = None) -> DaemonConfig:
    """The configuration, or a UsageError whose message is every diagnostic, one per line."""
    from fasttrack_gitops.core.render.diagnostics import text_line

    config, found = load_config(path, environ)
    if config is None:
        raise UsageError("\n".join(text_line(d) for d in found))
    return config


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> tuple[DaemonConfig | None, list[Diagnostic]]:
    """Read, check and resolve the file: (the configuration, or None when there is an error; all diagnostics)."""
    from fasttrack_gitops.engine.workspace import read_bytes

    environ = os.environ if environ is None else environ
    shown = str(path)
    raw = read_bytes(path, shown, Limits())
    if isinstance(raw, Diagnostic):
        return None, [_reworded(raw)]
    doc, found = load(raw, shown)
    found = [_reworded(d) for d in found]
    if doc is None:
        return None, found
    data, literal = without_literal_secrets(doc)
    found += literal
    found += [redacted(d) for d in schema.check(replace(doc, data=data), SCHEMA_FILE, subject="the configuration")]
    if has_errors(found):
        return None, sorted(found, key=sort_key)
    resolver = Resolver(doc, environ, Path(os.path.abspath(path)))
    config = resolver.config(resolver.expanded(data, ()))
    found = sorted(found + resolver.found, key=sort_key)
    return (None if has_errors(found) else config), found


def _reworded(d: Diagnostic) -> Diagnostic:
    """The YAML loader speaks of pipelines; say what a configuration needs instead."""
    if d.code == "FT007":
        return replace(
            d,
            message=d.message.split(";")[0].replace("'name' and 'tasks'", "'repositories'")
            + ("; a configuration needs at least 'repositories'" if "empty" in d.message else ""),
        )
    if d.code == "FT002":
        return replace(
            d, message=d.message.split(";")[0] + "; a configuration is a few kilobytes: is it the right file?"
        )
    return d
