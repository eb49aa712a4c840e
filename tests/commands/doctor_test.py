"""`fasttrack-gitops doctor` against the Backend.AI emulator (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import MINIMAL
from engine.backendai import emulator_vfolders
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator

from fasttrack_gitops.cli import main

GPU_PIPELINE = MINIMAL.replace(
    "    command: echo train\n", "    command: echo train\n    resources: {cuda.shares: 1}\n"
)


@pytest.fixture
def emulator(monkeypatch):
    with Emulator() as emu:
        emulator_vfolders.install(emu)
        monkeypatch.setenv("BACKEND_ENDPOINT", emu.endpoint)
        monkeypatch.setenv("BACKEND_ACCESS_KEY", ACCESS_KEY)
        monkeypatch.setenv("BACKEND_SECRET_KEY", SECRET_KEY)
        yield emu


def doctor(capsys, *args) -> tuple[int, list[dict]]:
    capsys.readouterr()
    code = main(["doctor", *map(str, args), "--format", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


def by_name(checks: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in checks}


def test_a_working_setup_passes_every_check(capsys, emulator, write, tmp_path):
    write("pipelines/p.yaml", MINIMAL)
    code, checks = doctor(capsys, tmp_path)
    assert code == 0
    assert [c["name"] for c in checks] == [
        "credentials",
        "endpoint",
        "API version",
        "keypair",
        "resource slots",
        "pipeline folders",
    ]
    assert all(c["ok"] for c in checks)
    assert by_name(checks)["pipeline folders"]["detail"].startswith("ftg-")
    assert "v7.20230615" in by_name(checks)["API version"]["detail"]


def test_the_text_table_says_ok_per_check(capsys, emulator, write, tmp_path):
    write("pipelines/p.yaml", MINIMAL)
    assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["check", "found", "what", "to", "do"]
    assert out.count("\nok ") == 6


def test_a_slot_the_cluster_lacks_fails_naming_the_task(capsys, emulator, write, tmp_path):
    write("pipelines/p.yaml", GPU_PIPELINE)
    code, checks = doctor(capsys, tmp_path)
    assert code == 1
    slots = by_name(checks)["resource slots"]
    assert slots["ok"] is False
    assert "missing cuda.shares (asked by demo/train)" in slots["detail"]


def test_a_wrong_secret_fails_the_keypair_check_without_showing_it(capsys, emulator, monkeypatch, write, tmp_path):
    monkeypatch.setenv("BACKEND_SECRET_KEY", "not-the-secret-at-all")
    write("pipelines/p.yaml", MINIMAL)
    code, checks = doctor(capsys, tmp_path)
    assert code == 1
    keypair = by_name(checks)["keypair"]
    assert keypair["ok"] is False and ACCESS_KEY in keypair["detail"]
    assert "not-the-secret-at-all" not in json.dumps(checks)
    assert "resource slots" not in by_name(checks)  # it needs a working keypair


def test_a_clock_20_minutes_off_is_named(capsys, emulator, write, tmp_path):
    emulator.clock_skew = timedelta(minutes=20)
    write("pipelines/p.yaml", MINIMAL)
    code, checks = doctor(capsys, tmp_path)
    assert code == 1
    assert "clock" in by_name(checks)["keypair"]["advice"].lower() or "NTP" in by_name(checks)["keypair"]["advice"]


def test_an_endpoint_that_is_no_manager_fails_the_endpoint_check(capsys, emulator, write, tmp_path):
    emulator.not_a_manager()
    write("pipelines/p.yaml", MINIMAL)
    code, checks = doctor(capsys, tmp_path)
    assert code == 1
    assert by_name(checks)["endpoint"]["ok"] is False
    assert "BACKEND_ENDPOINT" in by_name(checks)["endpoint"]["advice"]


def test_missing_credentials_fail_the_first_check(capsys, monkeypatch, write, tmp_path):
    for name in ("BACKEND_ENDPOINT", "BACKEND_ACCESS_KEY", "BACKEND_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    write("pipelines/p.yaml", MINIMAL)
    code, checks = doctor(capsys, tmp_path)
    assert code == 1
    assert checks == [by_name(checks)["credentials"]] and checks[0]["ok"] is False
    assert "BACKEND_ENDPOINT" in checks[0]["detail"]
