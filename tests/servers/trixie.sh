#!/bin/bash
# A Debian 13 (trixie) tree for the newer test servers (Prosody 13, ejabberd 26
# from trixie-backports) and for the Debian 13 build check. Built once with
# debootstrap and cached; rebuilt when the package list below changes.
#
#   tests/servers/trixie.sh [build]   build (or reuse) the tree; prints its path
#   tests/servers/trixie.sh path      prints the path the tree has or would have
#
# Sourced, it defines trixie_tree (same as build, the path in $TRIXIE_TREE) and
# trixie_build_check. The tree lives in $INVITES_API_TRIXIE_ROOT (default
# /var/cache/invites-api/trixie). If it cannot be built (no network, debootstrap
# failed), the build prints one line starting with "trixie tree unavailable:"
# on stderr and returns 1, so that callers skip what needs it and say why.
# Needs root (debootstrap, chroot, mount).

TRIXIE_ROOT=${INVITES_API_TRIXIE_ROOT:-/var/cache/invites-api/trixie}
TRIXIE_MIRROR=${INVITES_API_TRIXIE_MIRROR:-http://deb.debian.org/debian}
# Servers (trixie-backports) and the build dependencies of the Debian 13 build
# check. Part of the stamp: a change here rebuilds the tree.
TRIXIE_BPO_PKGS="prosody prosody-modules lua-dbi-sqlite3 ejabberd erlang-p1-sqlite3"
# zlib1g-dev: trixie's libstrophe.pc lists zlib in Requires.private (XEP-0138),
# but libstrophe-dev does not depend on zlib1g-dev: pkg-config fails without it.
TRIXIE_PKGS="gcc libc6-dev meson ninja-build pkg-config libstrophe-dev libexpat1-dev libmicrohttpd-dev
libgnutls28-dev libsodium-dev libsqlite3-dev libinih-dev libjansson-dev libcunit1-dev libidn-dev zlib1g-dev"
TRIXIE_STAMP_TEXT="trixie recipe 1
backports: $TRIXIE_BPO_PKGS
packages: $(echo $TRIXIE_PKGS)"

_trixie_say() { echo "trixie: $*" >&2; }

# Whatever runs with the tree as its root directory once the packages are in
# (an install script's epmd, ejabberd or prosody): SIGKILL it, by pid.
_trixie_end_processes() {
    local root=$1 pid left=""
    for pid in $(_trixie_users "$root"); do
        _trixie_say "ending $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid) left by an install script"
        kill -KILL "$pid" 2>/dev/null || true
        left=1
    done
    [ -z "$left" ] || sleep 0.5
}

# Nothing may be mounted below a tree that is about to be deleted or moved (a
# bind mount of a test dir would be deleted with it).
_trixie_mounted_below() {
    awk -v r="$1/" 'index($5 "/", r) == 1 { print $5 }' /proc/self/mountinfo
}

# Processes running in a tree (test servers of a run in progress): a rebuild
# would delete the files under their feet.
_trixie_users() {
    local pid
    for pid in /proc/[0-9]*; do
        if [ "$(readlink "$pid/root" 2>/dev/null)" = "$1" ]; then
            echo "${pid#/proc/}"
        fi
    done
}

_trixie_build_into() {
    local root=$1
    debootstrap --variant=minbase --include=ca-certificates trixie "$root" "$TRIXIE_MIRROR" \
        >"$root.log" 2>&1 || { tail -3 "$root.log" >&2; return 1; }
    echo "deb $TRIXIE_MIRROR trixie-backports main" >"$root/etc/apt/sources.list.d/backports.list"
    # No package may start a service (the servers run only under the harness).
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc" || return 1
    local rc=0
    chroot "$root" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $(echo $TRIXIE_PKGS) && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends -t trixie-backports $TRIXIE_BPO_PKGS && apt-get clean" \
        >>"$root.log" 2>&1 || rc=1
    [ $rc -eq 0 ] || tail -3 "$root.log" >&2
    _trixie_end_processes "$root"
    umount "$root/proc" || umount -l "$root/proc"
    return $rc
}

trixie_tree() {
    TRIXIE_TREE=$TRIXIE_ROOT
    if [ -f "$TRIXIE_ROOT/.invites-api-stamp" ] &&
        [ "$(cat "$TRIXIE_ROOT/.invites-api-stamp")" = "$TRIXIE_STAMP_TEXT" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "trixie tree unavailable: building it needs root" >&2; return 1
    fi
    if ! command -v debootstrap >/dev/null; then
        echo "trixie tree unavailable: debootstrap is not installed" >&2; return 1
    fi
    local new="$TRIXIE_ROOT.new" m
    for d in "$TRIXIE_ROOT" "$new"; do
        m=$(_trixie_mounted_below "$d")
        if [ -n "$m" ]; then
            echo "trixie tree unavailable: cannot rebuild $d, still mounted: $m" >&2; return 1
        fi
    done
    m=$(_trixie_users "$TRIXIE_ROOT" | tr '\n' ' ')
    if [ -n "$m" ]; then
        echo "trixie tree unavailable: cannot rebuild $TRIXIE_ROOT, in use by pids $m" >&2; return 1
    fi
    _trixie_say "building $TRIXIE_ROOT (debootstrap trixie + trixie-backports servers; ~1-2 min)"
    rm -rf "$new" && mkdir -p "$new" || return 1
    local start=$SECONDS
    if ! (
        trap '_trixie_end_processes "$new"; umount "$new/proc" 2>/dev/null || true' EXIT
        _trixie_build_into "$new"
    ); then
        echo "trixie tree unavailable: building it failed (network? see $new.log)" >&2
        rm -rf "$new"
        return 1
    fi
    m=$(_trixie_users "$TRIXIE_ROOT" | tr '\n' ' ')
    if [ -n "$m" ]; then
        echo "trixie tree unavailable: built $new, but $TRIXIE_ROOT is in use by pids $m" >&2
        return 1
    fi
    rm -rf "$TRIXIE_ROOT" && mv "$new" "$TRIXIE_ROOT" && mv "$new.log" "$TRIXIE_ROOT.log" || return 1
    printf '%s' "$TRIXIE_STAMP_TEXT" >"$TRIXIE_ROOT/.invites-api-stamp"
    _trixie_say "built in $((SECONDS - start)) s: $(du -sh "$TRIXIE_ROOT" | cut -f1)"
}

# The Debian 13 build check: the source ($1, default this checkout) configured
# with meson, built with ninja (warnings are errors) and its unit tests run,
# against Debian 13's libraries. The source is bind-mounted read-only at /src
# in a mount namespace of the build's own (with proc), so the mounts vanish
# with it and concurrent checks do not meet; the build directory is a new one
# under /build in the tree, removed afterwards.
trixie_build_check() {
    local root=${TRIXIE_TREE:-$TRIXIE_ROOT} src=${1:-} build rc=0
    [ -n "$src" ] || src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    mkdir -p "$root/src" "$root/build" || return 1
    build=$(mktemp -d "$root/build/invites-api.XXXXXX") || return 1
    unshare --mount --propagation private sh -c '
        r=$1 src=$2 b=$3
        mount --bind "$src" "$r/src" && mount -o remount,bind,ro "$r/src" &&
            mount -t proc proc "$r/proc" || exit 1
        exec chroot "$r" sh -c "meson setup -Dwerror=true $b /src >$b.setup.log 2>&1 ||
                { cat $b.setup.log; exit 1; }
            ninja -C $b && meson test -C $b --suite unit --print-errorlogs"' \
        trixie-build "$root" "$src" "${build#"$root"}" || rc=1
    rm -rf "$build" "$build.setup.log"
    return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    case "${1:-build}" in
        build) trixie_tree && echo "$TRIXIE_TREE" ;;
        path) echo "$TRIXIE_ROOT" ;;
        *) echo "usage: $0 [build|path]" >&2; exit 2 ;;
    esac
fi
