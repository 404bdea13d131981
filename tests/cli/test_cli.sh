#!/bin/sh
# The livedump command: exit statuses, error messages, and that a capture
# leaves exactly one 0600 file under its final name.
#   test_cli.sh LIVEDUMP PREAD_EIO_SHIM CREATE_ERRNO_SHIM ENOSPC_STATE_SHIM SLOW_PARTIAL_SHIM
set -u
bin=$1
eio_shim=$2
create_shim=$3
enospc_shim=$4
slow_shim=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Real machines' locks (one live dump at a time) go here, not to /run.
export LIVEDUMP_LOCK_DIR="$tmp/lock"
fails=0
n=0

# expect STATUS PATTERN -- ARGS...: exit status and a line of stderr matching PATTERN.
# With bin_env set (VAR=value words), livedump alone runs with those.
bin_env=
expect() {
    want=$1 pattern=$2
    shift 3
    n=$((n + 1))
    if [ -n "$bin_env" ]; then
        env $bin_env "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    else
        "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    fi
    got=$?
    if [ "$got" -ne "$want" ] || ! grep -q -- "$pattern" "$tmp/err" "$tmp/out"; then
        echo "not ok $n - livedump $*: status $got (want $want), output:"
        sed 's/^/#   /' "$tmp/err" "$tmp/out" | head -n 20
        fails=$((fails + 1))
    else
        echo "ok $n - livedump $* -> $got"
    fi
}

expect 2 "usage: livedump COMMAND" -- 
expect 0 "capture" -- --help
expect 2 "unknown command 'nope'" -- nope
expect 2 "capture needs --machine" -- capture -o "$tmp/a.raw"
expect 2 "unknown machine 'vax'" -- capture --machine vax -o "$tmp/a.raw"
expect 2 "capture needs -o FILE" -- capture --machine sim
expect 2 "option '--memory' needs a value" -- capture --machine sim -o "$tmp/a.raw" --memory
expect 2 "invalid memory size: '12Q'" -- capture --machine sim -o "$tmp/a.raw" --memory 12Q
expect 2 "invalid dump type" -- capture --machine sim -o "$tmp/a.raw" --type huge
expect 2 "invalid lkd() option" -- capture --machine sim -o "$tmp/a.raw" --lkd 3
expect 2 "unknown format 'zip'" -- capture --machine sim -o "$tmp/a.raw" --format zip
expect 2 "unknown option '--frobnicate'" -- capture --machine sim -o "$tmp/a.raw" --frobnicate
expect 2 "at least 64M" -- capture --machine sim -o "$tmp/a.raw" --memory 1M
expect 2 "has at most 128G" -- capture --machine sim -o "$tmp/a.raw" --memory 1T
# Options that do not go together, and single-value options given twice,
# are usage errors that name them.
expect 2 "option '--user-pages' does not go with '--type mini'" -- capture --machine sim -o "$tmp/a.raw" --type mini --user-pages
expect 2 "option '--hv-pages' does not go with '--type kernel-stacks'" -- capture --machine sim -o "$tmp/a.raw" --type kernel-stacks --hv-pages
expect 2 "option '--lkd' does not go with '--type full'" -- capture --machine sim -o "$tmp/a.raw" --lkd 1 --type full
expect 2 "option '--taskmgr' does not go with '--param1'" -- capture --machine sim -o "$tmp/a.raw" --taskmgr --param1 5
expect 2 "option '-o' is given twice" -- capture --machine sim -o "$tmp/a.raw" -o "$tmp/a2.raw"
expect 2 "option '--output' is given twice" -- capture --machine sim -o "$tmp/a.raw" --output "$tmp/a2.raw"
expect 2 "option '--machine' is given twice" -- capture --machine sim --machine kcore -o "$tmp/a.raw"
expect 2 "option '--memory' is given twice" -- capture --machine sim --memory 128M --memory 256M -o "$tmp/a.raw"
expect 2 "option '--type' is given twice" -- capture --machine sim --type mini --type full -o "$tmp/a.raw"
expect 2 "option '--kcore' is given twice" -- capture --machine kcore --kcore "$tmp/k1" --kcore "$tmp/k2" -o "$tmp/a.elf"
expect 2 "option '--abort-if-memory-pressure' does not go with '--no-abort-if-memory-pressure'" -- capture --machine sim -o "$tmp/a.raw" --abort-if-memory-pressure --no-abort-if-memory-pressure
n=$((n + 1))
if [ ! -e "$tmp/a.raw" ] && [ ! -e "$tmp/a2.raw" ] && [ ! -e "$tmp/a.elf" ]; then echo "ok $n - usage errors create nothing"; else echo "not ok $n - usage errors created: $(ls "$tmp")"; fails=$((fails + 1)); fi
# Abort if memory pressure is the default, as in Task Manager: a 128 MiB
# machine has 46 MiB free, less than its dump's buffers and the low-memory
# reserve. --no-abort-if-memory-pressure takes a partial dump instead.
expect 1 "under memory pressure: 46 MiB available" -- capture --machine sim --memory 128M --events none -o "$tmp/p.raw"
n=$((n + 1))
if [ ! -e "$tmp/p.raw" ] && [ ! -e "$tmp/p.raw.partial" ]; then echo "ok $n - nothing written under memory pressure"; else echo "not ok $n - p.raw written"; fails=$((fails + 1)); fi
expect 0 "left out [1-9]" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/p.raw"
rm -f "$tmp/p.raw"
# Hypervisor pages asked of a machine without a hypervisor: said, and the
# dump's comment does not claim them.
expect 0 "runs no hypervisor: the dump holds none" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --hv-pages -o "$tmp/hv.dmp"
expect 0 "type=full hv-unavailable" -- info "$tmp/hv.dmp"
rm -f "$tmp/hv.dmp"
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/a.raw"
# Numbers: decimal unless 0x, no white space, no sign.
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --type mini --bugcheck-code 0161 --param2 0x1F -o "$tmp/bc.dmp"
expect 0 "bug check       0x000000A1" -- info "$tmp/bc.dmp"
expect 0 "parameter 2   0x000000000000001f" -- info "$tmp/bc.dmp"
expect 2 "invalid bug check code: ' 161'" -- capture --machine sim -o "$tmp/x.dmp" --bugcheck-code " 161"
expect 2 "invalid bug check code: '+161'" -- capture --machine sim -o "$tmp/x.dmp" --bugcheck-code "+161"
expect 2 "invalid bug check code: '0x'" -- capture --machine sim -o "$tmp/x.dmp" --bugcheck-code "0x"
expect 2 "invalid bug check parameter: '0x-1'" -- capture --machine sim -o "$tmp/x.dmp" --param1 "0x-1"
expect 2 "invalid memory size: ' -1'" -- capture --machine sim -o "$tmp/x.raw" --memory " -1"
expect 2 "invalid memory size: ' 128M'" -- capture --machine sim -o "$tmp/x.raw" --memory " 128M"

# info --json stays valid JSON when a page cannot be read (EIO from the shim).
n=$((n + 1))
json_ok() { python3 -c 'import json,sys; json.load(sys.stdin)'; }
first=$("$bin" info --json "$tmp/bc.dmp" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["present"][0]["first_pfn"] * 4096, d["first_page_offset"])')
addr=${first% *} off=${first#* }
LD_PRELOAD="$eio_shim" LD_TEST_EIO_AT=$off ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    "$bin" info --json --page "$addr" "$tmp/bc.dmp" >"$tmp/out" 2>"$tmp/err"
got=$?
if [ "$got" -eq 1 ] && grep -q "cannot read page" "$tmp/err" && json_ok <"$tmp/out"; then
    echo "ok $n - info --json with a page read error: valid JSON, status 1"
else
    echo "not ok $n - info --json with a page read error: status $got, output:"
    sed 's/^/#   /' "$tmp/err" "$tmp/out" | cut -c1-200 | head -n 20
    fails=$((fails + 1))
fi
n=$((n + 1))
if "$bin" info --json --page "$addr" "$tmp/bc.dmp" | json_ok; then
    echo "ok $n - info --json --page: valid JSON"
else
    echo "not ok $n - info --json --page: invalid JSON"; fails=$((fails + 1))
fi

n=$((n + 1))
mode=$(stat -c %a "$tmp/a.raw" 2>/dev/null)
if [ "$mode" = 600 ] && [ "$(ls "$tmp" | grep -c partial)" = 0 ]; then
    echo "ok $n - dump is 0600 and no partial file is left"
else
    echo "not ok $n - dump mode '$mode', files: $(ls "$tmp")"
    fails=$((fails + 1))
fi
# An existing file is never overwritten.
expect 1 "cannot create" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/a.raw"
# A symlink as output is refused, and its target untouched.
ln -s "$tmp/target" "$tmp/link"
expect 1 "cannot create" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/link"
n=$((n + 1))
if [ -e "$tmp/target" ]; then
    echo "not ok $n - the symlink's target was created"
    fails=$((fails + 1))
else
    echo "ok $n - the symlink's target was not created"
fi
# check WHAT CONDITION: one TAP line
check() {
    n=$((n + 1))
    if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1 ($(ls "$tmp" | tr '\n' ' '))"; fails=$((fails + 1)); fi
}
# wait_for FILE: up to 20 s for FILE to appear
wait_for() {
    i=0
    while [ ! -e "$1" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
}
# A writer killed mid-capture leaves its .partial; it does not block the name.
"$bin" capture --machine sim --memory 2G --events none -o "$tmp/k.raw" >/dev/null 2>&1 &
pid=$!
wait_for "$tmp/k.raw.partial"
kill -KILL $pid; wait $pid 2>/dev/null
check "a SIGKILLed capture left k.raw.partial" '[ -e "$tmp/k.raw.partial" ] && [ ! -e "$tmp/k.raw" ]'
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/k.raw"
check "the stale .partial is gone, k.raw is there" '[ -f "$tmp/k.raw" ] && [ ! -e "$tmp/k.raw.partial" ]'
rm -f "$tmp/k.raw"
# A .partial a live writer holds (its flock) is named as the obstacle.
flock "$tmp/l.raw.partial" sleep 30 &
lpid=$!
wait_for "$tmp/l.raw.partial"
sleep 0.2
expect 1 "l.raw.partial' is being written by another running livedump" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/l.raw"
kill $lpid; wait $lpid 2>/dev/null
rm -f "$tmp/l.raw.partial"
# Errors named for what they are, the OS error in words. A read-only file
# system: EROFS injected by the create_errno shim (creating a file whose
# path holds MATCH fails), and a real read-only mount where one can be
# made. A name too long; a long valid one (252 bytes, so NAME.partial would
# be too long) works.
# with_create_errno ERRNO MATCH: livedump, run through the shim, as $tmp/shimmed
with_create_errno() {
    {
        echo '#!/bin/sh'
        echo "LD_TEST_CREATE_ERRNO=$1 LD_TEST_CREATE_MATCH='$2' LD_PRELOAD='$create_shim' \\"
        echo "    ASAN_OPTIONS=\"\${ASAN_OPTIONS:-}:verify_asan_link_order=0\" exec '$real_bin' \"\$@\""
    } >"$tmp/shimmed"
    chmod +x "$tmp/shimmed"
}
real_bin=$bin
with_create_errno 30 ro.raw # EROFS
bin=$tmp/shimmed
expect 1 "cannot create '$tmp/ro.raw': Read-only file system (STATUS_MEDIA_WRITE_PROTECTED, 0xC00000A2)" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/ro.raw"
bin=$real_bin
check "nothing left by the read-only capture" '[ -z "$(ls "$tmp" | grep "^ro\.raw")" ]'
with_create_errno 30 ro-policy # EROFS when policy set writes its file
bin=$tmp/shimmed
expect 1 "cannot write '$tmp/ro-policy.conf': Read-only file system (STATUS_MEDIA_WRITE_PROTECTED, 0xC00000A2)" -- policy --policy "$tmp/ro-policy.conf" set FullLiveReportsMax 3
bin=$real_bin
n=$((n + 1))
if [ "$(id -u)" = 0 ] && mkdir "$tmp/rofs" && unshare -m true 2>/dev/null; then
    unshare -m sh -c "mount -t tmpfs -o ro tmpfs '$tmp/rofs' || exit 77
        '$bin' capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o '$tmp/rofs/x.raw'" >"$tmp/out" 2>"$tmp/err"
    st=$?
    if [ $st = 77 ]; then
        echo "ok $n # SKIP no read-only mount here"
    elif [ $st = 1 ] && grep -q "Read-only file system (STATUS_MEDIA_WRITE_PROTECTED, 0xC00000A2)" "$tmp/err"; then
        echo "ok $n - a real read-only mount: STATUS_MEDIA_WRITE_PROTECTED"
    else
        echo "not ok $n - a real read-only mount: status $st"; sed 's/^/#   /' "$tmp/err"; fails=$((fails + 1))
    fi
else
    echo "ok $n # SKIP not root or no mount namespace: no read-only mount"
fi
long=$(printf '%0252d' 0)
toolong=$(printf '%0300d' 0)
expect 1 "cannot create '$tmp/$toolong.raw': File name too long (STATUS_NAME_TOO_LONG, 0xC0000106)" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/$toolong.raw"
expect 1 "File name too long (STATUS_NAME_TOO_LONG, 0xC0000106)" -- policy --policy "$tmp/$toolong.conf" set FullLiveReportsMax 3
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/$long"
check "a 252-byte name: the dump is there, 0600, and no .partial" \
    '[ "$(stat -c %a "$tmp/$long")" = 600 ] && [ -z "$(ls "$tmp" | grep partial)" ]'
rm -f "$tmp/$long"
expect 0 "FullLiveReportsMax = 3" -- policy --policy "$tmp/$long" set FullLiveReportsMax 3
rm -f "$tmp/$long"
# SIGINT, SIGTERM, SIGHUP during a capture: no file is left, not even .partial.
for sig in INT TERM HUP; do
    env --default-signal=$sig "$bin" capture --machine sim --memory 2G --events none -o "$tmp/i.raw" >/dev/null 2>"$tmp/i.err" &
    pid=$!
    wait_for "$tmp/i.raw.partial"
    kill -$sig $pid; wait $pid
    st=$?
    check "SIG$sig during a capture: exit $st, no i.raw or i.raw.partial, says interrupted" \
        '[ $st = 1 ] && [ ! -e "$tmp/i.raw" ] && [ ! -e "$tmp/i.raw.partial" ] && grep -q "interrupted by signal" "$tmp/i.err"'
    rm -f "$tmp/i.raw" "$tmp/i.raw.partial"
done
expect 0 '"id":167' -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events json -o "$tmp/b.raw"
# The extension picks the ELF writer: the file starts with an ELF core header.
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/c.elf"
n=$((n + 1))
if [ "$(od -An -tx1 -N18 "$tmp/c.elf" 2>/dev/null | tr -d ' \n')" = 7f454c460201010000000000000000000400 ]; then
    echo "ok $n - c.elf is an ELF64 little-endian ET_CORE file"
else
    echo "not ok $n - c.elf header: $(od -An -tx1 -N18 "$tmp/c.elf" 2>&1)"
    fails=$((fails + 1))
fi

# The Linux backend: a missing /proc/kcore is a clear error, not a crash.
expect 1 "this kernel was built without /proc/kcore" -- capture --machine kcore --kcore "$tmp/no-kcore" -o "$tmp/k.elf"
if [ ! -e /proc/kcore ]; then
    # this host's own kernel has none (the build machines' kernels)
    expect 1 "/proc/kcore does not exist" -- capture --machine kcore -o "$tmp/k.elf"
fi
expect 2 "invalid process id" -- capture --machine kcore --stop-pid 0 -o "$tmp/k.elf"
# One live dump at a time per real machine: while another process holds the
# machine's lock a second kcore capture is refused (before it opens
# anything), or waits with --wait; a SIGKILLed holder leaves it free; the
# simulated machine (one per process) takes no lock.
hold_lock() { # SECONDS: hold kcore's lock from a process whose pid is $lpid
    ( exec 9>>"$LIVEDUMP_LOCK_DIR/kcore.lock" && flock 9 && touch "$tmp/held" && exec sleep "$1" ) >/dev/null 2>&1 &
    lpid=$!
    wait_for "$tmp/held"
    rm -f "$tmp/held"
}
hold_lock 30
expect 1 "another live dump of machine 'kcore' is running" -- capture --machine kcore --kcore "$tmp/no-kcore" -o "$tmp/k.elf"
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none -o "$tmp/s.raw"
rm -f "$tmp/s.raw"
kill -KILL $lpid; wait $lpid 2>/dev/null
expect 1 "this kernel was built without /proc/kcore" -- capture --machine kcore --kcore "$tmp/no-kcore" -o "$tmp/k.elf"
hold_lock 2
t0=$(date +%s%N)
expect 1 "this kernel was built without /proc/kcore" -- capture --machine kcore --wait --kcore "$tmp/no-kcore" -o "$tmp/k.elf"
t1=$(date +%s%N)
check "--wait waited for the holder ($(( (t1 - t0) / 1000000 )) ms) and said so" \
    '[ $(( (t1 - t0) / 1000000 )) -ge 1000 ] && grep -q "is running: waiting for it to finish" "$tmp/err"'
wait $lpid 2>/dev/null
# The lock file is never taken through a symlink.
mkdir -m 700 "$tmp/lock2"
ln -s "$tmp/lock-target" "$tmp/lock2/kcore.lock"
LIVEDUMP_LOCK_DIR="$tmp/lock2"
expect 1 "cannot take the lock of machine 'kcore'" -- capture --machine kcore --kcore "$tmp/no-kcore" -o "$tmp/k.elf"
LIVEDUMP_LOCK_DIR="$tmp/lock"
check "the lock's symlink was not followed" '[ ! -e "$tmp/lock-target" ]'
expect 2 "option '--freeze-cgroup' needs a value" -- capture --machine kcore -o "$tmp/k.elf" --freeze-cgroup
# A kcore whose RAM segment claims 16 TiB (and an iomem that agrees) is
# refused at once, saying why, instead of scanning pages that do not exist;
# nothing is left behind.
python3 - "$tmp/huge-kcore" "$tmp/huge-iomem" <<'PY'
import struct, sys
size = 16 << 40
eh = b'\x7fELF' + bytes([2, 1, 1]) + bytes(9) + struct.pack('<HHIQQQIHHHHHH', 4, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
ph = struct.pack('<IIQQQQQQ', 1, 7, 0x1000, 0xffff888000100000, 0x100000, size, size, 4096)
open(sys.argv[1], 'wb').write((eh + ph).ljust(0x3000, b'\0'))
open(sys.argv[2], 'w').write('00100000-%x : System RAM\n' % (0x100000 + size - 1))
PY
# (killed after 20 s: without the bound it would scan for minutes and then
# size buffers from the host's free memory)
n=$((n + 1))
timeout -k 2 20 "$bin" capture --machine kcore --kcore "$tmp/huge-kcore" --iomem "$tmp/huge-iomem" --no-zero-scan \
    --events none -o "$tmp/huge.elf" >"$tmp/out" 2>"$tmp/err"
st=$?
if [ $st = 1 ] && grep -q "runs past the end of the file" "$tmp/err" && [ -z "$(ls "$tmp" | grep '^huge\.elf')" ]; then
    echo "ok $n - a 16 TiB kcore segment is refused at once, no file left"
else
    echo "not ok $n - a 16 TiB kcore segment: status $st, files: $(ls "$tmp" | grep huge | tr '\n' ' ')"
    sed 's/^/#   /' "$tmp/err" | head -n 5; fails=$((fails + 1))
fi
rm -f "$tmp/huge.elf.partial" # a killed run's (only without the bound)

# Policy: show, set (atomic, 0600), check naming the bad line.
pol="$tmp/policy.conf"
expect 0 "SystemThrottleThreshold *= 120" -- policy --policy "$pol" show
expect 0 "FullLiveReportsMax = 3" -- policy --policy "$pol" set FullLiveReportsMax 3
expect 2 "'200' is not a number from 0 to 100" -- policy --policy "$pol" set FullLiveReportsMax 200
expect 2 "unknown setting 'Nope'" -- policy --policy "$pol" set Nope 1
# White space around a value: the same refusal for a space, a tab, a newline.
tab=$(printf '\t')
expect 2 "' 5' has white space before or after the value" -- policy --policy "$pol" set FullLiveReportsMax " 5"
expect 2 "'\\\\t5' has white space before or after the value" -- policy --policy "$pol" set FullLiveReportsMax "${tab}5"
n=$((n + 1))
"$bin" policy --policy "$pol" set FullLiveReportsMax "5
" >"$tmp/out" 2>"$tmp/err"
st=$?
if [ $st = 2 ] && grep -q "'5\\\\n' has white space before or after the value" "$tmp/err"; then
    echo "ok $n - policy set with a trailing newline -> 2"
else
    echo "not ok $n - policy set with a trailing newline: status $st"; fails=$((fails + 1))
fi
expect 0 "FullLiveReportsMax *= 3 " -- policy --policy "$pol" show
expect 0 "policy.conf: ok" -- policy --policy "$pol" check
printf 'FullLiveReportsMax = 1\nAllowLiveDump = x\n' >"$tmp/bad.conf"
expect 1 "bad.conf:2: AllowLiveDump: 'x' is not 0 or 1" -- policy --policy "$tmp/bad.conf" check
expect 1 "cannot read" -- policy --policy "$tmp/none.conf" check
expect 2 "policy needs show, set or check" -- policy --policy "$pol"
n=$((n + 1))
if [ "$(stat -c %a "$pol")" = 600 ]; then echo "ok $n - policy file is 0600"; else echo "not ok $n - policy file mode"; fails=$((fails + 1)); fi
# The policy's folders are checked too: a symlinked or world-writable one is refused.
mkdir "$tmp/poldir" && cp "$pol" "$tmp/poldir/policy.conf" && ln -s "$tmp/poldir" "$tmp/pollink"
expect 1 "refusing a symlink in the path: $tmp/pollink" -- policy --policy "$tmp/pollink/policy.conf" check
expect 1 "refusing a symlink in the path" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --policy "$tmp/pollink/policy.conf" -o "$tmp/pl.raw"
chmod 0777 "$tmp/poldir"
expect 1 "refusing a folder writable by group or others (mode 777)" -- policy --policy "$tmp/poldir/policy.conf" check
chmod 1777 "$tmp/poldir"
expect 0 "policy.conf: ok" -- policy --policy "$tmp/poldir/policy.conf" check
chmod 0700 "$tmp/poldir"

# Reports: full dump in the root, throttled second one, small dump with --defer.
rep="$tmp/reports"
expect 2 "--reports and --component go together" -- capture --machine sim --reports "$rep"
expect 2 "invalid component name" -- capture --machine sim --reports "$rep" --component ../x
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --policy "$pol" --reports "$rep" --component WATCHDOG
expect 1 "throttled" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --policy "$pol" --reports "$rep" --component USBHUB3
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --policy "$pol" --reports "$rep" --component USBHUB3 --type mini --defer
expect 0 "2 report(s)" -- reports --reports "$rep" --policy "$pol" list
expect 0 "full  WATCHDOG" -- reports --reports "$rep" --policy "$pol" list
n=$((n + 1))
if [ "$(stat -c %a "$rep")" = 700 ] && [ "$(stat -c %a "$rep/USBHUB3")" = 700 ] && [ "$(ls "$rep"/WATCHDOG-*.dmp | wc -l)" = 1 ]; then
    echo "ok $n - reports folders are 0700, one full dump in the root (.dmp by default)"
else
    echo "not ok $n - reports layout: $(ls -laR "$rep")"; fails=$((fails + 1))
fi
expect 0 "0 report(s) deleted" -- reports --reports "$rep" --policy "$pol" prune
# Reports are Windows kernel dumps (.dmp) unless --format says otherwise.
expect 0 "bug check       0x00000161" -- info "$(ls "$rep"/WATCHDOG-*.dmp)"
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --policy "$pol" --reports "$rep" --component RAWONE --type mini --format raw
check "--format raw in the reports: a .raw file" '[ "$(ls "$rep"/RAWONE/RAWONE-*.raw | wc -l)" = 1 ]'
rm -rf "$rep/RAWONE"
# --reports without a folder: the policy's LiveKernelReportsPath, as reports list uses it.
cp "$pol" "$tmp/pathpol.conf"
"$bin" policy --policy "$tmp/pathpol.conf" set LiveKernelReportsPath "$tmp/fromsetting" >/dev/null
expect 0 "file            $tmp/fromsetting/SETTING/SETTING-" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --policy "$tmp/pathpol.conf" --reports --component SETTING --type mini
expect 0 "small SETTING" -- reports --policy "$tmp/pathpol.conf" list
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --policy "$tmp/pathpol.conf" --type mini --component SETTING --reports
check "--reports without a folder wrote into LiveKernelReportsPath" '[ "$(ls "$tmp"/fromsetting/SETTING/SETTING-*.dmp | wc -l)" = 2 ]'
# A crashed writer's leftover is listed as incomplete and pruned.
printf 'half' >"$rep/USBHUB3/USBHUB3-20250101-000000.raw.partial"
expect 0 "USBHUB3-20250101-000000.raw.partial  (incomplete" -- reports --reports "$rep" --policy "$pol" list
expect 0 "1 report(s) deleted" -- reports --reports "$rep" --policy "$pol" prune
expect 0 "2 report(s)" -- reports --reports "$rep" --policy "$pol" list
"$bin" policy --policy "$pol" set FullLiveReportsMax 0 >/dev/null
expect 0 "1 report(s) deleted" -- reports --reports "$rep" --policy "$pol" prune
expect 1 "FullLiveReportsMax = 0" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --policy "$pol" --reports "$rep" --component WATCHDOG
ln -s "$tmp" "$tmp/linked"
expect 1 "symlink" -- reports --reports "$tmp/linked" list
expect 0 "does not exist" -- reports --reports "$tmp/missing" --policy "$pol" list
n=$((n + 1))
if [ ! -e "$tmp/missing" ]; then
    echo "ok $n - reports list creates no folder"
else
    echo "not ok $n - reports list created $tmp/missing"; fails=$((fails + 1))
fi
# Retention never deletes the dump that just landed, nor prints a path that
# is not there: a report renamed to a name in 2099 sorts after any new one.
frep="$tmp/future-reports"
"$bin" policy --policy "$tmp/nothrottle.conf" set SystemThrottleThreshold 0 >/dev/null
"$bin" policy --policy "$tmp/nothrottle.conf" set ComponentThrottleThreshold 0 >/dev/null
expect 0 "dump written" -- capture --machine sim --memory 64M --no-abort-if-memory-pressure --events none --policy "$tmp/nothrottle.conf" --reports "$frep" --component APP
mv "$frep"/APP-*.dmp "$frep/APP-20991231-000000.dmp"
expect 0 "dump written" -- capture --machine sim --memory 64M --no-abort-if-memory-pressure --events text --policy "$tmp/nothrottle.conf" --reports "$frep" --component APP
new_dump=$(sed -n 's/^  file *\([^ ]*\) .*/\1/p' "$tmp/out")
check "the new dump ($new_dump) is there, the 2099 one deleted" '[ -f "$new_dump" ] && [ ! -e "$frep/APP-20991231-000000.dmp" ]'
check "event 6 names the deleted report, not the new one" \
    'grep -q "Report deleted by FullLiveReportsMax: APP-20991231-000000.dmp" "$tmp/out" "$tmp/err" && ! grep -q "Report deleted.*$(basename "$new_dump")" "$tmp/out" "$tmp/err"'

# SIGINT, SIGTERM, SIGHUP during a capture into the reports (also --defer)
# stop it as they stop -o: exit 1, "interrupted", no new report and no
# .partial; the report retention would have deleted is still there. The
# shim slows each write of the .partial file, so the signal lands mid-write.
irep="$tmp/signal-reports"
expect 0 "dump written" -- capture --machine sim --memory 64M --no-abort-if-memory-pressure --events none --policy "$tmp/nothrottle.conf" --reports "$irep" --component OLD
for defer in "" --defer; do
    for sig in INT TERM HUP; do
        env --default-signal=$sig LD_PRELOAD="$slow_shim" LD_TEST_SLOW_PARTIAL_MS=100 \
            ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" "$bin" capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --policy "$tmp/nothrottle.conf" \
            --reports "$irep" --component SIG $defer >/dev/null 2>"$tmp/i.err" &
        pid=$!
        i=0
        while [ -z "$(ls "$irep" | grep 'partial$')" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
        kill -$sig $pid; wait $pid
        st=$?
        check "SIG$sig during capture --reports $defer: exit $st, says interrupted, only the old report left" \
            '[ $st = 1 ] && grep -q "interrupted by signal" "$tmp/i.err" && [ "$(ls "$irep")" = "$(cd "$irep" && ls OLD-*.dmp)" ] && ! grep -q "^landing" "$irep/.LastFullLiveReport"'
    done
done

# The throttling state cannot be saved (disk full). Before the capture: no
# dump is taken, exit 1, and the message says so. After the dump landed:
# the dump is kept and counted (exit 0), so the next one is throttled.
srep="$tmp/state-reports"
dpol="$tmp/defaults.conf"
"$bin" policy --policy "$dpol" set SystemThrottleThreshold 120 >/dev/null
expect 0 "0 report(s) deleted" -- reports --reports "$srep" --policy "$dpol" prune
asan_env="ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0"
bin_env="LD_PRELOAD=$enospc_shim LD_TEST_STATE_SAVES_OK=0 $asan_env"
expect 1 "cannot save the throttling state $srep/.LastFullLiveReport (.*disk.*): no dump was taken" -- capture --machine sim --memory 64M --no-abort-if-memory-pressure --events none --policy "$dpol" --reports "$srep" --component WATCHDOG
check "no dump was left" '[ -z "$(ls "$srep")" ]'
bin_env="LD_PRELOAD=$enospc_shim LD_TEST_STATE_SAVES_OK=1 $asan_env"
expect 0 "dump written" -- capture --machine sim --memory 64M --no-abort-if-memory-pressure --events none --policy "$dpol" --reports "$srep" --component WATCHDOG
bin_env=
kept=$(sed -n 's/^  file *\([^ ]*\) .*/\1/p' "$tmp/out")
check "the dump that landed is kept ($kept)" '[ -f "$kept" ]'
expect 1 "throttled" -- capture --machine sim --memory 64M --no-abort-if-memory-pressure --events text --policy "$dpol" --reports "$srep" --component USBHUB3
check "the first dump is still there" '[ -f "$kept" ] && [ "$(ls "$srep" | wc -l)" = 1 ]'
# The same on a real full disk: a 20 MiB tmpfs filled to leave exactly the
# dump's pages, in a private mount namespace (skipped without the rights).
mkdir "$tmp/mnt"
cat >"$tmp/full-disk.sh" <<'EOS'
d=$1 bin=$2 pol=$3 out=$4
mount -t tmpfs -o size=20m,mode=0700 tmpfs "$d" 2>/dev/null || exit 77
"$bin" capture --machine sim --memory 64M --no-abort-if-memory-pressure --events none -o "$d/probe.dmp" >/dev/null || exit 1
need=$(du -B4096 "$d/probe.dmp" | cut -f1)
rm "$d/probe.dmp"
"$bin" reports --reports "$d/r" --policy "$pol" prune >/dev/null || exit 1
avail=$(df -B4096 --output=avail "$d" | tail -n 1)
dd if=/dev/zero of="$d/filler" bs=4096 count=$((avail - need)) status=none || exit 1
"$bin" capture --machine sim --memory 64M --no-abort-if-memory-pressure --events none --policy "$pol" --reports "$d/r" --component WATCHDOG >"$out.1" 2>&1
echo $? >>"$out.1"
rm "$d/filler"
"$bin" capture --machine sim --memory 64M --no-abort-if-memory-pressure --events none --policy "$pol" --reports "$d/r" --component USBHUB3 >"$out.2" 2>&1
echo $? >>"$out.2"
ls "$d/r" >"$out.3"
EOS
n=$((n + 1))
st=77
if unshare -m true 2>/dev/null; then
    unshare -m sh "$tmp/full-disk.sh" "$tmp/mnt" "$bin" "$dpol" "$tmp/fd" 2>/dev/null
    st=$?
fi
if [ $st = 77 ]; then
    echo "ok $n # SKIP no mount namespace or tmpfs mount rights"
elif [ $st = 0 ] && grep -q "dump written" "$tmp/fd.1" && [ "$(tail -n 1 "$tmp/fd.1")" = 0 ] && \
     grep -q "throttled" "$tmp/fd.2" && [ "$(tail -n 1 "$tmp/fd.2")" = 1 ] && [ "$(grep -c WATCHDOG "$tmp/fd.3")" = 1 ]; then
    echo "ok $n - a dump that fills the disk is kept and counted: the next one is throttled"
else
    echo "not ok $n - full tmpfs: status $st"; cat "$tmp"/fd.* 2>/dev/null | sed 's/^/#   /' | head -n 30
    fails=$((fails + 1))
fi

"$bin" policy --policy "$pol" set AllowLiveDump 0 >/dev/null
expect 1 "STATUS_ACCESS_DENIED" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --policy "$pol" -o "$tmp/c.raw"
expect 0 "dump written" -- capture --machine sim --memory 128M --no-abort-if-memory-pressure --events none --defer -o "$tmp/d.raw"

echo "1..$n"
[ "$fails" -eq 0 ]
