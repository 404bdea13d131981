/* Errors named for what they are: the one errno -> NTSTATUS map every
 * user-mode layer uses (src/common/errno_status.c), ld_os_error, the one
 * shape of error detail (ld_error), and file
 * names at the NAME_MAX limit — a name too long is NAME_TOO_LONG, while a
 * valid 252-byte name works although "NAME.partial" would exceed NAME_MAX
 * (the sink's and the policy file's temporary names are shortened). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "livedump/sys/hal.h"
#include "livedump/sys/format.h"
#include "livedump/sys/sink.h"
#include "livedump/dmp.h"
#include "livedump/policy.h"
#include "livedump/reports.h"
#include "livedump/runtime.h"
#include "errno_status.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/livedump-errors-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* dir/ + n copies of c */
static char *long_path(char c, size_t n)
{
    char *p = malloc(sizeof dir + n + 2);
    assert_non_null(p);
    size_t d = (size_t)sprintf(p, "%s/", dir);
    memset(p + d, c, n);
    p[d + n] = 0;
    return p;
}

static size_t entries(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    unsigned long n = 0;
    assert_int_equal(fscanf(f, "%lu", &n), 1);
    pclose(f);
    return n;
}

/* Each errno gets the NTSTATUS an NT file system returns for the same
 * condition (values from Microsoft's NTSTATUS list), with a name, and
 * ld_os_error gives the errno back for that status only. */
static void errno_map(void **state)
{
    (void)state;
    static const struct {
        int err;
        ld_status st;
    } map[] = {
        {ENAMETOOLONG, 0xC0000106u}, /* STATUS_NAME_TOO_LONG */
        {EROFS, 0xC00000A2u},        /* STATUS_MEDIA_WRITE_PROTECTED */
        {EACCES, 0xC0000022u},       /* STATUS_ACCESS_DENIED */
        {EPERM, 0xC0000022u},
        {ELOOP, 0xC0000022u},        /* a symlink refused on purpose */
        {ENOENT, 0xC000000Fu},       /* STATUS_NO_SUCH_FILE */
        {ENOTDIR, 0xC0000103u},      /* STATUS_NOT_A_DIRECTORY */
        {EISDIR, 0xC00000BAu},       /* STATUS_FILE_IS_A_DIRECTORY */
        {EEXIST, 0xC0000035u},       /* STATUS_OBJECT_NAME_COLLISION */
        {ENOSPC, 0xC000007Fu},       /* STATUS_DISK_FULL */
        {EDQUOT, 0xC000007Fu},
        {EFBIG, 0xC000007Fu},
        {ENOMEM, 0xC0000017u},       /* STATUS_NO_MEMORY */
        {EMFILE, 0xC000011Fu},       /* STATUS_TOO_MANY_OPENED_FILES */
        {ENFILE, 0xC000011Fu},
        {ENOSYS, 0xC00000BBu},       /* STATUS_NOT_SUPPORTED */
        {EIO, 0xC0000185u},          /* STATUS_IO_DEVICE_ERROR */
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        ld_status st = ldu_errno_status(map[i].err);
        print_message("%s -> 0x%08X %s\n", strerror(map[i].err), (unsigned)st,
                      ld_status_name(st) ? ld_status_name(st) : "(no name)");
        assert_int_equal(st, map[i].st);
        assert_non_null(ld_status_name(st));
        assert_int_equal(ld_os_error(st), map[i].err);
    }
    ldu_errno_status(EROFS);
    assert_int_equal(ld_os_error(LD_STATUS_MEDIA_WRITE_PROTECTED), EROFS);
    assert_int_equal(ld_os_error(LD_STATUS_DISK_FULL), 0); /* not what the last failure got */
    assert_int_equal(ld_os_error(LD_STATUS_SUCCESS), 0);
    assert_string_equal(ld_status_name(LD_STATUS_NAME_TOO_LONG), "STATUS_NAME_TOO_LONG");
    assert_string_equal(ld_status_name(LD_STATUS_MEDIA_WRITE_PROTECTED), "STATUS_MEDIA_WRITE_PROTECTED");
}

/* A real ENAMETOOLONG, from the sinks, the reader and the policy file. */
static void name_too_long(void **state)
{
    (void)state;
    char *p = long_path('x', NAME_MAX + 1);
    ld_sink *sink = (ld_sink *)1;
    assert_int_equal(ld_sink_file_open(p, &sink), LD_STATUS_NAME_TOO_LONG);
    assert_int_equal(ld_os_error(LD_STATUS_NAME_TOO_LONG), ENAMETOOLONG);
    assert_null(sink);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(ld_sink_file_openat(dfd, p + strlen(dir) + 1, &sink), LD_STATUS_NAME_TOO_LONG);
    close(dfd);
    ld_dmp *d = NULL;
    ld_error derr;
    assert_int_equal(ld_dmp_open(p, &d, &derr), LD_STATUS_NAME_TOO_LONG);
    ld_settings s;
    ld_settings_init(&s);
    assert_int_equal(ld_settings_save(&s, p), LD_STATUS_NAME_TOO_LONG);
    assert_int_equal(entries(), 0);
    free(p);
    /* a path through a file: not a folder */
    char q[128];
    snprintf(q, sizeof q, "%s/file", dir);
    int fd = open(q, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    strcat(q, "/x.dmp");
    assert_int_equal(ld_dmp_open(q, &d, &derr), LD_STATUS_NOT_A_DIRECTORY);
    assert_int_equal(ld_sink_file_open(q, &sink), LD_STATUS_NOT_A_DIRECTORY);
    assert_int_equal(ld_os_error(LD_STATUS_NOT_A_DIRECTORY), ENOTDIR);
}

static void write_hello(ld_sink *sink)
{
    assert_int_equal(sink->write(sink, 0, "hello", 5), LD_STATUS_SUCCESS);
}

/* 252 and 255 bytes are valid names: the dump is written under them, by
 * way of a shorter .partial, and nothing else is left. */
static void long_valid_name(void **state)
{
    (void)state;
    for (size_t len = NAME_MAX - 3; len <= NAME_MAX; len += 3) {
        char *p = long_path('n', len);
        const char *name = p + strlen(dir) + 1;
        char tmp[NAME_MAX + 1], again[NAME_MAX + 1];
        assert_int_equal(ld_sink_file_partial_name(name, tmp, sizeof tmp), LD_STATUS_SUCCESS);
        assert_int_equal(ld_sink_file_partial_name(name, again, sizeof again), LD_STATUS_SUCCESS);
        assert_string_equal(tmp, again); /* the same at every run */
        assert_true(strlen(tmp) <= NAME_MAX);
        assert_string_equal(tmp + strlen(tmp) - 8, ".partial");
        ld_sink *sink;
        assert_int_equal(ld_sink_file_open(p, &sink), LD_STATUS_SUCCESS);
        write_hello(sink);
        char tp[sizeof dir + NAME_MAX + 2];
        snprintf(tp, sizeof tp, "%s/%s", dir, tmp);
        assert_int_equal(access(tp, F_OK), 0); /* written under the short name */
        assert_int_equal(sink->finish(sink, 5), LD_STATUS_SUCCESS);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_size, 5);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(entries(), 1);
        assert_int_equal(unlink(p), 0);
        /* the policy file too (its temporary name is NAME.tmp) */
        ld_settings s;
        ld_settings_init(&s);
        assert_int_equal(ld_settings_save(&s, p), LD_STATUS_SUCCESS);
        assert_int_equal(entries(), 1);
        assert_int_equal(unlink(p), 0);
        free(p);
    }
    /* names sharing the kept prefix get different temporary names; a cut
     * never splits a UTF-8 character */
    char a[NAME_MAX + 1], b[NAME_MAX + 1], ta[NAME_MAX + 1], tb[NAME_MAX + 1];
    memset(a, 'n', NAME_MAX - 1);
    a[NAME_MAX - 1] = 0;
    memcpy(b, a, sizeof a);
    b[NAME_MAX - 2] = 'm';
    assert_int_equal(ld_sink_file_partial_name(a, ta, sizeof ta), LD_STATUS_SUCCESS);
    assert_int_equal(ld_sink_file_partial_name(b, tb, sizeof tb), LD_STATUS_SUCCESS);
    assert_string_not_equal(ta, tb);
    char u[NAME_MAX + 1] = "a";
    for (int i = 0; i < 126; i++)
        strcat(u, "\xc3\xa9"); /* é, 2 bytes: lead bytes at odd offsets */
    assert_int_equal(ld_sink_file_partial_name(u, ta, sizeof ta), LD_STATUS_SUCCESS);
    const char *tilde = strchr(ta, '~');
    assert_non_null(tilde);
    assert_int_equal((tilde - ta) % 2, 1); /* "a" + whole characters */
    assert_int_equal(ld_sink_file_partial_name(u, ta, 20), LD_STATUS_BUFFER_TOO_SMALL);
}

/* A writer killed while writing a long name leaves its short .partial; the
 * next sink for that name finds and removes it. */
static void long_name_leftover_removed(void **state)
{
    (void)state;
    char *p = long_path('k', NAME_MAX - 3);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        ld_sink *sink;
        if (ld_sink_file_open(p, &sink) != LD_STATUS_SUCCESS || sink->write(sink, 0, "half", 4) != LD_STATUS_SUCCESS)
            _exit(1);
        _exit(0); /* neither finish nor abort: as if killed */
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(entries(), 1); /* the leftover */
    assert_int_equal(access(p, F_OK), -1);
    ld_sink *sink;
    assert_int_equal(ld_sink_file_open(p, &sink), LD_STATUS_SUCCESS);
    write_hello(sink);
    assert_int_equal(sink->finish(sink, 5), LD_STATUS_SUCCESS);
    assert_int_equal(entries(), 1); /* only the dump */
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_size, 5);
    free(p);
}

/* Every call that takes an ld_error fills it the same way: cleared first,
 * the status it returns on failure (with or without a message), the OS
 * error and the file offset when there are such, and clear again after a
 * success. */
static void error_detail(void **state)
{
    (void)state;
    ld_error err;
    /* a file that cannot be opened: its errno, no offset in any file */
    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing.dmp", dir);
    ld_dmp *d = NULL;
    memset(&err, 0x5a, sizeof err);
    assert_int_equal(ld_dmp_open(missing, &d, &err), LD_STATUS_NO_SUCH_FILE);
    assert_int_equal(err.status, LD_STATUS_NO_SUCH_FILE);
    assert_int_equal(err.os_error, ENOENT);
    assert_int_equal(err.reason, 0);
    assert_true(err.offset == LD_ERROR_NO_OFFSET);
    assert_non_null(strstr(err.message, "cannot open"));
    /* a file whose content is wrong: the offset it is about */
    static const uint8_t junk[0x2000] = {'N', 'O', 'P', 'E'};
    assert_int_equal(ld_dmp_open_memory(junk, sizeof junk, &d, &err), LD_STATUS_FILE_CORRUPT);
    assert_int_equal(err.status, LD_STATUS_FILE_CORRUPT);
    assert_int_equal(err.os_error, 0);
    assert_true(err.offset == 0);
    assert_non_null(strstr(err.message, "PAGE"));
    /* a refusal without a message still says its status */
    assert_int_equal(ld_dmp_open_memory(NULL, 1, NULL, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.status, LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(ld_reports_open(NULL, NULL, &err), LD_STATUS_INVALID_PARAMETER);
    assert_int_equal(err.status, LD_STATUS_INVALID_PARAMETER);
    assert_string_equal(err.message, "");
    /* a success leaves it clear, whatever it held */
    ld_settings s;
    ld_settings_init(&s);
    assert_int_equal(ld_settings_set(&s, "Nope", "1", &err), LD_STATUS_NOT_FOUND);
    assert_int_equal(err.status, LD_STATUS_NOT_FOUND);
    assert_int_equal(ld_settings_set(&s, "DumpFileSize", "7", &err), LD_STATUS_SUCCESS);
    assert_int_equal(err.status, LD_STATUS_SUCCESS);
    assert_int_equal(err.os_error, 0);
    assert_true(err.offset == LD_ERROR_NO_OFFSET);
    assert_string_equal(err.message, "");
    /* an unsafe folder on the way to a settings file: the errno behind it */
    char file[160];
    snprintf(file, sizeof file, "%s/no-such-folder/x.conf", dir);
    assert_int_equal(ld_settings_load(&s, file, &err), LD_STATUS_NO_SUCH_FILE);
    assert_int_equal(err.os_error, ENOENT);
    assert_non_null(strstr(err.message, "no-such-folder"));
    /* and NULL is always fine */
    assert_int_equal(ld_settings_set(&s, "Nope", "1", NULL), LD_STATUS_NOT_FOUND);
    ld_error_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errno_map),
        cmocka_unit_test_setup_teardown(name_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(long_valid_name, setup, teardown),
        cmocka_unit_test_setup_teardown(long_name_leftover_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(error_detail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
