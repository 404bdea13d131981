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

# u64 FILE OFFSET: the little-endian u64 at OFFSET, read with od, so the
# expected values come from the file and not from livedump's reader.
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }

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
# The bitmap header's own fields (FirstPage 0x2020, TotalPresentPages 0x2028,
# BitmapSize 0x2030) under their own names; no made-up "PFN limit".
run 0 "bitmap header   SDMP: FirstPage 0x$(printf %x "$(u64 "$tmp/x.dmp" $((0x2020)))"), TotalPresentPages $(u64 "$tmp/x.dmp" $((0x2028))), BitmapSize $(u64 "$tmp/x.dmp" $((0x2030))) bits" info "$tmp/x.dmp"
if grep -q "PFN limit" "$tmp/out"; then not_ok "info still says 'PFN limit'"; else ok "info: no 'PFN limit'"; fi

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
# the header fields as od reads them
bh = d["bitmap_header"]
assert bh == {"signature": "SDMP", "first_page": int(sys.argv[3]), "total_present_pages": int(sys.argv[4]),
              "bitmap_size": int(sys.argv[5])}, bh
assert d["number_of_pages"] == int(sys.argv[6]), d["number_of_pages"]
assert "pfn_limit" not in d
assert d["highest_present_pfn"] == max(r["first_pfn"] + r["pages"] - 1 for r in d["present"])
' "$tmp/out" "$pages" "$(u64 "$tmp/x.dmp" $((0x2020)))" "$(u64 "$tmp/x.dmp" $((0x2028)))" \
    "$(u64 "$tmp/x.dmp" $((0x2030)))" "$(u64 "$tmp/x.dmp" $((0x90)))" 2>>"$tmp/err"; then
        ok "info --json parses and agrees"
    else
        not_ok "info --json"
    fi
fi

# JSON stays valid whatever bytes the file name holds: ill-formed UTF-8
# (a stray 0xff 0xfe, a cut sequence, a surrogate) becomes U+FFFD as
# Python's decode(errors="replace") does, control characters (C0, ESC, C1
# U+0085, TAB, newline) are escaped, well-formed UTF-8 stays.
if command -v python3 >/dev/null 2>&1; then
    odd=$(printf 'n\377\376-\001\033[31m-\342\202-\302\205-\303\251-\t-\355\240\200-\nx.dmp')
    cp "$tmp/x.dmp" "$tmp/$odd"
    "$bin" info --json "$tmp/$odd" >"$tmp/out" 2>"$tmp/err"
    if python3 -c '
import json, os, sys
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"\n") and all(b >= 0x20 for b in raw[:-1]), "raw control bytes in the output"
d = json.loads(raw)  # strict: UTF-8 only, no raw control characters
want = os.fsencode(sys.argv[2]).decode("utf-8", "replace")
assert d["file"] == want, (d["file"], want)
assert "\ufffd" in want and "\u00e9" in want and "\x1b" in want and "\x85" in want
' "$tmp/out" "$tmp/$odd" 2>>"$tmp/err"; then
        ok "info --json: a file name with invalid UTF-8 and control bytes stays valid JSON"
    else
        not_ok "info --json with an odd file name"
    fi
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
# info shows TotalPresentPages as written, not the bitmap's count.
run 0 "TotalPresentPages $(u64 "$tmp/count.dmp" $((0x2028))), " info "$tmp/count.dmp"
# A byte between the end of the bitmap (0x2038 + BitmapSize/8) and FirstPage
# (both read from the header with od, not from livedump).
first_page=$(u64 "$tmp/x.dmp" $((0x2020)))
bitmap_end=$((0x2038 + $(u64 "$tmp/x.dmp" $((0x2030))) / 8))
if [ "$bitmap_end" -lt "$first_page" ]; then
    cp "$tmp/x.dmp" "$tmp/gap.dmp"
    printf 'X' | dd of="$tmp/gap.dmp" bs=1 seek=$((first_page - 1)) conv=notrunc 2>/dev/null
    run 1 "between the end of the bitmap and the first page" verify "$tmp/gap.dmp"
else
    not_ok "no gap between the bitmap (ends at $bitmap_end) and the first page ($first_page)"
fi
run 1 "cannot open" info "$tmp/missing.dmp"

# Usage errors.
run 2 "info needs a FILE" info
run 2 "unknown option '--frob'" info "$tmp/x.dmp" --frob
run 2 "invalid physical address" info "$tmp/x.dmp" --page zz
run 2 "verify takes one FILE" verify "$tmp/x.dmp" "$tmp/x.dmp"
run 0 "usage: livedump info" info --help

echo "1..$n"
[ "$fails" -eq 0 ]
