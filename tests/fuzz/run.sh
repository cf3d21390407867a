#!/bin/bash
# Build the libFuzzer targets with clang into build-fuzz/ and run each for
# SECONDS (default 15) from its seed corpus, new inputs going to a temporary
# directory. Exits 1 on the first crash, leak, UB or timeout, keeping that
# directory (the reproducer is the crash-*/leak-*/timeout-* file in it).
# Without clang it says so and exits 0. Usage: tests/fuzz/run.sh [SECONDS [TARGET...]]
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
seconds=${1:-15}
shift || true
targets=${*:-keys request config form}

if ! command -v clang >/dev/null; then
    echo "fuzz: clang is not installed; skipped"
    exit 0
fi
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dwerror=true -Dfuzz=true -Dtests=false >/dev/null
fi
if ! out=$(ninja -C build-fuzz $(for t in $targets; do echo "tests/fuzz/fuzz_$t"; done) 2>&1); then
    echo "$out" | tail -n 40 >&2
    echo "fuzz: building the targets failed" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/invites-api-fuzz.XXXXXX")
for t in $targets; do
    mkdir -p "$work/$t"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
    if ! (cd "$work" && "$root/build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" \
            -timeout=10 -print_final_stats=1 "${dict[@]}" "$work/$t" \
            "$root/tests/fuzz/corpus/$t") >"$work/$t.log" 2>&1; then
        tail -n 60 "$work/$t.log"
        echo "fuzz_$t failed; its log and reproducer are in $work" >&2
        exit 1
    fi
    echo "fuzz_$t: $(grep -E '^Done [0-9]+ runs' "$work/$t.log"), last" \
        "$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$work/$t.log" | tail -n 1)"
done
rm -rf "$work"
