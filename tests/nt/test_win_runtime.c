/* The Win32 runtime (src/runtime/win/), run under wine by test_wine.sh:
 * the default platform, the file sink (a new file named only when
 * finished, never over a file, gone when aborted, a crashed writer's
 * leftover replaced, a live writer's refused), and the driver's client
 * with no driver loaded (a clear status, no file left behind). Plain C,
 * one line per check, exit status the number of failures. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "livedump/livedump.h"
#include "livedump/sys/platform.h"
#include "livedump/sys/sink.h"

static int failures;

#define CHECK(cond, what)                                                 \
    do {                                                                  \
        if (cond) {                                                       \
            printf("ok: %s\n", what);                                     \
        } else {                                                          \
            printf("FAIL: %s (line %d)\n", what, __LINE__);               \
            failures++;                                                   \
        }                                                                 \
    } while (0)

static bool exists(const char *path)
{
    return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}

static long long size_of(const char *path)
{
    WIN32_FILE_ATTRIBUTE_DATA a;
    if (!GetFileAttributesExA(path, GetFileExInfoStandard, &a))
        return -1;
    return (long long)a.nFileSizeHigh << 32 | a.nFileSizeLow;
}

static void test_platform(void)
{
    const ld_platform *p = ld_platform_default();
    CHECK(p && p->version == LD_PLATFORM_VERSION, "default platform");
    void *m = p->alloc(p->ctx, 100);
    CHECK(m != NULL, "platform alloc");
    p->free(p->ctx, m);
    uint64_t a = p->now_ns(p->ctx);
    Sleep(20);
    uint64_t b = p->now_ns(p->ctx);
    CHECK(b > a && b - a >= 10000000ull, "monotonic time advances");
    CHECK(p->system_time(p->ctx) > 130000000000000000ull, "system time is a FILETIME after 2012");
    void *lock = NULL;
    CHECK(p->lock_create(p->ctx, &lock) == LD_STATUS_SUCCESS, "lock");
    p->lock_acquire(p->ctx, lock);
    p->lock_release(p->ctx, lock);
    p->lock_destroy(p->ctx, lock);
}

static void test_file_sink(void)
{
    const char *path = "win-sink.bin", *partial = "win-sink.bin.partial";
    DeleteFileA(path);
    DeleteFileA(partial);
    ld_sink *s = NULL;
    CHECK(ld_sink_file_open(path, &s) == LD_STATUS_SUCCESS, "file sink opens");
    CHECK(exists(partial) && !exists(path), "written under .partial, not yet named");
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    CHECK(s->write(s, 8192, buf, sizeof buf) == LD_STATUS_SUCCESS, "positioned write past a hole");
    CHECK(s->write(s, 0, "head", 4) == LD_STATUS_SUCCESS, "write at 0");
    ld_sink *again = NULL;
    CHECK(ld_sink_file_open(path, &again) == LD_STATUS_DEVICE_BUSY, "a live writer's .partial is busy");
    CHECK(s->finish(s, 12288) == LD_STATUS_SUCCESS, "finish");
    CHECK(exists(path) && !exists(partial) && size_of(path) == 12288, "named, full size, .partial gone");
    CHECK(ld_sink_file_open(path, &s) == LD_STATUS_OBJECT_NAME_COLLISION, "never over an existing file");
    DeleteFileA(path);

    CHECK(ld_sink_file_open(path, &s) == LD_STATUS_SUCCESS, "file sink opens again");
    CHECK(s->write(s, 0, buf, 100) == LD_STATUS_SUCCESS, "write");
    s->abort(s);
    CHECK(!exists(path) && !exists(partial), "abort leaves nothing");

    /* a crashed writer's leftover */
    HANDLE h = CreateFileA(partial, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
    CloseHandle(h);
    CHECK(exists(partial), "a leftover .partial");
    CHECK(ld_sink_file_open(path, &s) == LD_STATUS_SUCCESS, "the leftover is replaced");
    s->abort(s);
    CHECK(!exists(partial), "and gone with the abort");

    char name[64];
    CHECK(ld_sink_file_partial_name("x.dmp", name, sizeof name) == LD_STATUS_SUCCESS && !strcmp(name, "x.dmp.partial"),
          "partial name");
    CHECK(ld_sink_file_openat(0, "x", &s) == LD_STATUS_NOT_SUPPORTED, "openat is POSIX only");
}

static void test_client_without_driver(void)
{
    ld_nt_request req;
    memset(&req, 0, sizeof req);
    req.version = LD_NT_REQUEST_VERSION;
    req.size = sizeof req;
    strcpy(req.format, "dmp");
    ld_nt_reply reply;
    DeleteFileA("nodriver.dmp");
    ld_status st = ld_nt_capture(&req, "nodriver.dmp", NULL, NULL, &reply);
    CHECK(st == LD_STATUS_NO_SUCH_FILE, "no driver: STATUS_NO_SUCH_FILE");
    CHECK(!exists("nodriver.dmp") && !exists("nodriver.dmp.partial"), "no driver: no file left");
    req.version = 9;
    CHECK(ld_nt_capture(&req, "nodriver.dmp", NULL, NULL, &reply) == LD_STATUS_INVALID_PARAMETER, "bad request refused");
}

int main(void)
{
    test_platform();
    test_file_sink();
    test_client_without_driver();
    printf("%d failure(s)\n", failures);
    return failures;
}
