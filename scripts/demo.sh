#!/bin/bash
# Quick start: install what is needed, build, start a throwaway Prosody on
# loopback with the invites modules and this component declared, start the
# daemon, create an API key and ask the API for an invite.
#
# Everything lives in a temporary directory. With a terminal (or --wait), the
# services keep running until Ctrl-C or SIGTERM so the invite URL can be
# opened; otherwise they stop at the end and the directory is removed.
# Ports: DEMO_PORT_BASE (default 47000) + 222, 280, 347, 281.
set -euo pipefail

WAIT=
[ -t 0 ] && WAIT=1
case "${1:-}" in
    --wait) WAIT=1 ;;
    "") ;;
    *) echo "usage: $0 [--wait]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
. scripts/deps.sh

BASE=${DEMO_PORT_BASE:-47000}
C2S=$((BASE + 222)) XMPP_HTTP=$((BASE + 280)) COMPONENT=$((BASE + 347)) API=$((BASE + 281))
BUILD=${BUILD_DIR:-build}

install_packages demo
build_project "$BUILD" >/dev/null
BIN=$(realpath "$BUILD")/src/invites-api

DIR=$(mktemp -d /tmp/invites-api-demo.XXXXXX)
SECRET=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
cleanup() {
    # Never stop before rm: the directory holds the secrets (set -e is on, and
    # a process killed by the signal exits non-zero).
    if [ -n "${DAEMON_PID:-}" ]; then kill "$DAEMON_PID" 2>/dev/null || true; wait "$DAEMON_PID" 2>/dev/null || true; fi
    if [ -n "${PROSODY_PID:-}" ]; then kill "$PROSODY_PID" 2>/dev/null || true; wait "$PROSODY_PID" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $C2S $XMPP_HTTP $COMPONENT $API; do
    port_free "$p" || { echo "port $p is in use: set DEMO_PORT_BASE to another value" >&2; exit 1; }
done

# Prosody: the component's JID must be an admin of the VirtualHost, or
# create-account answers "forbidden".
cat > "$DIR/prosody.cfg.lua" <<CFG
pidfile = "$DIR/prosody.pid"
data_path = "$DIR/data"
daemonize = false
run_as_root = true
modules_enabled = { "disco", "adhoc", "invites", "invites_adhoc", "invites_register",
                    "http", "invites_page" }
modules_disabled = { "s2s", "tls" }
interfaces = { "127.0.0.1" }
c2s_ports = { $C2S }
http_ports = { $XMPP_HTTP }
http_interfaces = { "127.0.0.1" }
https_ports = { }
component_ports = { $COMPONENT }
component_interfaces = { "127.0.0.1" }
log = { info = "$DIR/prosody.log" }
VirtualHost "localhost"
  admins = { "invites.localhost" }
Component "invites.localhost"
  component_secret = "$SECRET"
CFG
mkdir -m 700 "$DIR/data"

cat > "$DIR/component.cfg" <<CFG
[component]
jid = invites.localhost
secret = $SECRET
server = 127.0.0.1
port = $COMPONENT
hosts = localhost

[http]
bind = 127.0.0.1
port = $API

[keys]
database = $DIR/keys.sqlite
CFG
chmod 600 "$DIR/component.cfg"

wait_for() { # FILE PATTERN SECONDS
    for _ in $(seq $(($3 * 10))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for \"$2\" in $1:" >&2; tail -20 "$1" >&2; return 1
}

echo "==> starting Prosody on 127.0.0.1 (component port $COMPONENT)"
prosody --config "$DIR/prosody.cfg.lua" -F >"$DIR/prosody.out" 2>&1 &
PROSODY_PID=$!
for _ in $(seq 100); do port_free "$COMPONENT" || break; sleep 0.1; done

echo "==> starting invites-api (HTTP port $API)"
"$BIN" -c "$DIR/component.cfg" serve 2>"$DIR/invites-api.log" &
DAEMON_PID=$!
wait_for "$DIR/invites-api.log" "connected to" 15

echo "==> creating an API key:  invites-api -c component.cfg create localhost \"Quick start\""
KEY=$("$BIN" -c "$DIR/component.cfg" create localhost "Quick start")
echo "    $KEY   (shown once: only its hash is stored)"

URL_BASE="http://127.0.0.1:$API/invites_api"
echo "==> curl -i \"$URL_BASE?key=ID/SECRET\""
curl -sS -i "$URL_BASE?key=$KEY" | tee "$DIR/answer" | sed 's/^/    /'
STATUS=$(head -1 "$DIR/answer" | cut -d' ' -f2)
LOCATION=$(grep -i '^location:' "$DIR/answer" | cut -d' ' -f2 | tr -d '\r')
if [ "$STATUS" != 201 ] || [ -z "$LOCATION" ]; then
    echo "expected 201 with a Location; daemon log:" >&2; tail -20 "$DIR/invites-api.log" >&2
    exit 1
fi
echo
echo "201 Created. Invite URL: $LOCATION"

if [ -n "$WAIT" ]; then
    echo "Open it in a browser; a bookmark to $URL_BASE?key=$KEY&redirect=true"
    echo "makes a fresh invite on every click. Press Ctrl-C to stop Prosody and the daemon."
    wait "$DAEMON_PID"
else
    echo "(Prosody and the daemon stop now; run with --wait to keep them running.)"
fi
