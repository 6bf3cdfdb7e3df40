#!/usr/bin/env bash
# Run throw-away CNCF distribution registries (Debian package docker-registry)
# on 127.0.0.1 for the integration tests.
#
#   registry.sh start NAME PORT [EXTRA_CONFIG_YAML]
#   registry.sh stop NAME
#   registry.sh stop-all
#   registry.sh status NAME
#
# State lives in ${IMAGELAYERS_TEST_STATE:-<repo>/.build/state}/NAME/:
#   config.yml   generated registry configuration
#   storage/     filesystem storage driver root
#   registry.log stdout+stderr of the registry (includes the HTTP access log)
#   registry.pid pid of the registry process
#
# EXTRA_CONFIG_YAML is deep-merged into the generated configuration (mappings
# merge recursively, everything else replaces), e.g. to add `auth:` or
# `http: {tls: ...}`. Merging needs PyYAML in ${PYTHON:-python3}.
# `http.addr` is always forced back to 127.0.0.1:PORT.
# REGISTRY_FRESH=1 empties NAME/storage before starting.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${IMAGELAYERS_TEST_STATE:-$REPO_ROOT/.build/state}"
PYTHON="${PYTHON:-python3}"
REGISTRY_BIN="${REGISTRY_BIN:-docker-registry}"
START_TIMEOUT="${REGISTRY_START_TIMEOUT:-30}"

die() { echo "registry.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,9p' "$0" >&2
    exit 2
}

check_name() {
    [[ "$1" =~ ^[A-Za-z0-9_.-]+$ ]] || die "invalid registry name: $1"
}

pid_alive() {
    local pidfile="$1"
    [[ -f "$pidfile" ]] || return 1
    local pid
    pid="$(cat "$pidfile")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

write_config() {
    local dir="$1" port="$2" extra="${3:-}"
    cat > "$dir/config.base.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
  fields:
    service: registry
    instance: $(basename "$dir")
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: imagelayers-test-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
    if [[ -z "$extra" ]]; then
        mv "$dir/config.base.yml" "$dir/config.yml"
        return
    fi
    [[ -f "$extra" ]] || die "extra config file not found: $extra"
    "$PYTHON" - "$dir/config.base.yml" "$extra" "$dir/config.yml" "127.0.0.1:$port" <<'PYEOF'
import sys
import yaml

base_path, extra_path, out_path, addr = sys.argv[1:5]


def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


with open(base_path) as f:
    base = yaml.safe_load(f)
with open(extra_path) as f:
    extra = yaml.safe_load(f) or {}
if not isinstance(extra, dict):
    sys.exit('extra config must be a YAML mapping')
config = merge(base, extra)
config.setdefault('http', {})['addr'] = addr  # never bind anything else
with open(out_path, 'w') as f:
    yaml.safe_dump(config, f, default_flow_style=False, sort_keys=False)
PYEOF
    rm -f "$dir/config.base.yml"
}

# Decide the URL scheme from the generated config (TLS may come from EXTRA).
registry_scheme() {
    if grep -qE '^[[:space:]]+tls:' "$1/config.yml"; then echo https; else echo http; fi
}

cmd_start() {
    [[ $# -ge 2 && $# -le 3 ]] || usage
    local name="$1" port="$2" extra="${3:-}"
    check_name "$name"
    [[ "$port" =~ ^[0-9]+$ ]] || die "invalid port: $port"
    command -v "$REGISTRY_BIN" >/dev/null || die "$REGISTRY_BIN not found (apt-get install docker-registry)"
    if [[ -n "$extra" ]]; then
        extra="$(cd "$(dirname "$extra")" && pwd)/$(basename "$extra")"
    fi

    local dir="$STATE/$name"
    mkdir -p "$dir"
    if pid_alive "$dir/registry.pid"; then
        echo "registry.sh: $name already running (pid $(cat "$dir/registry.pid")), restarting" >&2
        cmd_stop "$name"
    fi
    if [[ "${REGISTRY_FRESH:-0}" == 1 ]]; then
        rm -rf "$dir/storage"
    fi
    mkdir -p "$dir/storage"
    write_config "$dir" "$port" "$extra"

    local scheme url
    scheme="$(registry_scheme "$dir")"
    url="$scheme://127.0.0.1:$port/v2/"
    # Refuse to start if something else already answers on the port.
    if curl -sk -o /dev/null --max-time 2 "$url"; then
        die "port $port on 127.0.0.1 is already in use"
    fi

    : > "$dir/registry.log"
    # setsid: own process group, so the registry survives the calling shell
    # and is not hit by terminal signals sent to make.
    setsid "$REGISTRY_BIN" serve "$dir/config.yml" >> "$dir/registry.log" 2>&1 < /dev/null &
    echo $! > "$dir/registry.pid"

    local deadline=$((SECONDS + START_TIMEOUT)) code=""
    while (( SECONDS < deadline )); do
        if ! pid_alive "$dir/registry.pid"; then
            break
        fi
        # 200 without auth, 401 when an auth section was merged in.
        code="$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)"
        if [[ "$code" == 200 || ( "$code" == 401 && -n "$extra" ) ]]; then
            echo "registry.sh: $name up at $scheme://127.0.0.1:$port (state $dir)"
            return 0
        fi
        sleep 0.2
    done
    if pid_alive "$dir/registry.pid"; then
        echo "registry.sh: $name did not answer 200 on $url within ${START_TIMEOUT}s (last code: ${code:-none})" >&2
    else
        echo "registry.sh: $name exited before answering on $url" >&2
    fi
    echo "----- $dir/registry.log -----" >&2
    cat "$dir/registry.log" >&2 || true
    echo "----- end of log -----" >&2
    cmd_stop "$name" || true
    return 1
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local name="$1"
    check_name "$name"
    local dir="$STATE/$name" pidfile="$STATE/$name/registry.pid"
    if ! [[ -f "$pidfile" ]]; then
        echo "registry.sh: $name not running (no pid file)"
        return 0
    fi
    local pid
    pid="$(cat "$pidfile")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        # Only signal the pid we started, never by name.
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 5))
        while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "registry.sh: stopped $name (pid $pid)"
    else
        echo "registry.sh: $name not running (stale pid file)"
    fi
    rm -f "$pidfile"
}

cmd_stop_all() {
    [[ -d "$STATE" ]] || return 0
    local pidfile
    for pidfile in "$STATE"/*/registry.pid; do
        [[ -e "$pidfile" ]] || continue
        cmd_stop "$(basename "$(dirname "$pidfile")")"
    done
}

cmd_status() {
    [[ $# -eq 1 ]] || usage
    if pid_alive "$STATE/$1/registry.pid"; then
        echo "running (pid $(cat "$STATE/$1/registry.pid"))"
    else
        echo "stopped"
        return 1
    fi
}

[[ $# -ge 1 ]] || usage
action="$1"
shift
case "$action" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    stop-all) cmd_stop_all ;;
    status) cmd_status "$@" ;;
    *) usage ;;
esac
