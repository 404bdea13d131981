/* The machine lock: one live dump at a time per machine, across processes.
 * Two holders (the second refused, then waiting until the first lets go), a
 * SIGKILLed holder that leaves the lock free, and the folder and file rules
 * (symlinks, other writers). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "livedump/runtime.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ld-lock-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A child process that takes the lock, says so on a pipe, then holds it for
 * hold_ms (0: until killed). Returns its pid once it holds the lock. */
static pid_t child_holder(const char *name, unsigned hold_ms)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30); /* never outlives a failed test for long */
        close(p[0]);
        ld_machine_lock *l;
        char ok = ld_machine_lock_acquire(dir, name, false, &l) == LD_STATUS_SUCCESS ? 'y' : 'n';
        if (write(p[1], &ok, 1) != 1)
            _exit(2);
        if (hold_ms == 0)
            for (;;)
                pause();
        usleep(hold_ms * 1000);
        ld_machine_lock_release(l);
        _exit(0);
    }
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    assert_int_equal(c, 'y');
    return pid;
}

static void test_second_holder_busy(void **state)
{
    (void)state;
    ld_machine_lock *a = NULL, *b = NULL;
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", false, &a), LD_STATUS_SUCCESS);
    assert_non_null(a);
    /* Even in the same process, a second holder is refused. */
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", false, &b), LD_STATUS_DEVICE_BUSY);
    assert_null(b);
    /* Another machine's lock is another lock. */
    assert_int_equal(ld_machine_lock_acquire(dir, "nt", false, &b), LD_STATUS_SUCCESS);
    ld_machine_lock_release(b);
    ld_machine_lock_release(a);
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", false, &b), LD_STATUS_SUCCESS);
    ld_machine_lock_release(b);

    /* Across processes: refused while the other holds it; with wait, taken
     * as soon as the other lets go. */
    pid_t pid = child_holder("kcore", 300);
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", false, &b), LD_STATUS_DEVICE_BUSY);
    uint64_t t0 = now_ms();
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", true, &b), LD_STATUS_SUCCESS);
    assert_true(now_ms() - t0 >= 100);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    ld_machine_lock_release(b);

    /* The file: 0600, in a folder created 0700, naming its last holder. */
    char path[128];
    snprintf(path, sizeof path, "%s/kcore.lock", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/new", dir);
    assert_int_equal(ld_machine_lock_acquire(sub, "kcore", false, &a), LD_STATUS_SUCCESS);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    ld_machine_lock_release(a);
}

/* A holder killed with SIGKILL cannot unlock: the kernel does. */
static void test_killed_holder_leaves_it_free(void **state)
{
    (void)state;
    pid_t pid = child_holder("kcore", 0);
    ld_machine_lock *l = NULL;
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", false, &l), LD_STATUS_DEVICE_BUSY);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", false, &l), LD_STATUS_SUCCESS);
    ld_machine_lock_release(l);
}

/* Symlinks and other writers are refused, never followed. */
static void test_unsafe_places_refused(void **state)
{
    (void)state;
    ld_machine_lock *l = (ld_machine_lock *)(uintptr_t)1;
    char lnk[128], target[128], sub[128], fifo[128];
    snprintf(lnk, sizeof lnk, "%s/sym.lock", dir);
    snprintf(target, sizeof target, "%s/target", dir);
    assert_int_equal(symlink(target, lnk), 0);
    assert_int_equal(ld_machine_lock_acquire(dir, "sym", false, &l), LD_STATUS_OBJECT_NAME_COLLISION);
    assert_null(l);
    assert_int_equal(access(target, F_OK), -1); /* not created through the link */

    snprintf(fifo, sizeof fifo, "%s/fifo.lock", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(ld_machine_lock_acquire(dir, "fifo", false, &l), LD_STATUS_OBJECT_NAME_COLLISION);

    /* A hard link to some other file of ours. */
    char other[128], hard[128];
    snprintf(other, sizeof other, "%s/other", dir);
    snprintf(hard, sizeof hard, "%s/hard.lock", dir);
    int fd = open(other, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(link(other, hard), 0);
    assert_int_equal(ld_machine_lock_acquire(dir, "hard", false, &l), LD_STATUS_OBJECT_NAME_COLLISION);

    /* The folder: a symlink to one, or one others may write. */
    snprintf(sub, sizeof sub, "%s/open", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(chmod(sub, 0777), 0);
    assert_int_equal(ld_machine_lock_acquire(sub, "kcore", false, &l), LD_STATUS_ACCESS_DENIED);
    assert_int_equal(chmod(sub, 0700), 0);
    snprintf(lnk, sizeof lnk, "%s/dirlink", dir);
    assert_int_equal(symlink(sub, lnk), 0);
    assert_int_equal(ld_machine_lock_acquire(lnk, "kcore", false, &l), LD_STATUS_ACCESS_DENIED);

    /* Names are one plain component. */
    static const char *const bad[] = {"", ".hidden", "../kcore", "a/b", "a b", "0123456789abcdef0123456789abcdefX"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ld_machine_lock_acquire(dir, bad[i], false, &l), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_machine_lock_acquire(dir, NULL, false, &l), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_machine_lock_acquire(dir, "kcore", false, NULL), LD_STATUS_INVALID_PARAMETER);
    ld_machine_lock_release(NULL); /* harmless */
}

/* Without a folder: $LIVEDUMP_LOCK_DIR, else /run/livedump. */
static void test_folder_from_environment(void **state)
{
    (void)state;
    char env_dir[128];
    snprintf(env_dir, sizeof env_dir, "%s/env", dir);
    assert_int_equal(setenv("LIVEDUMP_LOCK_DIR", env_dir, 1), 0);
    assert_string_equal(ld_machine_lock_dir(NULL), env_dir);
    assert_string_equal(ld_machine_lock_dir("/x"), "/x");
    ld_machine_lock *l;
    assert_int_equal(ld_machine_lock_acquire(NULL, "kcore", false, &l), LD_STATUS_SUCCESS);
    char path[160];
    snprintf(path, sizeof path, "%s/kcore.lock", env_dir);
    assert_int_equal(access(path, F_OK), 0);
    ld_machine_lock_release(l);
    assert_int_equal(unsetenv("LIVEDUMP_LOCK_DIR"), 0);
    assert_string_equal(ld_machine_lock_dir(NULL), LD_MACHINE_LOCK_DIR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_holder_busy),
        cmocka_unit_test(test_killed_holder_leaves_it_free),
        cmocka_unit_test(test_unsafe_places_refused),
        cmocka_unit_test(test_folder_from_environment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
