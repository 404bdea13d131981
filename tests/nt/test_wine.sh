#!/bin/sh
# livedump.exe under wine (the command line only: no driver runs here).
# --help and the errors of a capture with no driver; the Win32 runtime's
# own test; and, given the Linux build's livedump, info and verify of
# dumps written on Linux: the same bytes on stdout and stderr, the same
# exit status. Skipped (exit 77) with the reason only if wine cannot run
# at all. TAP output.
#
# usage: test_wine.sh LIVEDUMP_EXE [LINUX_LIVEDUMP] [TEST_WIN_RUNTIME_EXE]
set -u
exe=$1
linux=${2:-}
runtime_test=${3:-}

wine=
for w in wine64 /usr/lib/wine/wine64 /usr/lib64/wine/wine64 wine; do
    if command -v "$w" >/dev/null 2>&1; then
        wine=$w
        break
    fi
done
if [ -z "$wine" ]; then
    echo "1..0 # SKIP no wine64 on this machine (Debian: apt-get install wine64)"
    exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A prefix of our own (not ~/.wine), quiet, no Mono/Gecko prompts, no X.
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
cp "$exe" "$work/livedump.exe"
[ -n "$runtime_test" ] && cp "$runtime_test" "$work/test-win-runtime.exe"
cd "$work" || exit 1

if ! "$wine" ./livedump.exe version >version.out 2>version.err; then
    echo "1..0 # SKIP wine ($wine) cannot run livedump.exe: $(tail -n 3 version.err | tr '\n' ' ')"
    exit 77
fi

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { # description, then a command whose success is the check
    d=$1
    shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}
win() { "$wine" ./livedump.exe "$@"; }

grep -q '^livedump ' version.out && ok "version runs under $wine" || not_ok "version runs under $wine"

win --help >help.out 2>&1
rc=$?
check "--help exits 0" [ "$rc" = 0 ]
check "--help lists capture, info, verify" grep -q 'capture' help.out
check "--help names no Linux-only command" sh -c '! grep -q "^  policy\|^  reports" help.out'
check "--help ends lines with LF only (binary stdout)" sh -c '! grep -q "$(printf "\r")" help.out'
win capture --help >chelp.out 2>&1
check "capture --help names the stop budget" grep -q -- '--stop-budget-ms' chelp.out

win capture --reports -o x.dmp >rep.out 2>&1
rc=$?
check "capture --reports: a usage error naming Windows" sh -c "[ $rc = 2 ] && grep -q 'not available on Windows' rep.out"
win capture --stop-budget-ms 500 -o x.dmp >bud.out 2>&1
rc=$?
check "capture --stop-budget-ms 500: refused (at most 100)" sh -c "[ $rc = 2 ] && grep -q 'stop budget' bud.out"
win capture -o nodriver.dmp >nod.out 2>&1
rc=$?
check "capture with no driver: fails, says the driver is not loaded" \
    sh -c "[ $rc = 1 ] && grep -q 'sc start livedump' nod.out"
check "capture with no driver: no file left behind" sh -c '[ ! -e nodriver.dmp ] && [ ! -e nodriver.dmp.partial ]'

if [ -n "$runtime_test" ]; then
    if "$wine" ./test-win-runtime.exe >rt.out 2>&1; then
        ok "Win32 runtime: $(grep -c '^ok' rt.out) checks"
    else
        sed 's/^/# /' rt.out
        not_ok "Win32 runtime"
    fi
else
    skip "Win32 runtime" "no test-win-runtime.exe given"
fi

if [ -z "$linux" ]; then
    skip "info/verify as on Linux" "no Linux livedump given (meson setup ... -Dlinux_cli=PATH; tools/test.sh does)"
else
    # Dumps written on Linux: a bitmap dump with everything, a mini dump,
    # and a damaged copy; the same commands on both builds, same bytes.
    "$linux" capture --machine sim --memory 64M --cpus 3 --seed 5 --hypervisor --hv-pages -o full.dmp \
        --events none --quiet --no-abort-if-memory-pressure --taskmgr >/dev/null 2>&1 || not_ok "Linux capture (full)"
    "$linux" capture --machine sim --memory 64M --cpus 2 --type mini -o mini.dmp \
        --events none --quiet --no-abort-if-memory-pressure >/dev/null 2>&1 || not_ok "Linux capture (mini)"
    head -c 70000 full.dmp >cut.dmp
    for args in "info --json full.dmp" "info full.dmp" "verify full.dmp" "info --json --page 0x100000 full.dmp" "info --page 0x100000 full.dmp" \
                "info --json mini.dmp" "verify mini.dmp" "info --json --page 0x100000 mini.dmp" "info --json --page 0x2000 mini.dmp" \
                "info --json cut.dmp" "verify cut.dmp" "info --json absent.dmp" "info" "verify --bogus x"; do
        # shellcheck disable=SC2086
        "$linux" $args >l.out 2>l.err
        lrc=$?
        # shellcheck disable=SC2086
        win $args >w.out 2>w.err
        wrc=$?
        if [ "$lrc" = "$wrc" ] && cmp -s l.out w.out && cmp -s l.err w.err; then
            ok "'$args': same output (exit $lrc, $(wc -c <l.out) bytes)"
        else
            not_ok "'$args': differs (exit $lrc vs $wrc)"
            cmp l.out w.out | sed 's/^/# /'
            cmp l.err w.err | sed 's/^/# /'
        fi
    done
fi
echo "1..$n"
[ "$failed" = 0 ]
