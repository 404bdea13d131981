/* LD_PRELOAD shim for the CLI test: saving the throttling state (renameat
 * onto ".LastFullLiveReport") fails with ENOSPC once LD_TEST_STATE_SAVES_OK
 * more saves went through, as on a disk the dump just filled (a full file
 * system cannot be made on demand without mount rights). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*renameat_fn)(int, const char *, int, const char *);

static long saves_ok = -2; /* -2: not read yet; -1: never fail */

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    if (saves_ok == -2) {
        const char *v = getenv("LD_TEST_STATE_SAVES_OK");
        saves_ok = v ? strtol(v, NULL, 10) : -1;
    }
    const char *base = strrchr(newpath, '/');
    base = base ? base + 1 : newpath;
    if (!strcmp(base, ".LastFullLiveReport") && saves_ok >= 0) {
        if (saves_ok == 0) {
            errno = ENOSPC;
            return -1;
        }
        saves_ok--;
    }
    renameat_fn real = (renameat_fn)dlsym(RTLD_NEXT, "renameat");
    return real(olddirfd, oldpath, newdirfd, newpath);
}
