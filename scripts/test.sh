#!/bin/bash
# Install what the tests need, build, and run every test: the CUnit unit tests
# (also under valgrind), then the same unit tests and the integration suite
# against a real Prosody in an AddressSanitizer+UBSan build, then the
# integration suite against the normal build, and part of it under valgrind.
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
