# Shared by scripts/canopy-run and scripts/canopy-test (sourced, not run).
# Needs only bash, python3 (3.11+) and, for missing Debian packages, root and apt-get.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

_APT_UPDATED=""
apt_install() {
    # apt-get update once per run, then install the named Debian packages.
    is_root || die "run as root, or install these Debian packages first: $*"
    if [ -z "$_APT_UPDATED" ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        _APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# Stage timing: `stage NAME` starts a stage (ending the previous one); `stage_end` ends the last.
_STAGE_NAME=""
_STAGE_START=0
_STAGE_REPORT=""
stage() {
    stage_end
    _STAGE_NAME="$1"
    _STAGE_START=$(date +%s)
    say "$1"
}
stage_end() {
    if [ -n "$_STAGE_NAME" ]; then
        local took=$(($(date +%s) - _STAGE_START))
        printf '    [%s: %ss]\n' "$_STAGE_NAME" "$took" >&2
        _STAGE_REPORT+="$(printf '  %-28s %5ss' "$_STAGE_NAME" "$took")"$'\n'
        _STAGE_NAME=""
    fi
}
stage_report() {
    stage_end
    printf 'Stage durations:\n%s' "$_STAGE_REPORT" >&2
}

ensure_python() {
    command -v python3 >/dev/null || die "python3 (3.11 or newer) is needed"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "python3 is $(python3 -V 2>&1); Canopy needs 3.11 or newer"
}

# ensure_venv EXTRAS: create .venv if missing and `pip install -e .[EXTRAS]` unless the stamp
# file says this pyproject.toml was already installed with these extras.
ensure_venv() {
    local extras="${1:-}"
    ensure_python
    if [ ! -x "$PY" ]; then
        say "creating $VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            # Debian splits venv/ensurepip into python3-venv (python3.X-venv on some releases).
            local minor
            minor="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt_install python3-venv || true
            python3 -m venv "$VENV" 2>/dev/null || { apt_install "python${minor}-venv" && python3 -m venv "$VENV"; }
        fi
    fi
    local hash stamp spec
    hash="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    stamp="$VENV/.canopy-installed${extras:+-$extras}"
    # A dev install covers the plain one.
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
        return 0
    fi
    if [ -z "$extras" ] && [ -f "$VENV/.canopy-installed-dev" ] && [ "$(cat "$VENV/.canopy-installed-dev")" = "$hash" ]; then
        return 0
    fi
    say "pip install -e $spec"
    local log="$VENV/pip-install.log"
    if ! (cd "$ROOT" && "$PY" -m pip install -q --disable-pip-version-check -e "$spec") >"$log" 2>&1; then
        cat "$log" >&2
        die "pip install -e $spec failed (log above, also in $log)"
    fi
    echo "$hash" >"$stamp"
}
