#!/bin/sh
# Proves the engine can go into a kernel driver: every freestanding source
# (src/buffers, src/formats, src/core) compiles with -ffreestanding against
# the compiler's own headers only (-nostdinc: no libc, no libuv headers can
# be reached), and the objects reference no external symbol but memcpy,
# memset and memcmp.
#
# usage: check-core-freestanding.sh CC SOURCE_ROOT BUILD_INCLUDE DIR... -- FILE.c...
set -eu
cc=$1 root=$2 build_inc=$3
shift 3
dirs=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    dirs="$dirs -I $1"
    shift
done
[ $# -gt 0 ] && shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
compiler_inc=$($cc -print-file-name=include)
i=0
for src in "$@"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    $cc -std=gnu11 -O2 -ffreestanding -fno-stack-protector -fno-pic -nostdinc \
        -isystem "$compiler_inc" -I "$root/include" -I "$build_inc" $dirs \
        -Wall -Wextra -Werror -Wno-unused-parameter -Wframe-larger-than=4096 -c "$src" -o "$tmp/$i.o"
done
nm -u "$tmp"/*.o | awk 'NF == 2 { print $2 }' | sort -u > "$tmp/undefined"
nm --defined-only "$tmp"/*.o | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/defined"
comm -23 "$tmp/undefined" "$tmp/defined" > "$tmp/external"
bad=$(grep -v -x -e memcpy -e memset -e memcmp "$tmp/external" || true)
count=$#
if [ -n "$bad" ]; then
    echo "the engine references symbols outside the platform contract:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "engine: $count files compile freestanding (stack frames under 4 KiB); external symbols: $(tr '\n' ' ' < "$tmp/external")"
