#!/bin/sh
# `meson install` into a scratch root, then build programs against the
# installed headers and library through pkg-config, as a user would: a
# program that includes every header, and the examples (examples/*.c),
# which are then run.
# usage: check-install.sh BUILD_DIR
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" --no-rebuild >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pcdir=$(find "$root$prefix" -name livedump.pc -printf '%h\n' | head -n 1)
[ -n "$pcdir" ] || { echo "no livedump.pc installed" >&2; exit 1; }
cat > "$root/use.c" <<'C'
#include <livedump/livedump.h>
#include <livedump/sys/hal.h>
#include <livedump/sys/platform.h>
#include <livedump/sys/format.h>
#include <livedump/sys/sink.h>
#include <stdio.h>
int main(void)
{
    printf("%s %s\n", LD_VERSION_STRING, ld_status_name(LD_STATUS_DISK_FULL));
    return 0;
}
C
flags=$(PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs livedump)
libdir=$(dirname "$(find "$root$prefix" -name 'liblivedump.so' | head -n 1)")
${CC:-cc} -Wall -Wextra -Werror "$root/use.c" -o "$root/use" $flags
LD_LIBRARY_PATH=$libdir "$root/use"
for ex in "$src"/examples/*.c; do
    name=$(basename "$ex" .c)
    ${CC:-cc} -Wall -Wextra -Werror "$ex" -o "$root/$name" $flags
done
# The embedding example, run against the installed library.
(cd "$root" && LD_LIBRARY_PATH=$libdir ./dump_sim "$root/installed.dmp" >"$root/dump_sim.out")
head -c 8 "$root/installed.dmp" | grep -q PAGEDU64 || { echo "dump_sim wrote no .dmp" >&2; exit 1; }
echo "examples built and run against the installed library: $(tail -n 1 "$root/dump_sim.out")"
