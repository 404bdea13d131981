/* ld_capture_to_path, the one call an embedder makes: the format from the
 * file's extension (read back from the file's own magic bytes, not from
 * the library), a deferred request, a check that stops the work, and a
 * name that is taken. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "livedump/livedump.h"

static char dir[64];
static ld_sim *sim;
static ld_engine *engine;
static unsigned events;

static void count_event(void *arg, const ld_event *ev)
{
    (void)arg;
    (void)ev;
    events++;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ld-capfile-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    ld_sim_config cfg;
    ld_sim_config_init(&cfg);
    cfg.memory_bytes = 256ull << 20;
    if (ld_sim_create(&cfg, &sim) != LD_STATUS_SUCCESS)
        return -1;
    if (ld_engine_create(ld_sim_hal(sim), NULL, &engine) != LD_STATUS_SUCCESS)
        return -1;
    return ld_engine_subscribe(engine, LD_CHANNEL_MASK_ALL, count_event, NULL) == LD_STATUS_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ld_engine_destroy(engine);
    ld_sim_destroy(sim);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* The first bytes of a file. */
static size_t head(const char *path, unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void test_format_from_extension(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    char p[256];
    unsigned char b[8];
    struct stat sb;

    path_of(p, sizeof p, "a.dmp");
    assert_int_equal(ld_capture_to_path(engine, &req, p, NULL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(head(p, b, 8), 8);
    assert_memory_equal(b, "PAGEDU64", 8);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    path_of(p, sizeof p, "a.elf");
    assert_int_equal(ld_capture_to_path(engine, &req, p, NULL, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(head(p, b, 4), 4);
    assert_memory_equal(b, "\x7f" "ELF", 4);

    /* No extension a format has: a raw image, as large as the machine's
     * physical address space (the sim's last range ends at 4 GiB + RAM
     * above it, or below 3 GiB for this small machine). */
    ld_result r;
    path_of(p, sizeof p, "a.bin");
    assert_int_equal(ld_capture_to_path(engine, &req, p, NULL, &r), LD_STATUS_SUCCESS);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, r.file_bytes);
    assert_int_equal(r.header_bytes, 0);

    /* An explicit format wins over the extension. */
    ld_file_options o;
    ld_file_options_init(&o);
    o.format = ld_format_dmp();
    path_of(p, sizeof p, "b.raw");
    assert_int_equal(ld_capture_to_path(engine, &req, p, &o, NULL), LD_STATUS_SUCCESS);
    assert_int_equal(head(p, b, 8), 8);
    assert_memory_equal(b, "PAGEDU64", 8);
}

static void test_deferred_request(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    req.flags |= LD_FLAG_DEFER;
    char p[256];
    path_of(p, sizeof p, "deferred.dmp");
    ld_result r;
    assert_int_equal(ld_capture_to_path(engine, &req, p, NULL, &r), LD_STATUS_SUCCESS);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(ld_engine_deferred_count(engine), 0); /* written, so freed */
}

static unsigned checks;
static unsigned stop_after;

static ld_status stop_at(void *arg, uint64_t offset, size_t len)
{
    (void)arg;
    (void)offset;
    (void)len;
    return ++checks >= stop_after ? LD_STATUS_CANCELLED : LD_STATUS_SUCCESS;
}

static void test_check_stops(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    ld_file_options o;
    ld_file_options_init(&o);
    o.check = stop_at;
    char p[256], partial[300];
    for (int defer = 0; defer < 2; defer++) {
        for (unsigned when = 1; when <= 3; when++) {
            checks = 0;
            stop_after = when;
            if (defer)
                req.flags |= LD_FLAG_DEFER;
            else
                req.flags &= ~LD_FLAG_DEFER;
            snprintf(p, sizeof p, "%s/stopped-%d-%u.dmp", dir, defer, when);
            snprintf(partial, sizeof partial, "%s.partial", p);
            ld_result r;
            assert_int_equal(ld_capture_to_path(engine, &req, p, &o, &r), LD_STATUS_CANCELLED);
            assert_int_equal(r.status, LD_STATUS_CANCELLED);
            assert_int_equal(access(p, F_OK), -1);
            assert_int_equal(access(partial, F_OK), -1);
            assert_int_equal(ld_engine_deferred_count(engine), 0);
        }
    }
}

static void test_name_taken(void **state)
{
    (void)state;
    ld_capture_request req;
    ld_capture_request_init(&req);
    char p[256];
    path_of(p, sizeof p, "taken.raw");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("mine", f);
    fclose(f);
    unsigned before = events;
    ld_result r;
    ld_status st = ld_capture_to_path(engine, &req, p, NULL, &r);
    assert_int_equal(st, LD_STATUS_OBJECT_NAME_COLLISION);
    assert_int_equal(r.status, st);
    assert_int_equal(events, before); /* the engine did not run */
    unsigned char b[4];
    assert_int_equal(head(p, b, 4), 4);
    assert_memory_equal(b, "mine", 4);
    assert_int_equal(ld_capture_to_path(NULL, &req, p, NULL, NULL), LD_STATUS_INVALID_PARAMETER);
    ld_file_options o;
    ld_file_options_init(&o);
    o.version = 0;
    assert_int_equal(ld_capture_to_path(engine, &req, p, &o, NULL), LD_STATUS_INVALID_PARAMETER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_from_extension),
        cmocka_unit_test(test_deferred_request),
        cmocka_unit_test(test_check_stops),
        cmocka_unit_test(test_name_taken),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
