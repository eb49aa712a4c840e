"""`serve`: the daemon process. Wires the configuration to the executor, the core, the followers and uvicorn.

Start: open the state, re-attach to the jobs a previous daemon left
running, start following repositories and the clock, then serve HTTP.
SIGTERM or SIGINT: stop taking new work (webhooks answer 503), give the
running jobs `shutdown_grace` seconds, record the rest as interrupted (the
next start takes them over), and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.masking import MaskingFilter
from fasttrack_gitops.daemon.config import DaemonConfig

if TYPE_CHECKING:  # uvicorn is imported when the daemon starts serving, not when the CLI starts
    import uvicorn

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
log = logging.getLogger("fasttrack_gitops.daemon")

REPORT_FLUSH = 10.0  # seconds a stopping daemon spends sending the last reports (the outbox keeps the rest)
REPORT_STOP = 2.0  # seconds the reporters then have to end the send in flight before it is cancelled


def serve(config: DaemonConfig) -> int:
    """Run the daemon until SIGTERM or SIGINT; the exit code."""
    _log_to_stderr(config.secret_values())
    _not_dumpable()
    sock = listening_socket(config.host, config.port)
    return asyncio.run(run_daemon(config, sock))


def _not_dumpable() -> None:
    """Make this process non-dumpable (prctl PR_SET_DUMPABLE 0): a local task runs as our user, and would
    otherwise read our original environment in /proc/<pid>/environ, credentials included, or attach to us and
    read our memory. A task starts dumpable again (exec resets the flag). No core dumps of the daemon follow."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: there the local executor is no sandbox anyway (SECURITY.md)
        log.debug("cannot make the daemon non-dumpable here")


async def run_daemon(
    config: DaemonConfig,
    sock: socket.socket,
    *,
    stop: asyncio.Event | None = None,
    executor=None,
    ready=None,
    reporters=None,
) -> int:
    """The daemon on an already bound socket, until `stop` is set (or a signal sets it)."""
    import uvicorn

    from fasttrack_gitops.daemon import follow
    from fasttrack_gitops.daemon.http import App
    from fasttrack_gitops.daemon.outputs_http import signing_key
    from fasttrack_gitops.daemon.reports import make_reporters
    from fasttrack_gitops.daemon.service import Daemon

    stop = stop or asyncio.Event()
    executor = executor or make_executor(config)
    daemon = Daemon(config, executor=executor)
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests): no signals
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    resumed = daemon.pool.recover()
    if resumed:
        log.info("re-attached to %d job(s) left running: %s", len(resumed), ", ".join(resumed))
    following = asyncio.Event()  # set to stop the followers
    signing_secret = signing_key(config)  # one per process: the links it signs die with it unless configured
    deliverer = _deliverer(daemon, make_reporters(config) if reporters is None else reporters, signing_secret)
    delivering = asyncio.Event()  # set to stop the reporters, after the drain's last reports
    background = [
        asyncio.create_task(daemon.pool.dispatch_forever()),
        asyncio.create_task(follow.schedules(daemon, following)),
    ]
    reporting = asyncio.create_task(deliverer.run(delivering))
    for repo in config.repositories:
        if repo.watch:
            background.append(asyncio.create_task(follow.watch(daemon, repo, following)))
        elif repo.poll_interval:
            background.append(asyncio.create_task(follow.poll(daemon, repo, following)))
    app = App(daemon, signing_secret=signing_secret)
    server = _server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    host, port = sock.getsockname()[:2]
    log.info(
        "serving on http://%s:%d with %d repositories, executor %s, state in %s",
        host,
        port,
        len(config.repositories),
        config.executor,
        config.state_dir,
    )
    if ready is not None:
        ready(daemon)
    try:
        await stop.wait()
    finally:
        log.info("stopping: no new jobs; waiting up to %gs for running ones", config.shutdown_grace)
        following.set()
        await daemon.pool.drain(config.shutdown_grace, signal_name=received[0].name if received else "SIGTERM")
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        daemon.live.close()  # the console's event streams end, or the server would wait for them
        server.should_exit = True
        await serving
        with contextlib.suppress(asyncio.TimeoutError):  # the drained jobs' last reports, briefly
            await asyncio.wait_for(deliverer.flush(), timeout=REPORT_FLUSH)
        delivering.set()
        # A send still in flight (a service that stopped answering holds it up to the client's 30 s timeout, for
        # each row due) is not waited out: its row stays in the outbox, and the next start sends it.
        if not (await asyncio.wait({reporting}, timeout=REPORT_STOP))[0]:
            reporting.cancel()
        await asyncio.gather(reporting, return_exceptions=True)
        for reporter in deliverer.reporters.values():
            await reporter.aclose()
        await executor.close()
        daemon.close()
    return 0


def _deliverer(daemon, reporters, signing_secret: bytes):
    """The reporters' deliverer, fed by the daemon's outbox (engine/state/outbox.py)."""
    from fasttrack_gitops.daemon.reports import report_builder
    from fasttrack_gitops.engine.deliver import Deliverer

    build = report_builder(
        daemon.store, daemon.ledger, masks=daemon.masks, public_url=daemon.config.public_url, signing=signing_secret
    )
    deliverer = Deliverer(daemon.outbox, reporters, build, on_result=daemon.metrics.report_result)
    daemon.reporter_names = tuple(deliverer.names)
    daemon.wake_reporters = deliverer.wake
    return deliverer


def make_executor(config: DaemonConfig):
    from fasttrack_gitops.engine.executors import get_executor

    if config.executor == "backendai" and config.backendai is not None:
        from fasttrack_gitops.engine.backendai.credentials import Credentials

        credentials = Credentials.from_env(
            {
                "BACKEND_ENDPOINT": config.backendai.endpoint,
                "BACKEND_ACCESS_KEY": config.backendai.access_key,
                "BACKEND_SECRET_KEY": config.backendai.secret_key,
            }
        )
        return get_executor("backendai", credentials=credentials)
    # a local task inherits the daemon's environment: never the variables holding the daemon's own credentials
    if config.executor == "local":
        return get_executor("local", withhold=config.secret_values())
    return get_executor(config.executor)


def listening_socket(host: str, port: int) -> socket.socket:
    """The bound, listening socket (bound before anything starts, so a taken port is a clean exit 2)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP,
    # and with Nagle on, a keep-alive client waits 40 ms (delayed ACK) for every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host or "0.0.0.0", port))
    except OSError as e:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {e.strerror or e}; change 'listen' in the "
            "configuration or stop what uses the port"
        ) from e
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn's Server without its signal handling: the daemon drains on SIGTERM itself, then stops it."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            yield

    return Server(config)


def _log_to_stderr(secrets: tuple[str, ...]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(MaskingFilter(secrets))
    root = logging.getLogger("fasttrack_gitops")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
