#!/bin/bash
# Install what the tests need, build, and run every test: the CUnit unit tests
# (also under valgrind), then the same unit tests and the integration suite
# against a real Prosody in an AddressSanitizer+UBSan build, then the
# integration suite against the normal build, and part of it under valgrind;
# then, in a Debian 13 tree, the build and unit tests with Debian 13's
# libraries, and the integration suite against Prosody 13 and ejabberd 26.
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/deps.sh

install_packages test

echo "==> build (warnings are errors)"
build_project build -Dwerror=true
echo "==> build with AddressSanitizer and UndefinedBehaviorSanitizer"
build_project build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
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

echo "==> integration tests, sanitizer build"
INVITES_API=$PWD/build-asan/src/invites-api /usr/bin/python3 -m pytest -q tests/integration
echo "==> integration tests"
INVITES_API=$PWD/build/src/invites-api /usr/bin/python3 -m pytest -v tests/integration
echo "==> integration tests under valgrind: the HTTP API and the ad-hoc commands (~2 min)"
INVITES_API_WRAPPER='valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite' \
    INVITES_API=$PWD/build/src/invites-api /usr/bin/python3 -m pytest -q \
    tests/integration/test_http_api.py tests/integration/test_adhoc.py

# The newer servers and the Debian 13 build run in a Debian 13 tree, built once
# and cached (tests/servers/trixie.sh). Without it (no network, debootstrap
# failed) those parts are skipped, each with the reason.
echo "==> Debian 13 tree: Prosody 13, ejabberd 26, Debian 13 build (tests/servers/trixie.sh)"
. tests/servers/trixie.sh
trixie_reason=""
if ! trixie_out=$(trixie_tree 2>&1); then
    trixie_reason=$(grep -m1 '^trixie tree unavailable' <<<"$trixie_out" || echo "trixie tree unavailable")
fi
[ -z "$trixie_out" ] || printf '%s\n' "$trixie_out"
if [ -n "$trixie_reason" ]; then
    for part in "the Debian 13 build" "the integration tests against Prosody 13" \
        "the integration tests against ejabberd 26"; do
        echo "==> SKIP $part: $trixie_reason"
    done
else
    TRIXIE_TREE=$TRIXIE_ROOT
    echo "==> Debian 13 build: libstrophe 0.14, libmicrohttpd 1.0, meson 1.7 (warnings are errors), unit tests"
    trixie_build_check
    echo "==> integration tests against Prosody 13"
    INVITES_API_SERVER=prosody13 INVITES_API=$PWD/build/src/invites-api \
        /usr/bin/python3 -m pytest -q tests/integration
    if why=$(/usr/bin/python3 tests/integration/servers.py daemon-lacks-privileged \
        "$PWD/build/src/invites-api"); then
        echo "==> SKIP the integration tests against ejabberd 26: $why"
        echo "==> ejabberd 26: the checks of the test server itself"
        INVITES_API_SERVER=ejabberd /usr/bin/python3 -m pytest -q tests/integration/test_harness.py
    else
        echo "==> integration tests against ejabberd 26 (~7 min: each start, ejabberdctl call and restart is slower)"
        INVITES_API_SERVER=ejabberd INVITES_API=$PWD/build/src/invites-api \
            /usr/bin/python3 -m pytest -q tests/integration
    fi
fi
