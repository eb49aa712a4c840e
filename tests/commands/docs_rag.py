"""docs-rag (tests/data/fasttrack-examples/docs-rag.yaml) as a repository that runs here, for the deployment tests.

The real export's custom tasks clone from GitHub and call an LLM API: each
command is replaced by a stand-in `echo` (nothing here may reach a
third-party host). Its two deployment tasks are kept as exported (service
names, model_definition_path, replicas, open_to_public, max_surge...) and get
what the GUI's model storage dialog gives in FastTrack: a `code:` folder
holding the stand-in definitions and server of tests/data/services (ports
filled in), and `stage_inputs`, so what stage-service wrote reaches the
model folder.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import yaml
from commands.run_test import make_repo
from conftest import DATA

DOCS_RAG = DATA / "fasttrack-examples" / "docs-rag.yaml"
SERVICES = DATA / "services"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docs_rag_repo(root: Path, *, image: str | None = None, edit=None) -> dict[str, int]:
    """A committed repository with pipelines/docs-rag.yaml and services/; the ports of the two services."""
    doc = yaml.safe_load(DOCS_RAG.read_text())
    for task in doc["tasks"]:
        if image:
            task["environment"]["image"] = image
        if task["name"] == "stage-service":  # what the services need from the run: here, one file
            task["command"] = 'echo "indices of this run" > "$PIPELINE_OUTPUT_ROOT/indices.txt"'
        elif task["type"] == "custom":
            task["command"] = f"echo 'stand-in for {task['name']}'"
        else:
            task["code"] = "services"
            task["service"]["stage_inputs"] = True
    if edit:
        edit(doc)
    ports = {"api": free_port(), "ui": free_port()}
    files = {"pipelines/docs-rag.yaml": yaml.safe_dump(doc, sort_keys=False)}
    for source in sorted(SERVICES.iterdir()):
        text = source.read_text().replace("PORT_API", str(ports["api"])).replace("PORT_UI", str(ports["ui"]))
        files[f"services/{source.name}"] = text
    make_repo(root, files)
    return ports


def copy_services(target: Path) -> None:
    shutil.copytree(SERVICES, target, dirs_exist_ok=True)
