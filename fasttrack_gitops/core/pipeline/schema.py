"""The pipeline JSON Schema, and its errors turned into diagnostics people can act on.

jsonschema's own messages ("'x' does not match '^[A-Za-z0-9]...'") say what
failed but not what to write instead. Here each error becomes a diagnostic at
the offending key or value, with the schema's own description as the advice;
subschemas that carry a `$anchor` listed in ``_ANCHOR_CODES`` get their own
code (FT107 task names, FT109 resources, ...), so the schema stays the one
place those formats are defined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, NodePath, diagnostic, did_you_mean, json_path
from fasttrack_gitops.core.pipeline.yamlsource import Document

if TYPE_CHECKING:  # both validators are imported when first needed, to keep startup fast
    import jsonschema_rs
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

SCHEMA_FILE = "pipeline.schema.json"

_ANCHOR_CODES = {
    "taskName": "FT107",
    "cpu": "FT109",
    "size": "FT109",
    "gpuAmount": "FT109",
    "duration": "FT115",
    "mount": "FT111",
}

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "empty",
}


def schema_path(name: str = SCHEMA_FILE) -> Path:
    """Where a schema file is: inside the installed package, or the source tree's schemas/."""
    packaged = Path(__file__).resolve().parent.parent / "schemas" / name
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "schemas" / name


def schema_text(name: str = SCHEMA_FILE) -> str:
    return schema_path(name).read_text(encoding="utf-8")


@cache
def _fast_validator(name: str) -> jsonschema_rs.Validator:
    import jsonschema_rs

    return jsonschema_rs.validator_for(json.loads(schema_text(name)))


@cache
def _explaining_validator(name: str) -> Validator:
    from jsonschema import Draft202012Validator, ValidationError, validators

    def ecma_pattern(
        validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        # JSON Schema patterns are ECMA-262, where `$` is the end of the text; in
        # Python it also matches before a final newline ("train\n" would pass).
        python_pattern = re.sub(r"(?<!\\)\$", r"\\Z", pattern)
        if validator.is_type(instance, "string") and not re.search(python_pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    # types-jsonschema leaves validators.extend unannotated; the class it makes is a Validator.
    ecma: type[Validator] = validators.extend(Draft202012Validator, {"pattern": ecma_pattern})  # type: ignore[no-untyped-call]
    return ecma(json.loads(schema_text(name)))


def check(doc: Document, schema: str = SCHEMA_FILE, subject: str = "the pipeline") -> list[Diagnostic]:
    """Validate a loaded document against a schema file of schemas/.

    subject names the document's top level in messages ("unknown key 'x' in the pipeline").
    Two validators of the same schema: jsonschema-rs answers "is it valid?"
    about a hundred times faster (5 ms for a 1,000-task pipeline), and only
    for an invalid document does the Python jsonschema walk it again, for the
    error objects (failing subschema, anyOf branches) the explanations need.
    """
    if _fast_validator(schema).is_valid(doc.data):
        return []
    found: list[Diagnostic] = []
    for error in _explaining_validator(schema).iter_errors(doc.data):
        found.extend(_explain(error, doc, subject))
    if not found:  # the two validators disagree: never call an invalid document valid
        for fast_error in _fast_validator(schema).iter_errors(doc.data):
            path = tuple(fast_error.instance_path)
            m = doc.source.value(path)
            found.append(diagnostic("FT100", fast_error.message, doc.file, m.line, m.column, json_path(path)))
    return found


def _explain(error: ValidationError, doc: Document, subject: str) -> Iterator[Diagnostic]:
    path = tuple(error.absolute_path)
    where = json_path(path)
    subschema = error.schema if isinstance(error.schema, dict) else {}
    instance: Any = error.instance  # set on every error iter_errors yields; the stubs also allow "unset"

    if error.validator in ("anyOf", "oneOf"):
        meant = _meant_branch(error)
        if meant:
            for inner in meant:
                yield from _explain(inner, doc, subject)
            return

    if error.validator == "additionalProperties":
        known = list(subschema.get("properties", {}))
        patterns = list(subschema.get("patternProperties", {}))
        for key in instance:
            if key in known or any(re.search(p, key) for p in patterns):
                continue
            m = doc.source.key(path + (key,))
            hint = did_you_mean(key, known) or f"; known keys here: {', '.join(known)}"
            yield diagnostic(
                "FT101",
                f"unknown key '{key}' in {_describe(path, doc, subject)}{hint}",
                doc.file,
                m.line,
                m.column,
                json_path(path + (key,)),
            )
        return

    if error.validator == "required":
        match = re.match(r"^'(.*)' is a required property", error.message)
        missing = match.group(1) if match else error.message
        m = doc.source.key(path) if path else doc.source.value(path)
        yield diagnostic(
            "FT102",
            f"{_describe(path, doc, subject)} has no '{missing}'{_required_advice(missing)}",
            doc.file,
            m.line,
            m.column,
            where,
        )
        return

    if "propertyNames" in error.relative_schema_path:
        m = doc.source.key(path + (instance,))
        yield diagnostic(
            "FT100",
            f"'{instance}' is not a valid environment variable name; use letters, "
            "digits and '_', not starting with a digit",
            doc.file,
            m.line,
            m.column,
            json_path(path + (instance,)),
        )
        return

    m = doc.source.value(path)
    code = _ANCHOR_CODES.get(subschema.get("$anchor", ""), "FT100")
    yield diagnostic(code, _value_message(error, subschema, path, doc, subject), doc.file, m.line, m.column, where)


def _meant_branch(error: ValidationError) -> list[ValidationError]:
    """The errors of the one anyOf/oneOf branch the author evidently meant, else [].

    A branch was meant when its type fits the value (no type/enum error at the
    value itself). Its errors are worth showing when they point inside the
    value (an unknown key under `on.push`); for a scalar that fits no branch,
    the anyOf's own description says it better.
    """
    depth = len(error.absolute_path)
    branches: dict[str | int, list[ValidationError]] = {}
    for inner in error.context:
        branches.setdefault(inner.relative_schema_path[0], []).append(inner)
    meant = [
        errs
        for errs in branches.values()
        if not any(e.validator in ("type", "enum", "const") and len(e.absolute_path) == depth for e in errs)
    ]
    if len(meant) != 1:
        return []
    if all(len(e.absolute_path) > depth or e.validator in ("additionalProperties", "required") for e in meant[0]):
        return meant[0]
    return []


def _value_message(
    error: ValidationError, subschema: Mapping[str, Any], path: NodePath, doc: Document, subject: str
) -> str:
    value: Any = error.instance  # set on every error iter_errors yields; the stubs also allow "unset"
    rule: Any = error.validator_value  # the failing keyword's value in the schema; likewise
    shown = _show(value)
    what = _describe(path, doc, subject)
    if error.validator == "enum":
        options = [str(o) for o in rule]
        hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
        return f"{what} is {shown}; expected one of: {', '.join(options)}{hint}"
    if error.validator == "type":
        expected = rule if isinstance(rule, list) else [rule]
        return f"{what} is {_type_of(value)}; expected {' or '.join(_TYPE_NAMES[t] for t in expected)}"
    if error.validator == "minimum":
        return f"{what} is {shown}; it must be at least {rule}"
    if error.validator == "minLength":
        return f"{what} is empty; write a value or remove the key"
    if error.validator == "uniqueItems":
        return f"{what} lists an item twice"
    advice = subschema.get("description")
    if advice:
        first_word = advice.split()[0]
        if not (len(first_word) > 1 and first_word.isupper()):
            advice = advice[0].lower() + advice[1:]
        return f"{what} is {shown}; expected {advice}".rstrip(".")
    return f"{what}: {error.message}"


def _describe(path: NodePath, doc: Document, subject: str) -> str:
    """A human name for the node at path: "task 'train'", "task 'train' key 'resources.mem'"."""
    if not path:
        return subject
    if len(path) >= 2 and path[0] == "tasks" and isinstance(path[1], int):
        tasks = doc.data.get("tasks") if isinstance(doc.data, dict) else None
        task = tasks[path[1]] if isinstance(tasks, list) and path[1] < len(tasks) else None
        name = task.get("name") if isinstance(task, dict) else None
        who = f"task '{name}'" if isinstance(name, str) else f"task #{path[1] + 1}"
        rest = path[2:]
        return who if not rest else f"{who} {_dotted(rest)}"
    return _dotted(path)


def _dotted(path: NodePath) -> str:
    parts: list[str] = []
    for p in path:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{p}]"]
        else:
            parts.append(p)
    return ".".join(parts)


def _required_advice(key: str) -> str:
    return {
        "command": " (a custom task runs a shell command; write command: ...)",
        "service": " (a deployment or serving task describes the service it starts)",
        "tasks": " (a list of the pipeline's tasks)",
        "version": ' (the FastTrack format version, e.g. version: "26.4.4")',
    }.get(key, "")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "empty"
    if isinstance(value, (dict, list)):
        return _type_of(value)
    return str(value)


def _type_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"
