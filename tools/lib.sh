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

# --- A throw-away PostgreSQL cluster for the tests and benchmarks (README "PostgreSQL") ---
# initdb and postgres refuse to run as root: as root they run as the `postgres` user the Debian
# package creates, in a folder under /tmp that user can reach; otherwise as the calling user.

# pg_bin: the folder of the newest installed PostgreSQL's server programs.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# as_pg CMD...: runs CMD as the postgres user when we are root, else as ourselves.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_pg: initdb into a new folder under /tmp, start postgres on 127.0.0.1 and a free port
# (socket in that folder), wait until it accepts, export MES_TEST_PG (an admin URL, database
# `postgres`) and MES_TEST_PG_DIR. Stop it with stop_pg (also set a trap for failures).
start_pg() {
    local bin dir port
    bin="$(pg_bin)"
    [ -x "$bin/initdb" ] || { echo "error: PostgreSQL server programs not found (apt-get install postgresql)" >&2; return 1; }
    dir="$(mktemp -d /tmp/mes-pg.XXXXXX)"
    chmod 700 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if ! as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2; rm -rf "$dir"; return 1
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on" start >/dev/null; then
        cat "$dir/server.log" >&2; rm -rf "$dir"; return 1
    fi
    export MES_TEST_PG="postgresql://postgres@127.0.0.1:$port/postgres"
    export MES_TEST_PG_DIR="$dir"
    log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)"
}

# stop_pg: stops the cluster start_pg started and removes its folder (safe to call twice).
stop_pg() {
    [ -n "${MES_TEST_PG_DIR:-}" ] || return 0
    [ -d "$MES_TEST_PG_DIR/data" ] && as_pg "$(pg_bin)/pg_ctl" -D "$MES_TEST_PG_DIR/data" -m fast -w stop >/dev/null 2>&1
    rm -rf "$MES_TEST_PG_DIR"
    unset MES_TEST_PG MES_TEST_PG_DIR
}
