#!/bin/bash
# Install what the tests need, build, and run every test: the CUnit unit tests
# (also under valgrind and in an AddressSanitizer+UBSan build), the fuzz
# targets briefly, the integration suite against a real Prosody 0.12 with the
# sanitizer build and part of it under valgrind with the normal build; then, in
# a Debian 13 tree, the build and unit tests with Debian 13's libraries, and the
# integration suite with the normal build against Prosody 13 and ejabberd 26.
#
# The suites against Prosody 13 and ejabberd spend most of their time waiting
# for their servers (an ejabberd start or restart takes seconds), so they run
# beside the Prosody 0.12 suites, each into a log of its own that is printed
# when it ends. The Debian 13 tree is built (or found) while the unit tests run.
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/deps.sh

install_packages test

logs=$(mktemp -d "${TMPDIR:-/tmp}/invites-api-test.XXXXXX")
declare -A job_pid job_title
# Run "$@" in the background as job $1 (title $2), its output kept for later.
start_job() {
    local name=$1 title=$2
    shift 2
    echo "==> started in the background: $title"
    "$@" >"$logs/$name.log" 2>&1 &
    job_pid[$name]=$!
    job_title[$name]=$title
}
# Wait for job $1, print its output, and fail as it failed.
finish_job() {
    local name=$1 rc=0
    wait "${job_pid[$name]}" || rc=$?
    unset "job_pid[$name]"
    echo "==> ${job_title[$name]}"
    cat "$logs/$name.log"
    [ $rc -eq 0 ] || { echo "==> FAILED ($rc): ${job_title[$name]}"; return $rc; }
}
# On the way out (a foreground step failed): each job still running gets
# SIGTERM, which pytest takes as Ctrl-C (tests/integration/conftest.py), so
# that its daemons and servers are stopped; then what it printed so far.
cleanup() {
    local name i
    for name in "${!job_pid[@]}"; do
        kill -TERM "${job_pid[$name]}" 2>/dev/null || true
    done
    for name in "${!job_pid[@]}"; do
        for i in $(seq 60); do
            kill -0 "${job_pid[$name]}" 2>/dev/null || break
            sleep 1
        done
        kill -KILL "${job_pid[$name]}" 2>/dev/null || true
        wait "${job_pid[$name]}" 2>/dev/null || true
        echo "==> stopped unfinished: ${job_title[$name]}"
        tail -n 40 "$logs/$name.log"
    done
    rm -rf "$logs"
}
trap cleanup EXIT

# The newer servers and the Debian 13 build run in a Debian 13 tree, built once
# and cached (tests/servers/trixie.sh). Without it (no network, debootstrap
# failed) those parts are skipped, each with the reason. The builder runs as
# its own script, as a user runs it: it checks each step itself and is not
# written for this script's set -e (under which a cleanup's harmless failure,
# an umount of what is already unmounted, ended it).
. tests/servers/trixie.sh
start_job tree "Debian 13 tree: Prosody 13, ejabberd 26, Debian 13 build (tests/servers/trixie.sh)" \
    tests/servers/trixie.sh build

echo "==> build (warnings are errors)"
build_project build -Dwerror=true
echo "==> build with AddressSanitizer and UndefinedBehaviorSanitizer"
build_project build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
# Each integration run gives out ports from a range of its own (harness.free_port()).
export INVITES_API_PORTS=20000-23999
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "==> unit tests"
meson test -C build --suite unit --print-errorlogs
echo "==> unit tests under valgrind"
meson test -C build --suite unit --print-errorlogs --timeout-multiplier 4 \
    --wrapper 'valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite'
echo "==> unit tests, sanitizer build"
meson test -C build-asan --suite unit --print-errorlogs
echo "==> fuzz targets, ${FUZZ_SECONDS:-15} s each (libFuzzer; tests/fuzz/README.md)"
tests/fuzz/run.sh "${FUZZ_SECONDS:-15}"

# A tree that cannot be had for a reason trixie.sh gives (no network, not
# root) skips those parts; trixie.sh failing without one is a failure of the run.
trixie_reason="" unexplained="" ejabberd_skipped=""
if ! finish_job tree; then
    if ! trixie_reason=$(grep -m1 '^trixie tree unavailable' "$logs/tree.log"); then
        trixie_reason="trixie tree unavailable: tests/servers/trixie.sh failed without a reason"
        unexplained=1
    fi
fi
newer=""
if [ -n "$trixie_reason" ]; then
    for part in "the Debian 13 build" "the integration tests against Prosody 13" \
        "the integration tests against ejabberd 26"; do
        echo "==> SKIP $part: $trixie_reason"
    done
else
    newer=1
    export TRIXIE_TREE=$TRIXIE_ROOT
    start_job prosody13 "integration tests against Prosody 13" \
        env INVITES_API_SERVER=prosody13 INVITES_API_PORTS=24000-27999 \
        INVITES_API="$PWD/build/src/invites-api" \
        /usr/bin/python3 -m pytest -q tests/integration
    if why=$(/usr/bin/python3 tests/integration/servers.py daemon-lacks-privileged \
        "$PWD/build/src/invites-api"); then
        echo "==> SKIP the integration tests against ejabberd 26: $why"
        ejabberd_skipped=$why
        start_job ejabberd "ejabberd 26: the checks of the test server itself" \
            env INVITES_API_SERVER=ejabberd INVITES_API_PORTS=28000-31999 \
            /usr/bin/python3 -m pytest -q \
            tests/integration/test_harness.py
    else
        start_job ejabberd "integration tests against ejabberd 26" \
            env INVITES_API_SERVER=ejabberd INVITES_API_PORTS=28000-31999 \
            INVITES_API="$PWD/build/src/invites-api" \
            /usr/bin/python3 -m pytest -q tests/integration
    fi
fi

echo "==> integration tests against Prosody 0.12, sanitizer build"
INVITES_API=$PWD/build-asan/src/invites-api /usr/bin/python3 -m pytest -q tests/integration
echo "==> integration tests against Prosody 0.12 under valgrind: the HTTP API and the ad-hoc commands"
INVITES_API_WRAPPER='valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite' \
    INVITES_API=$PWD/build/src/invites-api /usr/bin/python3 -m pytest -q \
    tests/integration/test_http_api.py tests/integration/test_adhoc.py

status=0
if [ -n "$newer" ]; then
    echo "==> Debian 13 build: libstrophe 0.14, libmicrohttpd 1.0, meson 1.7 (warnings are errors), unit tests"
    trixie_build_check || status=1
    finish_job prosody13 || status=1
    finish_job ejabberd || status=1
fi
if [ $status -ne 0 ] || [ -n "$unexplained" ]; then
    echo "==> FAILED: see above${unexplained:+ (and: $trixie_reason)}"
    exit 1
fi
if [ -n "$trixie_reason" ]; then
    echo "==> passed, but the Debian 13 build and the suites against Prosody 13 and ejabberd 26 were skipped: $trixie_reason"
elif [ -n "$ejabberd_skipped" ]; then
    echo "==> passed, but the suite against ejabberd 26 was skipped: $ejabberd_skipped"
else
    echo "==> passed: every part ran"
fi
