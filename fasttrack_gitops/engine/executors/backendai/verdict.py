"""How a session that ended becomes its attempt's outcome, exit code and message. Pure.

Result SUCCESS -> SUCCEEDED; FAILURE -> FAILED with the exit code (125,
layout.SETUP_FAILED: the layout could not be made, the log says why); a
session that ends in ERROR or CANCELLED, or is terminated without a result
-> FAILED with the server's reason. The exit code is the
session_success/failure event's: GraphQL's is the container's (-1 on the
real 23.09 stack) and only fills in when >= 0.
"""

from __future__ import annotations

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.engine.backendai.sessions import SessionResult, SessionStatus
from fasttrack_gitops.engine.executors.backendai import layout
from fasttrack_gitops.engine.executors.backendai.watch import WatchedSession


def verdict(s: WatchedSession) -> tuple[Outcome, int | None, str]:
    """The attempt's outcome, exit code and message from how the session ended."""
    found = s.outcome
    result = found.result if found and found.result is not SessionResult.UNDEFINED else s.event_result
    # The event's exitCode is the command's (23.09/24.03; null from 25.x). GraphQL's kernel exit_code is the
    # container's: -1 on the real 23.09 stack, so it only fills in, and never with a negative value.
    exit_code = s.event_exit
    if exit_code is None and found and found.exit_code is not None and found.exit_code >= 0:
        exit_code = found.exit_code
    where = f"the Backend.AI session {s.name}"
    if result is SessionResult.SUCCESS:
        return Outcome.SUCCEEDED, 0, ""
    if result is SessionResult.FAILURE:
        if exit_code is None:
            return Outcome.FAILED, None, f"{where} failed{s.why()}"
        if exit_code == layout.SETUP_FAILED:
            return Outcome.FAILED, exit_code, "the session could not lay out /pipeline or the task's code (see the log)"
        return Outcome.FAILED, exit_code, ""
    if s.status is SessionStatus.ERROR:
        return Outcome.FAILED, exit_code, f"{where} ended in ERROR{s.why()}"
    if s.status is SessionStatus.CANCELLED:
        return Outcome.FAILED, exit_code, f"{where} was cancelled by the cluster{s.why()}"
    return Outcome.FAILED, exit_code, f"{where} was terminated without a result{s.why()}"
