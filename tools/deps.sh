#!/bin/sh
# Installs what livedump needs to build and test, from Debian 12 packages.
# Does nothing when everything is already there.
set -eu
pkgs="meson ninja-build gcc clang pkg-config python3 libuv1-dev libcmocka-dev zlib1g-dev file valgrind"
# the real-kernel test (tests/vm): QEMU, the guest userland, the independent readers
pkgs="$pkgs qemu-system-x86 busybox-static libkdumpfile-dev python3-drgn makedumpfile"
# the Windows cross build (livedump.sys, livedump.exe) and wine64 to run the client
pkgs="$pkgs gcc-mingw-w64-x86-64 mingw-w64-x86-64-dev binutils-mingw-w64-x86-64 wine64"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
