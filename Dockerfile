# syntax=docker/dockerfile:1
#
# The fasttrack-gitops daemon (`fasttrack-gitops serve`) as an image.
#
#   docker build -t fasttrack-gitops .
#   docker run -p 8080:8080 \
#     -v ./deploy/serve.yaml:/etc/fasttrack-gitops/serve.yaml:ro \
#     -v fasttrack-gitops-state:/var/lib/fasttrack-gitops \
#     -e FTG_GITHUB_WEBHOOK_SECRET -e GITHUB_TOKEN ... fasttrack-gitops
#
# deploy/compose.yaml does the same with Compose. What the image expects:
# - the configuration read-only at /etc/fasttrack-gitops/serve.yaml ($FTG_CONFIG;
#   deploy/serve.yaml is an example). It must listen on every interface
#   (`listen: ":8080"`): the default 127.0.0.1:8080 cannot be reached from
#   outside the container, and the HEALTHCHECK below asks port 8080.
# - state (the SQLite store, mirrors, workspaces) in the volume
#   /var/lib/fasttrack-gitops ($FTG_STATE_DIR, used when the configuration
#   names no state_dir).
# - secrets in the environment at run time, named by the configuration's
#   *_env keys. None is baked into a layer.
# - bubblewrap sandboxes local tasks when user namespaces may be created; under
#   Docker's default seccomp profile they may not, and the local executor then
#   runs tasks without it (FTG_BWRAP=1 makes that an error instead).
#
# The base image is pinned by tag here; release builds pin it by digest
# (python:3.11-slim@sha256:...) so that a rebuild is the same image.

FROM python:3.11-slim AS builder
# The wheel only: the runtime stage installs it and nothing of the source tree.
RUN pip install --no-cache-dir build==1.6.1
WORKDIR /src
COPY pyproject.toml README.md ./
# fasttrack_gitops/schemas/*.json are symlinks into schemas/.
COPY schemas ./schemas
COPY fasttrack_gitops ./fasttrack_gitops
RUN python -m build --wheel --outdir /dist


FROM python:3.11-slim
# git: the daemon mirrors and checks out repositories with it. bubblewrap: the local
# executor's sandbox. Versions come from the pinned Debian release of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid, so that a volume or bind mount can be owned by it on the host.
RUN groupadd --system --gid 10001 fasttrack-gitops \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/fasttrack-gitops \
       --no-create-home --shell /usr/sbin/nologin fasttrack-gitops \
    && mkdir -p /var/lib/fasttrack-gitops /etc/fasttrack-gitops \
    && chown fasttrack-gitops:fasttrack-gitops /var/lib/fasttrack-gitops

# The wheel is bind-mounted from the builder for this one step, so no layer keeps it.
RUN --mount=type=bind,from=builder,source=/dist,target=/tmp/dist \
    pip install --no-cache-dir /tmp/dist/*.whl

ENV FTG_CONFIG=/etc/fasttrack-gitops/serve.yaml \
    FTG_STATE_DIR=/var/lib/fasttrack-gitops \
    HOME=/var/lib/fasttrack-gitops \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

VOLUME /var/lib/fasttrack-gitops
USER 10001:10001
WORKDIR /var/lib/fasttrack-gitops
EXPOSE 8080

# /healthz answers 200 while serving and 503 while draining after SIGTERM; urlopen raises on both
# a refused connection and a 503. Python, because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# SIGTERM (docker stop) drains: no new jobs, running ones get shutdown_grace (30s by default)
# to finish. Give `docker stop -t` / stop_grace_period more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["fasttrack-gitops"]
CMD ["serve"]
