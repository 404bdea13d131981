#!/bin/sh
# The guest side of the real-kernel test (run by guest-init.sh as the test
# program, cwd /out, root). Starts a workload in a cgroup v2, takes a live
# dump of the running kernel with the static livedump from /in, freezing
# that cgroup for the final pass, then asks the host (hook) for QEMU's own
# dump of the same guest and exits with livedump's status.
echo "guest: kernel $(uname -r), $(nproc) CPUs, $(grep MemTotal /proc/meminfo)"
cat /proc/iomem > iomem.txt
# A real system has /run (a tmpfs); livedump keeps its machine lock there.
mkdir -p /run && mount -t tmpfs -o mode=0755 none /run || echo "guest: no /run"
mkdir -p /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup || echo "guest: no cgroup2"
mkdir -p /sys/fs/cgroup/workload
# A workload that keeps writing memory (tmpfs files, its own pages).
sh -c 'echo $$ > /sys/fs/cgroup/workload/cgroup.procs
       i=0
       while :; do
           i=$((i + 1)); echo $i > /tmp/counter
           dd if=/dev/urandom of=/tmp/blob bs=64k count=4 2>/dev/null
           usleep 20000
       done' &
workload=$!
sleep 1
t0=$(cut -d' ' -f1 /proc/uptime)
/in/livedump-static capture --machine kcore --freeze-cgroup /sys/fs/cgroup/workload --events none \
    -o dump.elf > capture.txt 2>&1
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
cat capture.txt
echo "guest: livedump exit status $rc, $t0 -> $t1 s of uptime"
# Thawed on the way out: the cgroup says so and the workload moves again.
c1=$(cat /tmp/counter)
sleep 1
c2=$(cat /tmp/counter)
events=$(grep frozen /sys/fs/cgroup/workload/cgroup.events)
echo "guest: after the capture: cgroup $events, workload counter $c1 -> $c2"
if [ "$events" != "frozen 0" ] || [ "$c2" -le "$c1" ]; then
    echo "guest: the workload was left frozen"
    [ $rc -eq 0 ] && rc=3
fi
# The kernel kept running: the summary must not claim the machine stopped.
if ! grep -q 'not stopped (kernel kept running)' capture.txt || grep -q 'machine stopped' capture.txt; then
    echo "guest: the summary claims the machine was stopped"
    [ $rc -eq 0 ] && rc=5
fi
echo "capture_rc=$rc start=$t0 end=$t1 thaw='$events' counter=$c1..$c2" > guest-result.txt
# A kernel-only dump (no user, file-cache, free pages: makedumpfile's level
# 31), stopping the workload by SIGSTOP instead; only its summary is kept.
/in/livedump-static capture --machine kcore --selective --stop-pid $workload --events none \
    -o /tmp/kernel-only.elf > capture-kernel-only.txt 2>&1
rc2=$?
rm -f /tmp/kernel-only.elf
cat capture-kernel-only.txt
if [ $rc2 -ne 0 ] || grep -Eq ' (file-cache|user) [0-9]' capture-kernel-only.txt ||
   ! grep -q '(1 processes stopped' capture-kernel-only.txt; then
    echo "guest: the kernel-only capture failed or kept user/cache pages"
    [ $rc -eq 0 ] && rc=4
fi
c3=$(cat /tmp/counter)
sleep 1
if [ "$(cat /tmp/counter)" -le "$c3" ]; then
    echo "guest: the workload was left stopped"
    [ $rc -eq 0 ] && rc=3
fi
kill $workload
# QEMU's dump right after ours: the host compares kernel text and rodata.
echo "@@HOST-HOOK@@ qemu.elf"
read -r reply
echo "guest: host says $reply"
exit $rc
