#!/usr/bin/env bash
# The package as a user gets it: build the sdist and the wheel (python -m build, the wheel built from the sdist),
# `twine check` them, install the wheel (not editable) in a fresh virtual environment outside the source tree, and
# from a directory outside the tree run --version, schema, validate, run and serve --check against the examples.
# That proves the package data (the JSON Schemas under fasttrack_gitops/schemas) is inside the wheel and that
# nothing reaches back into the checkout. Leaves dist/ behind and nothing else in the tree; exits non-zero on any
# failure, naming the step.
#
#   scripts/check-wheel.sh            # the checkout's .venv (pip install -e '.[test]' has build and twine), else python3
#   PYTHON=python3.11 scripts/check-wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
if [ -n "${PYTHON:-}" ]; then
  python="$PYTHON"
elif [ -x "$repo/.venv/bin/python" ]; then
  python="$repo/.venv/bin/python"
else
  python=python3
fi

fail() { printf 'check-wheel: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '== %s\n' "$*"; }

command -v "$python" >/dev/null 2>&1 || fail "no Python at $python (make .venv as README's Set up says, or set PYTHON)"
"$python" -c 'import build, twine' 2>/dev/null \
  || fail "$python lacks build or twine: pip install build twine (or -e '.[test]', which has both)"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' fasttrack_gitops/__init__.py)"
[ -n "$version" ] || fail "no __version__ = \"...\" line in fasttrack_gitops/__init__.py"

tree_state() { git -C "$repo" status --porcelain --ignored --untracked-files=all -- . ':!dist' 2>/dev/null || true; }
before="$(tree_state)"

work="$(mktemp -d "${TMPDIR:-/tmp}/check-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
case "$work/" in "$repo"/*) fail "the temporary directory $work is inside the source tree; set TMPDIR elsewhere" ;; esac

step "build the sdist and the wheel of fasttrack-gitops $version (dist/)"
rm -rf dist
"$python" -m build --outdir dist . >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "python -m build"; }
wheel="dist/fasttrack_gitops-$version-py3-none-any.whl"
sdist="dist/fasttrack_gitops-$version.tar.gz"
[ -f "$wheel" ] || fail "python -m build made no $wheel (dist/ has: $(ls dist))"
[ -f "$sdist" ] || fail "python -m build made no $sdist (dist/ has: $(ls dist))"

step "twine check"
"$python" -m twine check --strict dist/* || fail "twine check: the metadata or the README would not render on PyPI"

step "the JSON Schemas and the console's templates and assets are in the wheel and the sdist"
"$python" - "$wheel" "$sdist" <<'PY' || fail "package data missing (above)"
import sys, tarfile, zipfile

wheel, sdist = sys.argv[1:]
wanted = [f"fasttrack_gitops/schemas/{name}.schema.json" for name in ("pipeline", "repository", "config")]
wanted += [f"fasttrack_gitops/daemon/web/templates/{name}.html" for name in ("base", "jobs", "job", "task", "login")]
wanted += [f"fasttrack_gitops/daemon/web/static/console.{ext}" for ext in ("js", "css")]
in_wheel = set(zipfile.ZipFile(wheel).namelist())
in_sdist = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
missing = [f"{wheel}: {f}" for f in wanted if f not in in_wheel] + [f"{sdist}: {f}" for f in wanted if f not in in_sdist]
for line in missing:
    print(f"missing {line}", file=sys.stderr)
sys.exit(1 if missing else 0)
PY

step "install the wheel in a fresh virtual environment outside the tree ($work/venv)"
"$python" -m venv "$work/venv" || fail "python -m venv $work/venv"
"$work/venv/bin/python" -m pip install --quiet "$repo/$wheel" || fail "pip install $wheel"
ftg="$work/venv/bin/fasttrack-gitops"
mkdir "$work/outside"
cd "$work/outside"
unset PYTHONPATH FTG_CONFIG
location="$("$work/venv/bin/python" -c 'import fasttrack_gitops; print(fasttrack_gitops.__file__)')"
case "$location" in "$work"/venv/*) ;; *) fail "fasttrack_gitops is imported from $location, not from the new environment" ;; esac

step "fasttrack-gitops --version"
got="$("$ftg" --version)" || fail "--version exited non-zero"
[ "$got" = "fasttrack-gitops $version" ] || fail "--version printed '$got', wanted 'fasttrack-gitops $version' (no git outside a checkout)"

step "fasttrack-gitops schema, schema config"
for name in pipeline config; do
  "$ftg" schema "$name" >"$work/$name.schema.json" || fail "schema $name exited non-zero"
  "$work/venv/bin/python" -c 'import json, sys; json.load(open(sys.argv[1]))' "$work/$name.schema.json" \
    || fail "schema $name printed no JSON"
done

step "fasttrack-gitops validate $repo/examples-repo"
"$ftg" validate "$repo/examples-repo" || fail "validate of the examples repository"

step "fasttrack-gitops run $repo/examples-repo/pipelines/train-compare.yaml"
"$ftg" run "$repo/examples-repo/pipelines/train-compare.yaml" --state-dir "$work/state" >"$work/run.log" 2>&1 \
  || { cat "$work/run.log" >&2; fail "run of the example pipeline"; }

step "fasttrack-gitops serve --check --config $repo/deploy/serve.yaml (dummy secrets, state in $work)"
# deploy/serve.yaml names no state_dir, so $FTG_STATE_DIR places it; each *_env key it names gets a dummy value.
secrets=()
while read -r name; do secrets+=("$name=dummy-for-check"); done \
  < <(sed -n 's/^[[:space:]]*[a-z_]*_env:[[:space:]]*\([A-Z_][A-Z0-9_]*\).*/\1/p' "$repo/deploy/serve.yaml")
[ ${#secrets[@]} -gt 0 ] || fail "deploy/serve.yaml names no *_env secret: the parse above is out of date"
env "${secrets[@]}" FTG_STATE_DIR="$work/serve-state" "$ftg" serve --check --config "$repo/deploy/serve.yaml" \
  || fail "serve --check of deploy/serve.yaml"

step "the image's entrypoint from the wheel: FTG_CONFIG=serve.yaml fasttrack-gitops serve, until /healthz answers"
# What the Dockerfile runs (ENTRYPOINT fasttrack-gitops, CMD serve, the config named by FTG_CONFIG), started from
# the installed wheel: a copy of deploy/serve.yaml listening on a free loopback port and following a local
# repository instead of github.com (nothing here reaches another host). SIGTERM must drain it to exit 0.
git init -q -b main "$work/repo" && git -C "$work/repo" -c user.name=check -c user.email=check@localhost \
  commit -q --allow-empty -m "an empty repository to follow"
port="$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
sed -e "s|^listen: .*|listen: \"127.0.0.1:$port\"|" -e "s|url: https://github.com/acme/ml-pipelines.git|url: $work/repo|" \
  "$repo/deploy/serve.yaml" >"$work/serve.yaml"
env "${secrets[@]}" FTG_STATE_DIR="$work/serve-state" FTG_CONFIG="$work/serve.yaml" "$ftg" serve >"$work/serve.log" 2>&1 &
daemon=$!
healthy=""
for _ in $(seq 1 150); do  # 30 s at most
  if "$work/venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$port/healthz" 2>/dev/null; then healthy=yes; break; fi
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.2
done
[ -n "$healthy" ] || { kill "$daemon" 2>/dev/null || true; cat "$work/serve.log" >&2; fail "serve from the wheel never answered /healthz"; }
for path in /login /static/console.js /static/console.css; do  # the console's templates and assets, from the wheel
  "$work/venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "http://127.0.0.1:$port$path" || { kill "$daemon" 2>/dev/null || true; cat "$work/serve.log" >&2; fail "the console's $path from the wheel"; }
done
kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
[ "$rc" = 0 ] || { cat "$work/serve.log" >&2; fail "serve from the wheel exited $rc after SIGTERM (0 expected: a clean drain)"; }

cd "$repo"
after="$(tree_state)"
if [ "$before" != "$after" ]; then
  diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
  fail "the check left files in the source tree beyond dist/ (above)"
fi
step "the wheel is good: $wheel"
