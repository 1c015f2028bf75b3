# Shared helpers for the tools/ scripts. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.build/venv"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ensure_apt PKG... : installs the Debian packages that are missing.
# As root it runs apt-get; otherwise it prints the exact sudo line and exits 1.
ensure_apt() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Missing system packages. Run:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    log "installing ${missing[*]} (apt-get)"
    local attempt
    for attempt in 1 2 3 4 5; do
        if { [ -n "${APT_UPDATED:-}" ] || apt-get update -qq; } &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
            APT_UPDATED=1
            return 0
        fi
        log "apt-get failed (attempt $attempt; another dpkg may hold the lock); retrying in 5 s"
        sleep 5
    done
    echo "error: could not install ${missing[*]}" >&2
    exit 1
}

# ensure_venv: the Python test peers in a venv under .build/.
ensure_venv() {
    local stamp="$VENV/.peers-installed"
    if [ -x "$VENV/bin/python3" ] && [ -f "$stamp" ]; then return 0; fi
    log "creating the Python test venv at $VENV (pymodbus, asyncua, o6, selenium, pytest)"
    mkdir -p "$ROOT/.build"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check pymodbus asyncua o6 selenium pytest
    touch "$stamp"
}
