"""The step's flow: mask, validate, select, run (or submit), summarise, set outputs; and its exit code.

Exit 0 when every selected job succeeded or nothing was selected, 1 when a
job failed or validation found an error, 2 on a configuration error (not
in a runner, no credentials, `wait: false` without a daemon). Secrets are
registered with `::add-mask::` before anything else is printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from fasttrack_gitops.ci import runner_env, summary
from fasttrack_gitops.ci.workflow import Log, append_summary, write_outputs
from fasttrack_gitops.core.errors import FastTrackError, UsageError
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.reports.markdown import inline

TITLE = "fasttrack-gitops ci"
# The step's own credentials, which local tasks (child processes) must not inherit.
CREDENTIAL_VARIABLES = (
    "GITHUB_TOKEN",
    "FTG_API_TOKEN",
    "BACKEND_ACCESS_KEY",
    "BACKEND_SECRET_KEY",
    "FTG_CI_GITHUB_TOKEN",
    "FTG_CI_BACKEND_ACCESS_KEY",
    "FTG_CI_BACKEND_SECRET_KEY",
    "FTG_CI_SLACK_BOT_TOKEN",
    "FTG_CI_SLACK_WEBHOOK_URL",
)


@dataclass(frozen=True)
class Inputs:
    """The action's inputs, as the command's options gave them."""

    mode: str = "validate"  # validate | run | plan
    executor: str = "backendai"  # backendai | local
    pipelines: tuple[str, ...] = ()  # globs; () means the repository's (as `validate` finds them)
    wait: bool = True
    backend_endpoint: str | None = None
    backend_access_key: str | None = None
    backend_secret_key: str | None = None
    github_token: str | None = None
    slack_bot_token: str | None = None
    slack_webhook_url: str | None = None
    slack_channel: str | None = None
    daemon_url: str | None = None
    state_dir: Path | None = None
    no_cache: bool = False  # run: reuse no cached outputs; plan: forecast as if so
    params: str | None = None  # NAME=VALUE lines: parameter values for every selected pipeline


def parse_globs(text: str | None) -> tuple[str, ...]:
    """'a/*.yaml, b.yaml' or one glob a line -> the globs, './' dropped."""
    parts = (part.strip() for line in (text or "").splitlines() for part in line.split(","))
    return tuple(part.removeprefix("./") for part in parts if part)


def run(inputs: Inputs, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    ctx = runner_env.from_environ(env)  # not in a runner: UsageError, before anything is printed
    log = Log()
    hidden = secret_values(inputs, env)
    for value in hidden:
        log.add_mask(value)
    try:
        return _flow(ctx, inputs, env, log, hidden)
    except FastTrackError as e:  # a configuration error (2), or git or the store failing (their code)
        message = masked(str(e), hidden)
        log.error(message, title=TITLE)
        append_summary(
            ctx.step_summary,
            f"## FastTrack pipelines: ❌ {'configuration ' if e.exit_code == 2 else ''}error\n\n{inline(message)}\n",
        )
        return e.exit_code


def secret_values(inputs: Inputs, env: Mapping[str, str]) -> tuple[str, ...]:
    """Every value the log must never show: tokens, keys, the webhook URL, FTG_SECRET_* values."""
    from fasttrack_gitops.core.taskenv import secrets_from_environ

    values = [
        inputs.github_token,
        inputs.backend_access_key,
        inputs.backend_secret_key,
        inputs.slack_bot_token,
        inputs.slack_webhook_url,
        env.get("FTG_API_TOKEN"),
        *secrets_from_environ(env).values(),
    ]
    return tuple(sorted({v for v in values if v and v.strip()}, key=lambda v: (-len(v), v)))


def _flow(ctx, inputs: Inputs, env: Mapping[str, str], log: Log, hidden: Sequence[str]) -> int:
    from fasttrack_gitops.ci import session

    if inputs.mode == "run" and not inputs.wait and not inputs.daemon_url:
        from fasttrack_gitops.ci.submit import NEEDS_DAEMON

        raise UsageError(NEEDS_DAEMON)
    report = session.validate(ctx.workspace, inputs.pipelines)
    for d in report.diagnostics:
        log.command(d.severity, masked(d.message, tuple(hidden)), file=d.file, line=d.line, col=d.column, title=d.code)
    errors = sum(d.is_error for d in report.diagnostics)
    log.line(
        f"{len(report.files)} pipeline file{'s' if len(report.files) != 1 else ''} checked: {errors} error(s), "
        f"{len(report.diagnostics) - errors} warning(s)"
    )
    prepared = session.prepare(ctx, inputs.pipelines)
    if prepared.choice.selections:
        from fasttrack_gitops.ci.dispatch_params import dispatch_inputs, with_params

        prepared = with_params(prepared, inputs.params, dispatch_inputs(ctx.event_name, ctx.event_path.read_bytes()))
    choice = prepared.choice
    with log.group(f"FastTrack: what the {choice.what} selects"):
        for decision in choice.decisions:
            log.line(f"{'run ' if decision.selected else 'skip'}  {decision.candidate.path}: {decision.reason}")
        for path in prepared.found.invalid:
            log.line(f"skip  {path}: not valid at this commit")
    for note in prepared.notes:
        log.warning(note, title=TITLE)

    jobs: list[summary.JobResult] = []
    submitted: list[summary.Submitted] = []
    plans: list[str] = []
    uploads: list[Path] = []  # the folder of plots and artifacts to upload, once there is one (artifacts.py)
    if inputs.mode == "plan" and choice.selections:
        plans = _plan(ctx, inputs, log, prepared)
    if inputs.mode == "run" and choice.selections:
        if inputs.wait:
            jobs = _run(ctx, inputs, env, log, hidden, prepared, uploads)
        else:
            from fasttrack_gitops.ci.submit import submit
            from fasttrack_gitops.engine.daemon_client import API_TOKEN_VARIABLE

            assert inputs.daemon_url is not None  # _flow refused `wait: false` without one, before any work
            submitted = submit(
                choice.selections,
                ctx=ctx,
                commit=prepared.report_commit,
                daemon_url=inputs.daemon_url,
                api_token=env.get(API_TOKEN_VARIABLE),
            )
            for sub in submitted:
                log.line(f"{sub.path}: {sub.error or 'jobs ' + ' '.join(sub.job_ids)}")

    facts = summary.Facts(
        mode=inputs.mode,
        what=choice.what,
        commit=prepared.commit,
        run_url=ctx.run_url,
        files=report.files,
        diagnostics=report.diagnostics,
        decisions=choice.decisions,
        invalid=dict(prepared.found.invalid),
        jobs=jobs,
        submitted=submitted,
        notes=prepared.notes,
        plans=plans,
    )
    markdown = masked(summary.markdown(facts), tuple(hidden))
    conclusion = summary.conclusion(facts)
    append_summary(ctx.step_summary, markdown)
    job_ids = [r.report.job_id for r in jobs] + [j for s in submitted for j in s.job_ids]
    write_outputs(
        ctx.output,
        [
            ("job-ids", " ".join(job_ids)),
            ("conclusion", conclusion),
            ("summary", summary.clip(markdown, summary.OUTPUT_BYTES)),
            ("results-dir", str(uploads[0]) if uploads else ""),
        ],
    )
    if job_ids and submitted:
        log.line(f"job ids: {' '.join(job_ids)}")
    return 0 if conclusion in ("success", "skipped", "submitted") else 1


def _run(
    ctx, inputs: Inputs, env: Mapping[str, str], log: Log, hidden: Sequence[str], prepared, uploads: list[Path]
) -> list:
    """Freeze and run the selected pipelines here; their results."""
    import asyncio

    from fasttrack_gitops.ci.artifacts import RESULTS_FOLDER, collect
    from fasttrack_gitops.ci.jobs import run_jobs
    from fasttrack_gitops.ci.reporters import Reporters
    from fasttrack_gitops.core.taskenv import check_secrets, secrets_from_environ
    from fasttrack_gitops.engine.cache.job_cache import without_reuse
    from fasttrack_gitops.engine.outputs import TaskOutputs
    from fasttrack_gitops.engine.plan import plan
    from fasttrack_gitops.engine.state.store import Store

    secrets = secrets_from_environ(env)
    planned = plan(prepared.source, prepared.found, prepared.choice.selections, ref=prepared.ref)
    if inputs.no_cache:
        planned = [replace(p, job=without_reuse(p.job)) for p in planned]
    for p in planned:
        check_secrets(p.job.pipeline_model(), secrets)
        for d in p.job.diagnostics:  # what the job will not do as its file says (params), beside validation's
            message = masked(str(d["message"]), tuple(hidden))
            log.command(d["severity"], message, file=d["file"], line=d["line"], col=d["column"], title=d["code"])
    executor = _executor(inputs)
    store = Store(inputs.state_dir or ctx.default_state_dir())
    reporters = Reporters(
        ctx,
        report_commit=prepared.report_commit,
        masks=hidden,
        log=log,
        github_token=inputs.github_token,
        slack_bot_token=inputs.slack_bot_token,
        slack_webhook_url=inputs.slack_webhook_url,
        slack_channel=inputs.slack_channel,
    )

    async def main():
        try:
            views = await run_jobs(
                [p.job for p in planned],
                store=store,
                executor=executor,
                source=prepared.found.snapshot,
                secrets=secrets,
                masks=hidden,
                reporters=reporters,
                log=log,
            )
            results = store.state_dir / RESULTS_FOLDER

            def warn(message: str) -> None:
                log.warning(message, title=TITLE)

            if await collect(TaskOutputs(store, executor), views, results, warn):
                uploads.append(results)  # action.yml uploads it (its `results-dir` output)
            return views
        finally:
            await executor.close()
            await reporters.aclose()

    try:
        views = asyncio.run(main())
        return [summary.JobResult(reporters.report(store, v.job.id), reporters.link(v.job.id)) for v in views]
    finally:
        store.close()


def _plan(ctx, inputs: Inputs, log: Log, prepared) -> list[str]:
    """`mode: plan`: each selected pipeline's forecast as a summary section; nothing is run or stored."""
    import asyncio

    from fasttrack_gitops.core.reports.plan import headline, plan_markdown
    from fasttrack_gitops.engine.cache.forecast import forecast_for
    from fasttrack_gitops.engine.plan import plan
    from fasttrack_gitops.engine.state.store import Store

    planned = plan(prepared.source, prepared.found, prepared.choice.selections, ref=prepared.ref)
    executor = _executor(inputs)  # the cache lives where its executor keeps outputs
    with Store(inputs.state_dir or ctx.default_state_dir()) as store:

        async def main():
            try:
                found = []
                for p in planned:
                    snapshot = prepared.found.snapshot
                    found.append(await forecast_for(p.job, snapshot, executor, store, no_cache=inputs.no_cache))
                return found
            finally:
                await executor.close()

        forecasts = asyncio.run(main())
    for p, forecast in zip(planned, forecasts):
        log.line(f"plan {p.job.pipeline_path}: {headline(forecast)}")
        for warning in forecast.warnings:
            log.warning(f"{p.job.pipeline_path}: {warning}", title=TITLE)
    return [plan_markdown(forecast) for forecast in forecasts]


def _executor(inputs: Inputs):
    from fasttrack_gitops.engine.executors import get_executor

    if inputs.executor != "backendai":
        for name in CREDENTIAL_VARIABLES:  # tasks run as our children here: they get none of our credentials
            os.environ.pop(name, None)
        return get_executor(inputs.executor)
    from fasttrack_gitops.engine.backendai.credentials import Credentials

    given = {
        "BACKEND_ENDPOINT": inputs.backend_endpoint or "",
        "BACKEND_ACCESS_KEY": inputs.backend_access_key or "",
        "BACKEND_SECRET_KEY": inputs.backend_secret_key or "",
    }
    try:
        credentials = Credentials.from_env(given)
    except UsageError as e:
        raise UsageError(
            f"executor backendai: {e} (the inputs backend-endpoint, backend-access-key and backend-secret-key)"
        ) from None
    return get_executor("backendai", credentials=credentials)
