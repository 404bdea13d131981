#!/bin/sh
# Sets everything up and runs the main job: a live dump of a simulated
# 1 GiB, 2-vCPU machine that keeps writing memory while it is dumped.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
[ -d build ] || meson setup build
ninja -C build
out=${1:-demo-dump.raw}
rm -f "$out"
./build/src/cli/livedump capture --machine sim --memory 1G --cpus 2 --dirty-rate 64M \
    --taskmgr -o "$out"
