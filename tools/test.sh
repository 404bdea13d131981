#!/bin/sh
# The test command: builds and runs every test with gcc and clang
# (warnings are errors), then again under AddressSanitizer +
# UndefinedBehaviorSanitizer and under ThreadSanitizer. Ends with one line
# "tests: N passed, M failed".
set -u
cd "$(dirname "$0")/.."
sh tools/deps.sh || exit 1
passed=0
failed=0
status=0

run_config() {
    name=$1
    shift
    dir=build-test/$name
    echo "=== $name: meson setup $*"
    if ! meson setup --wipe "$dir" --werror "$@" >"$dir.setup.log" 2>&1 &&
       ! meson setup "$dir" --werror "$@" >"$dir.setup.log" 2>&1; then
        cat "$dir.setup.log"
        failed=$((failed + 1)); status=1; return
    fi
    if ! ninja -C "$dir"; then
        failed=$((failed + 1)); status=1; return
    fi
    meson test -C "$dir" --print-errorlogs --num-processes 2 $TEST_ARGS >"$dir.test.log" 2>&1
    rc=$?
    tail -n 40 "$dir.test.log"
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir.test.log" | tail -n 1)
    bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$dir.test.log" | tail -n 1)
    to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$dir.test.log" | tail -n 1)
    passed=$((passed + ${ok:-0}))
    failed=$((failed + ${bad:-0} + ${to:-0}))
    if [ $rc -ne 0 ]; then
        status=1
        [ "${bad:-0}${to:-0}" = "00" ] && failed=$((failed + 1))
    fi
}

mkdir -p build-test
TEST_ARGS=""
CC=gcc run_config gcc
echo "=== install: meson install + pkg-config"
if CC=gcc sh tools/check-install.sh build-test/gcc; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
CC=clang run_config clang
# The Windows cross build (cross/x86_64-w64-mingw32.txt, -Werror): livedump.sys
# and livedump.exe, then its own tests: the driver's PE check, and
# livedump.exe under wine64 against the gcc build's livedump (the stand-in
# tests of the NT backend run in every configuration above and below).
echo "=== nt: Windows cross build (livedump.sys, livedump.exe), PE check, wine"
if meson setup --wipe build-test/nt --werror --cross-file cross/x86_64-w64-mingw32.txt \
        -Dlinux_cli="$PWD/build-test/gcc/src/cli/livedump" >build-test/nt.setup.log 2>&1 ||
   meson setup build-test/nt --werror --cross-file cross/x86_64-w64-mingw32.txt \
        -Dlinux_cli="$PWD/build-test/gcc/src/cli/livedump" >build-test/nt.setup.log 2>&1; then
    if ninja -C build-test/nt >build-test/nt.build.log 2>&1; then
        meson test -C build-test/nt --print-errorlogs --num-processes 2 >build-test/nt.test.log 2>&1
        rc=$?
        grep -E '^ *[0-9]+/[0-9]+ ' build-test/nt.test.log
        ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' build-test/nt.test.log | tail -n 1)
        xf=$(sed -n 's/^Expected Fail: *\([0-9]*\).*/\1/p' build-test/nt.test.log | tail -n 1)
        bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' build-test/nt.test.log | tail -n 1)
        passed=$((passed + ${ok:-0} + ${xf:-0} + 1))
        failed=$((failed + ${bad:-0}))
        if [ $rc -ne 0 ]; then
            status=1
            [ "${bad:-0}" = 0 ] && failed=$((failed + 1))
        fi
    else
        tail -n 40 build-test/nt.build.log
        failed=$((failed + 1)); status=1
    fi
else
    cat build-test/nt.setup.log
    failed=$((failed + 1)); status=1
fi
# The real-kernel test (tests/vm/run.sh): minutes under TCG emulation.
# LIVEDUMP_SKIP_VM=1 leaves it out of a local run; CI always runs it.
if [ -z "${LIVEDUMP_SKIP_VM:-}" ]; then
    echo "=== vm: live dump of a real Linux kernel under QEMU"
    if sh tests/vm/run.sh build-test/vm >build-test/vm.log 2>&1; then
        passed=$((passed + 1))
        grep -E '^(PASS|FAIL)|^vm:|kcore reads|user space|pages  ' build-test/vm.log
    else
        tail -n 80 build-test/vm.log
        failed=$((failed + 1)); status=1
    fi
fi
echo "=== valgrind: memcheck on the engine tests that need no large machine"
if meson test -C build-test/gcc --print-errorlogs --num-processes 2 --suite valgrind \
        --wrapper 'valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-origins=yes --quiet' \
        >build-test/valgrind.test.log 2>&1; then
    passed=$((passed + $(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' build-test/valgrind.test.log | tail -n 1)))
else
    tail -n 60 build-test/valgrind.test.log
    failed=$((failed + 1)); status=1
fi
TEST_ARGS=""
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    CC=clang run_config asan-ubsan -Db_sanitize=address,undefined -Db_lundef=false
TSAN_OPTIONS=halt_on_error=1 CC=clang run_config tsan -Db_sanitize=thread -Db_lundef=false

echo "tests: $passed passed, $failed failed"
exit $status
