"""What the benchmarks share: a quiet git, and the environment that points `fasttrack-gitops` at an emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> None:
    """git in `repo` with a fixed author, its output swallowed, failing loudly."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b"}
    env["GIT_COMMITTER_EMAIL"] = "b@b"
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def emulator_env(emu: Any) -> dict[str, str]:
    """Our environment with BACKEND_* naming the Backend.AI emulator `emu` (tests/engine/backendai/emulator.py)."""
    from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY

    return {
        **os.environ,
        "BACKEND_ENDPOINT": emu.endpoint,
        "BACKEND_ACCESS_KEY": ACCESS_KEY,
        "BACKEND_SECRET_KEY": SECRET_KEY,
    }


def serve(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    """A real `fasttrack-gitops serve --config CONFIG` process (env added to ours), once /healthz answers."""
    import httpx

    exe = Path(sys.executable).parent / "fasttrack-gitops"
    proc = subprocess.Popen(
        [str(exe), "serve", "--config", str(config)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the daemon did not start")
