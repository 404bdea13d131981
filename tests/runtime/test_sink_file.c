/* The file sink on a file system without hard links (vfat, exFAT, some SMB
 * and FUSE): finish falls back to a rename that never replaces, and where
 * that is missing too it refuses. sink_file.c is built into this test so
 * the test can swap its link and rename calls. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sink_file.c"

static char dir[64], path[128], partial[160];

static int fake_link_eperm(int a, const char *b, int c, const char *d, int e)
{
    (void)a, (void)b, (void)c, (void)d, (void)e;
    errno = EPERM; /* what vfat answers to link() */
    return -1;
}

static int fake_rename_einval(int a, const char *b, const char *c)
{
    (void)a, (void)b, (void)c;
    errno = EINVAL; /* a kernel or file system without RENAME_NOREPLACE */
    return -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/livedump-sink-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/dump.raw", dir);
    snprintf(partial, sizeof partial, "%s.partial", path);
    link_fn = fake_link_eperm;
    rename_fn = rename_noreplace;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    unlink(partial);
    return rmdir(dir);
}

static void write_hello(ld_sink *sink)
{
    assert_int_equal(sink->write(sink, 0, "hello", 5), LD_STATUS_SUCCESS);
}

static void falls_back_to_rename(void **state)
{
    (void)state;
    ld_sink *sink;
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_SUCCESS);
    write_hello(sink);
    assert_int_equal(sink->finish(sink, 5), LD_STATUS_SUCCESS);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 5);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(access(partial, F_OK), -1);
}

static void fallback_never_replaces(void **state)
{
    (void)state;
    ld_sink *sink;
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_SUCCESS);
    write_hello(sink);
    /* A file appears under the final name meanwhile: it stays as it was. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "xy", 2), 2);
    close(fd);
    assert_int_equal(sink->finish(sink, 5), LD_STATUS_OBJECT_NAME_COLLISION);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(access(partial, F_OK), -1);
}

static void refuses_without_noreplace(void **state)
{
    (void)state;
    rename_fn = fake_rename_einval;
    ld_sink *sink;
    assert_int_equal(ld_sink_file_open(path, &sink), LD_STATUS_SUCCESS);
    write_hello(sink);
    assert_int_equal(sink->finish(sink, 5), LD_STATUS_NOT_SUPPORTED);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(partial, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(falls_back_to_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(fallback_never_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_without_noreplace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
