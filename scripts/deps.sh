# Sourced by the other scripts: installs the Debian packages a step needs.
# Usage: install_packages build|demo|test|bench

BUILD_PKGS="gcc meson ninja-build pkg-config libstrophe-dev libexpat1-dev libmicrohttpd-dev libgnutls28-dev
libsodium-dev libsqlite3-dev libinih-dev libjansson-dev libcunit1-dev libidn-dev"
DEMO_PKGS="$BUILD_PKGS prosody prosody-modules curl"
TEST_PKGS="$DEMO_PKGS python3 python3-pytest python3-slixmpp lua-dbi-sqlite3 chromium sqlite3
valgrind openssl ca-certificates debootstrap"   # debootstrap: tests/servers/trixie.sh
TEST_PKGS="$TEST_PKGS clang libclang-rt-14-dev"   # libFuzzer targets (tests/fuzz)
BENCH_PKGS="$BUILD_PKGS prosody prosody-modules lua-dbi-sqlite3 python3 wrk util-linux"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local pkgs missing=""
    case "$1" in
        build) pkgs=$BUILD_PKGS ;;
        demo) pkgs=$DEMO_PKGS ;;
        test) pkgs=$TEST_PKGS ;;
        bench) pkgs=$BENCH_PKGS ;;
        *) echo "install_packages: unknown set $1" >&2; return 2 ;;
    esac
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "==> installing:$missing"
    as_root apt-get update -q
    # A package's install script must not leave a system Prosody running on
    # the standard ports: policy-rc.d forbids starting services meanwhile.
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        created=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    local rc=$?
    [ -n "$created" ] && as_root rm -f "$policy"
    return $rc
}

# Build into $1 with the meson options after it (-Dname=value), applied to an
# existing build directory too.
build_project() {
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null || return 1
    elif [ $# -gt 0 ]; then
        meson configure "$dir" "$@" >/dev/null || return 1
    fi
    ninja -C "$dir"
}
