#!/bin/sh
# .dmp from the command line: capture -o x.dmp, `file` (Debian's magic, an
# independent check of the header) recognises it, `info` shows the bug
# check and pages, `verify` passes, and damaged files are reported.
#   test_dmp_cli.sh LIVEDUMP
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
n=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); echo "not ok $n - $1"
    sed 's/^/#   /' "$tmp/out" "$tmp/err" 2>/dev/null | head -n 30
    fails=$((fails + 1))
}

# run WANT_STATUS PATTERN ARGS...: exit status and a line of output matching PATTERN
run() {
    want=$1 pattern=$2
    shift 2
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ] && grep -q -- "$pattern" "$tmp/out" "$tmp/err"; then
        ok "livedump $* -> $got"
    else
        not_ok "livedump $*: status $got (want $want), no '$pattern'"
    fi
}

run 0 "dump written" capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --taskmgr -o "$tmp/x.dmp"

# file(1) knows the format from its own magic, not from us.
if command -v file >/dev/null 2>&1; then
    desc=$(file -b "$tmp/x.dmp")
    case $desc in
        "MS Windows 64bit crash dump"*) ok "file(1): $desc" ;;
        *) echo "$desc" >"$tmp/out"; not_ok "file(1) does not see a Windows crash dump" ;;
    esac
else
    not_ok "file(1) is not installed (tools/deps.sh installs it)"
fi

run 0 "bug check       0x00000161 (LIVE_SYSTEM_DUMP)" info "$tmp/x.dmp"
run 0 '("Taskmgr")' info "$tmp/x.dmp"
run 0 "dump type       5 (bitmap, SDMP)" info "$tmp/x.dmp"
run 0 "cpu-contexts" info "$tmp/x.dmp"
run 0 "(took the dump)" info "$tmp/x.dmp"
run 0 "present       PFN 0x100 - " info "$tmp/x.dmp"
pages=$(sed -n 's/^pages *\([0-9]*\) present.*/\1/p' "$tmp/out")
if [ -n "$pages" ] && [ "$pages" -gt 1000 ]; then ok "info reports $pages pages"; else not_ok "info pages: '$pages'"; fi
run 0 "ok: $pages pages re-read" verify "$tmp/x.dmp"

# The kernel image at 1 MiB is always in the dump.
run 0 "page 0x100000 (file offset" info "$tmp/x.dmp" --page 0x100abc
run 1 "not in the dump" info "$tmp/x.dmp" --page 0x7ffff000000
if command -v python3 >/dev/null 2>&1; then
    "$bin" info "$tmp/x.dmp" --json --page 0x100000 >"$tmp/out" 2>"$tmp/err"
    if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["bugcheck_code"] == "0x161", d["bugcheck_code"]
assert d["bugcheck_parameters"][0] == "0x5461736b6d6772"
assert d["dump_type"] == 5 and d["pages"] == int(sys.argv[2])
assert d["header_bytes"] + d["primary_bytes"] + d["secondary_bytes"] == d["file_bytes"]
assert len(d["contexts"]) == 2 and d["contexts"][0]["capturing"]
assert sum(r["pages"] for r in d["present"]) == d["pages"]
assert d["page"]["present"] and len(d["page"]["hex"]) == 8192
' "$tmp/out" "$pages" 2>>"$tmp/err"; then ok "info --json parses and agrees"; else not_ok "info --json"; fi
fi

# Damaged files: a clear message and status 1, never a crash.
head -c 100000 "$tmp/x.dmp" >"$tmp/cut.dmp"
run 1 "file truncated" info "$tmp/cut.dmp"
run 1 "file truncated" verify "$tmp/cut.dmp"
size=$(stat -c %s "$tmp/x.dmp")
head -c $((size - 100)) "$tmp/x.dmp" >"$tmp/tail.dmp"
run 1 "problem" verify "$tmp/tail.dmp"
printf 'MZ not a dump' >"$tmp/junk.dmp"
run 1 "shorter than the 0x2000-byte dump header" info "$tmp/junk.dmp"
cp "$tmp/x.dmp" "$tmp/count.dmp"
# TotalPresentPages (bitmap header + 0x28) off by one: verify says so.
printf '\377' | dd of="$tmp/count.dmp" bs=1 seek=$((0x2028)) conv=notrunc 2>/dev/null
run 1 "bitmap header counts" verify "$tmp/count.dmp"
run 1 "cannot open" info "$tmp/missing.dmp"

# Usage errors.
run 2 "info needs a FILE" info
run 2 "unknown option '--frob'" info "$tmp/x.dmp" --frob
run 2 "invalid physical address" info "$tmp/x.dmp" --page zz
run 2 "verify takes one FILE" verify "$tmp/x.dmp" "$tmp/x.dmp"
run 0 "usage: livedump info" info --help

echo "1..$n"
[ "$fails" -eq 0 ]
