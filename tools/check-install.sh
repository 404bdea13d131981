#!/bin/sh
# `meson install` into a scratch root, then build a program against the
# installed headers and library through pkg-config, as a user would.
# usage: check-install.sh BUILD_DIR
set -eu
build=$(cd "$1" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" --no-rebuild >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pcdir=$(find "$root$prefix" -name livedump.pc -printf '%h\n' | head -n 1)
[ -n "$pcdir" ] || { echo "no livedump.pc installed" >&2; exit 1; }
cat > "$root/use.c" <<'C'
#include <livedump/livedump.h>
#include <stdio.h>
int main(void)
{
    printf("%s %s\n", LD_VERSION_STRING, ld_status_name(LD_STATUS_DISK_FULL));
    return 0;
}
C
flags=$(PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs livedump)
${CC:-cc} "$root/use.c" -o "$root/use" $flags
LD_LIBRARY_PATH=$(dirname "$(find "$root$prefix" -name 'liblivedump.so' | head -n 1)") "$root/use"
