#!/bin/sh
# The real-kernel test: boots Debian's linux-image-amd64 under QEMU (KVM if
# it really works here, else TCG) with a tiny initramfs holding a static
# livedump, takes a live dump of the running guest from inside it, brings
# it out, and checks it on the host with QEMU's own dump, libkdumpfile, drgn
# and makedumpfile (check-dump.py).
#   usage: tests/vm/run.sh [OUTDIR]     (default build-test/vm)
#   env:   LIVEDUMP_VM_CACHE, VM_KERNEL_PKG (prepare.sh), VM_MEM (512M), VM_CPUS (2)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-test/vm}
start=$(date +%s)
mkdir -p "$out"
sh "$root/tests/vm/prepare.sh"

# the static CLI for the guest, and the libkdumpfile reader for the host
static_build=$root/build-test/vm-static
if [ ! -f "$static_build/build.ninja" ]; then
    meson setup "$static_build" "$root" -Dstatic_cli=true -Dtests=false >"$out/static-setup.log" 2>&1 ||
        { cat "$out/static-setup.log"; exit 1; }
fi
ninja -C "$static_build" src/cli/livedump-static >"$out/static-build.log" 2>&1 ||
    { cat "$out/static-build.log"; exit 1; }
# shellcheck disable=SC2046 # pkg-config prints a list of flags
cc -O2 -Wall -Wextra -Werror -o "$out/kdumpfile-read" "$root/tests/vm/kdumpfile-read.c" \
    $(pkg-config --cflags --libs libkdumpfile)

rm -f "$out/qemu.elf" "$out/filtered.kdump"
rc=0
# 4-level paging (la57=off), as on most machines; the result disk holds the dump.
"$root/tests/vm/run-guest.py" -m "${VM_MEM:-512M}" -c "${VM_CPUS:-2}" -C max,la57=off -d 1G -t 900 \
    -o "$out" -x "$root/tests/vm/dump-memory.py" -f "$static_build/src/cli/livedump-static" \
    "$root/tests/vm/guest-test.sh" || rc=$?
if [ $rc -ne 0 ]; then
    echo "vm: the guest run failed ($rc); console:" >&2
    tail -n 60 "$out/console.log" >&2
    exit 1
fi
echo "--- the capture in the guest"
cat "$out/out/capture.txt"
echo "--- a kernel-only capture (--selective --stop-pid) in the guest"
cat "$out/out/capture-kernel-only.txt"
echo "--- checks on the host"
rc=0
/usr/bin/python3 "$root/tests/vm/check-dump.py" "$out" "$out/kdumpfile-read" || rc=$?
rm -f "$out/qemu.elf" "$out/filtered.kdump" "$out/kdumpfile.bin" "$out/kdumpfile-kdump.bin"
[ -n "${KEEP_DUMP:-}" ] || rm -f "$out/out/dump.elf"
echo "vm: $( [ $rc -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s ($(cat "${LIVEDUMP_VM_CACHE:-$root/.cache/vm}/accel"))"
exit $rc
