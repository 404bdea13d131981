#!/bin/sh
# Proves the core can go into a kernel driver: every core source compiles
# with -ffreestanding against the compiler's own headers only (-nostdinc:
# no libc, no libuv headers can be reached), and the objects reference no
# external symbol but memcpy, memset and memcmp.
#
# usage: check-core-freestanding.sh CC SOURCE_ROOT BUILD_INCLUDE FILE.c...
set -eu
cc=$1 root=$2 build_inc=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
compiler_inc=$($cc -print-file-name=include)
i=0
for src in "$@"; do
    i=$((i + 1))
    $cc -std=gnu11 -O2 -ffreestanding -fno-stack-protector -fno-pic -nostdinc \
        -isystem "$compiler_inc" -I "$root/include" -I "$build_inc" -I "$root" \
        -Wall -Wextra -Werror -Wno-unused-parameter -c "$src" -o "$tmp/$i.o"
done
nm -u "$tmp"/*.o | awk 'NF == 2 { print $2 }' | sort -u > "$tmp/undefined"
nm --defined-only "$tmp"/*.o | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/defined"
comm -23 "$tmp/undefined" "$tmp/defined" > "$tmp/external"
bad=$(grep -v -x -e memcpy -e memset -e memcmp "$tmp/external" || true)
count=$#
if [ -n "$bad" ]; then
    echo "core references symbols outside the platform contract:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "core: $count files compile freestanding; external symbols: $(tr '\n' ' ' < "$tmp/external")"
