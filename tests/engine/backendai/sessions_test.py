"""Batch sessions against the emulator: real processes, real exit codes, 23.09's refusals."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import alive, await_until
from engine.backendai.emulator import Emulator
from engine.backendai.emulator_sessions import install

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.events import session_events
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec
from fasttrack_gitops.engine.backendai.sessions import (
    ResourceSlotError,
    SessionExistsError,
    SessionGone,
    SessionResult,
    SessionStatus,
    UnknownImageError,
    create_batch_session,
    destroy_session,
    session_info,
    session_logs,
    session_result,
)


def spec(command: str = "echo hi", name: str = "ftg-test-task-1", **fields) -> SessionSpec:
    fields.setdefault("resources", {"cpu": 1, "mem": "256m"})
    return SessionSpec(name=name, image="python", startup_command=command, **fields)


def run(client, scenario):
    async def main():
        async with client:
            return await scenario(client)

    return asyncio.run(main())


async def until(client, name: str, *statuses: SessionStatus):
    """Poll GET /session/{name} (tests only: the executor waits on events) until one of `statuses`, or gone."""

    async def reached():
        info = await session_info(client, name)
        return info if isinstance(info, SessionGone) or info.status in statuses else None

    return await await_until(reached, what=f"session {name} to be {' or '.join(s.value for s in statuses)}")


def bodies(emu: Emulator) -> list[dict]:
    return [json.loads(r.body) for r in emu.requests_to("/session") if r.method == "POST"]


# -- statuses ----------------------------------------------------------------------------------------


def test_statuses_tolerate_what_newer_servers_add():
    assert SessionStatus.parse("TERMINATED").is_final and SessionStatus.parse("error").is_final
    newer = SessionStatus.parse("WARMING_UP")
    assert newer is SessionStatus.UNKNOWN and not newer.is_final  # still running, as far as we know
    assert SessionStatus.parse("DEPRIORITIZING").is_waiting and not SessionStatus.RUNNING.is_waiting
    assert SessionResult.parse("success") is SessionResult.SUCCESS and SessionResult.parse(None).name == "UNDEFINED"


# -- a real run --------------------------------------------------------------------------------------


def test_a_failing_batch_session_runs_for_real(session_emulator, make_client):
    task = spec("echo hi; echo oops >&2; exit 3", environ={"GREETING": "hi"})

    async def scenario(client):
        async with session_events(client, session_name=task.name) as events:
            created = await create_batch_session(client, task)
            events.session_id = created.id
            seen = []
            async for event in events:
                seen.append(event)
                if event.name == "session_terminated":
                    break
        return (
            created,
            seen,
            await session_info(client, task.name),
            await session_result(client, created.id),
            await session_logs(client, task.name),
        )

    created, seen, info, outcome, logs = run(make_client(session_emulator), scenario)
    assert created.status is SessionStatus.PENDING and created.created
    assert [e.name for e in seen if e.name.startswith("session_")] == [
        "session_enqueued",
        "session_scheduled",
        "session_started",
        "session_failure",
        "session_terminating",
        "session_terminated",
    ]
    failure = next(e for e in seen if e.name == "session_failure")
    assert (failure.exit_code, failure.reason, failure.result) == (3, "task-failed", SessionResult.FAILURE)
    assert [e.status for e in seen if e.status] == [
        SessionStatus.PENDING,
        SessionStatus.SCHEDULED,
        SessionStatus.RUNNING,
        SessionStatus.TERMINATING,
        SessionStatus.TERMINATED,
    ]
    assert isinstance(info, SessionGone)  # 23.09: a finished session is 404 on GET /session/{name}
    assert (outcome.status, outcome.result, outcome.exit_code) == (SessionStatus.TERMINATED, SessionResult.FAILURE, 3)
    assert outcome.status_info == "task-finished" and outcome.name == task.name
    assert logs == "hi\noops\n"


def test_a_bootstrap_script_runs_first_in_the_same_directory(session_emulator, make_client):
    task = spec("cat marker", bootstrap_script="echo boot > marker; echo booting")

    async def scenario(client):
        created = await create_batch_session(client, task)
        await until(client, task.name, SessionStatus.TERMINATED)
        return await session_result(client, created.id), await session_logs(client, created.id)

    outcome, logs = run(make_client(session_emulator), scenario)
    assert outcome.result is SessionResult.SUCCESS and logs == "booting\nboot\n"


def test_the_success_path_costs_four_calls(session_emulator, make_client):
    task = spec("echo done")

    async def scenario(client):
        async with session_events(client, session_name=task.name) as events:
            created = await create_batch_session(client, task)
            async for event in events:
                if event.name == "session_terminated":
                    break
        outcome = await session_result(client, created.id)
        await session_logs(client, created.id)
        return outcome, client.calls

    outcome, calls = run(make_client(session_emulator), scenario)
    assert (outcome.result, outcome.exit_code) == (SessionResult.SUCCESS, 0)
    assert calls == {
        ("GET", "/"): 1,
        ("GET", "/events/session"): 1,
        ("POST", "/session"): 1,
        ("POST", "/admin/gql"): 1,
        ("GET", "/session/{name}/logs"): 1,
    }


def test_destroying_a_running_session_kills_its_processes(session_emulator, make_client):
    task = spec("sleep 30 & echo $! > child.pid; wait")
    sessions = session_emulator.sessions

    async def scenario(client):
        created = await create_batch_session(client, task)
        running = await until(client, task.name, SessionStatus.RUNNING)
        emulated = sessions.get(task.name)
        await await_until((emulated.root / "work" / "child.pid").exists, what="the task's child to write its pid")
        stats = await destroy_session(client, task.name)
        gone = await until(client, task.name, SessionStatus.TERMINATED)
        return (
            running,
            stats,
            gone,
            await session_result(client, created.id),
            emulated,
            await destroy_session(client, task.name),
        )

    running, stats, gone, outcome, emulated, again = run(make_client(session_emulator), scenario)
    assert running.status is SessionStatus.RUNNING and stats is not None
    assert not alive(emulated.process.pid)
    assert not alive(int((emulated.root / "work" / "child.pid").read_text()))
    assert isinstance(gone, SessionGone) and again is None  # gone: a second destroy is fine
    assert (outcome.status, outcome.status_info, outcome.result) == (
        SessionStatus.TERMINATED,
        "user-requested",
        SessionResult.UNDEFINED,
    )


def test_mounted_folders_are_reachable_and_unknown_ones_refused(session_emulator, make_client, tmp_path):
    (tmp_path / "in.txt").write_text("from the folder\n")
    session_emulator.sessions.resolve_mount = {"data": tmp_path}.get  # what the vfolder emulator would answer
    task = spec("cat $BACKENDAI_VFOLDER_PIPELINE/in.txt", mounts=("data",), mount_map={"data": "/pipeline"})

    async def scenario(client):
        created = await create_batch_session(client, task)
        await until(client, task.name, SessionStatus.TERMINATED)
        with pytest.raises(errors.NotFoundError) as unknown:
            await create_batch_session(client, spec(name="ftg-test-task-2", mounts=("nope",)))
        return await session_result(client, created.id), await session_logs(client, task.name), unknown.value

    outcome, logs, unknown = run(make_client(session_emulator), scenario)
    assert outcome.exit_code == 0 and logs == "from the folder\n"
    assert "No such virtual folder" in str(unknown) and "nope" in str(unknown)


def test_names_travel_quoted(session_emulator, make_client):
    info = run(make_client(session_emulator), lambda client: session_info(client, "../x?y=1 #z"))
    assert isinstance(info, SessionGone)
    assert session_emulator.requests[-1].target == "/session/..%2Fx%3Fy%3D1%20%23z"


# -- what each server accepts ------------------------------------------------------------------------


def test_a_23_09_server_gets_no_field_it_would_reject(session_emulator, make_client):
    task = spec(mounts=("data",), mount_permissions={"data": "ro"}, batch_timeout=60)

    async def scenario(client):
        created = await create_batch_session(client, task)
        try:
            await client.request("POST", "/session", json={**bodies(session_emulator)[0], "batchTimeout": 60})
        except errors.BackendAIError as exc:
            return created, exc

    created, refused = run(make_client(session_emulator), scenario)
    sent = bodies(session_emulator)[0]
    assert created.created and "batch_timeout" not in sent and "mount_options" not in sent["config"]
    assert refused.status == 400 and "batchTimeout is not allowed key" in str(refused)  # what sending it costs


def test_a_newer_server_gets_the_newer_fields(make_client):
    with Emulator("25.15") as emu:
        install(emu, step=0.02)
        task = spec("exit 0", mounts=("data",), mount_permissions={"data": "ro"}, batch_timeout=60)
        created = run(make_client(emu), lambda client: create_batch_session(client, task))
        sent = bodies(emu)[0]
    assert created.created and sent["batch_timeout"] == 60
    assert sent["config"]["mount_options"] == {"data": {"type": "bind", "permission": "ro"}}


# -- refusals ----------------------------------------------------------------------------------------


def create_error(emu, task: SessionSpec, make_client) -> errors.BackendAIError:
    async def scenario(client):
        with pytest.raises(errors.BackendAIError) as caught:
            await create_batch_session(client, task)
        return caught.value

    return run(make_client(emu), scenario)


def test_an_unknown_image_says_which(session_emulator, make_client):
    error = create_error(session_emulator, SessionSpec("ftg-test-task-1", "pyhton", "echo"), make_client)
    assert isinstance(error, UnknownImageError) and isinstance(error, errors.NotFoundError)
    assert "does not know the image 'pyhton'" in str(error) and "Unknown image references: pyhton" in str(error)


def test_a_slot_the_cluster_lacks_is_named(session_emulator, make_client):
    error = create_error(session_emulator, spec(resources={"cpu": 1, "cuda.device": 1}), make_client)
    assert isinstance(error, ResourceSlotError) and error.status == 400
    assert "no resource slot cuda.device" in str(error) and "doctor" in str(error)


@pytest.mark.parametrize(("server", "status"), [("23.09", 412), ("25.15", 400)])
def test_quota_exceeded_is_a_quota_error_on_every_version(make_client, server, status):
    with Emulator(server) as emu:
        install(emu).quota_next()
        error = create_error(emu, spec(), make_client)
    assert isinstance(error, errors.QuotaError) and error.status == status
    assert "quota exceeded" in str(error)


def test_a_name_taken_by_a_live_session(session_emulator, make_client):
    session_emulator.sessions.stuck_next()

    async def scenario(client):
        first = await create_batch_session(client, spec())
        again = await create_batch_session(client, spec())  # a restarted runner: the same session back
        with pytest.raises(SessionExistsError) as caught:
            await create_batch_session(client, SessionSpec("ftg-test-task-1", "cr.backend.ai/other:1", "echo"))
        return first, again, caught.value

    first, again, clash = run(make_client(session_emulator), scenario)
    assert again.id == first.id and not again.created
    assert clash.existing_id == first.id and clash.status == 400


# -- sessions that do not run ------------------------------------------------------------------------


def test_a_session_that_errors_reports_the_reason(session_emulator, make_client):
    session_emulator.sessions.error_next("failed-to-start", "KernelCreationFailed: the agent is gone")

    async def scenario(client):
        created = await create_batch_session(client, spec())
        info = await until(client, spec().name, SessionStatus.ERROR)
        outcome = await session_result(client, created.id)
        with pytest.raises(errors.BackendAIError) as refused:
            await destroy_session(client, spec().name)  # 23.09 refuses unless forced
        return info, outcome, refused.value, await destroy_session(client, spec().name, forced=True)

    info, outcome, refused, stats = run(make_client(session_emulator), scenario)
    assert info.status is SessionStatus.ERROR and info.status.is_final and info.status_info == "failed-to-start"
    assert outcome.reason == "failed-to-start; KernelCreationFailed: the agent is gone"
    assert refused.status == 403 and "error status" in str(refused) and stats is not None


def test_a_session_stuck_in_pending_can_be_cancelled(session_emulator, make_client):
    session_emulator.sessions.stuck_next()

    async def scenario(client):
        created = await create_batch_session(client, spec())
        await asyncio.sleep(0.2)
        info = await session_info(client, spec().name)
        await destroy_session(client, spec().name)
        return info, await session_result(client, created.id), await session_info(client, spec().name)

    info, outcome, after = run(make_client(session_emulator), scenario)
    assert info.status is SessionStatus.PENDING and info.status.is_waiting
    assert (outcome.status, outcome.status_info) == (SessionStatus.CANCELLED, "user-requested")
    assert isinstance(after, SessionGone)


def test_an_unknown_status_is_kept_raw_and_not_final(session_emulator, make_client):
    session_emulator.sessions.unknown_status_next("WARMING_UP", hold=0.5)

    async def scenario(client):
        created = await create_batch_session(client, spec("exit 0"))
        info = await until(client, spec().name, SessionStatus.UNKNOWN)
        outcome = await session_result(client, created.id)
        await until(client, spec().name, SessionStatus.TERMINATED)
        return info, outcome, await session_result(client, created.id)

    info, during, after = run(make_client(session_emulator), scenario)
    assert (info.status, info.status_raw, info.status.is_final) == (SessionStatus.UNKNOWN, "WARMING_UP", False)
    assert (during.status, during.status_raw) == (SessionStatus.UNKNOWN, "WARMING_UP")
    assert after.result is SessionResult.SUCCESS
