#!/bin/sh
# Only ld_-prefixed symbols may leave the shared library.
# usage: check-exports.sh LIBRARY.so
set -eu
syms=$(nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort -u)
bad=$(printf '%s\n' "$syms" | grep -v -e '^ld_' -e '^_init$' -e '^_fini$' -e '^_edata$' -e '^_end$' -e '^__bss_start$' || true)
if [ -n "$bad" ]; then
    echo "symbols exported without the ld_ prefix:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "$(printf '%s\n' "$syms" | grep -c '^ld_') ld_ symbols exported, nothing else"
