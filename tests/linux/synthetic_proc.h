/* A synthetic machine for the Linux backend, in files: a /proc/kcore ELF
 * (notes, two direct-map RAM segments, the kernel text mapped a second
 * time), /proc/iomem, /proc/kpageflags, a /proc tree (a task per CPU,
 * self/mountinfo and self/cgroup), a lockdown file and a stand-in cgroup v2
 * directory that freezes at once. Every RAM page's content is
 * synth_page(pfn). For tests that drive whole captures (the fault sweep). */
#ifndef LD_TEST_SYNTHETIC_PROC_H
#define LD_TEST_SYNTHETIC_PROC_H

#include <stdbool.h>
#include <stdint.h>

#include "livedump/linux.h"

#define SYNTH_PAGE 4096ull
/* RAM: pfns 1..0x9f and 0x100..0x1ff; the kernel image at 0x100..0x10f. */
#define SYNTH_A_FIRST 0x1ull
#define SYNTH_A_PAGES 0x9full
#define SYNTH_B_FIRST 0x100ull
#define SYNTH_B_PAGES 0x100ull
#define SYNTH_IMAGE_FIRST 0x100ull
#define SYNTH_IMAGE_PAGES 0x10ull
#define SYNTH_MAX_PFN (SYNTH_B_FIRST + SYNTH_B_PAGES)

typedef struct synth_proc {
    char dir[256];
    char kcore[300], iomem[300], kpageflags[300], proc[300], lockdown[300], cgroup[300];
} synth_proc;

/* Make the files under a new folder in /tmp; false (errno set) on failure. */
bool synth_proc_create(synth_proc *sp);
/* Remove them. */
void synth_proc_destroy(synth_proc *sp);
/* A config reading them, for 2 CPUs, freezing the stand-in cgroup. */
void synth_proc_config(const synth_proc *sp, ld_linux_config *cfg);
/* What the stand-in cgroup's cgroup.freeze holds now: '0' thawed, '1'
 * frozen, 0 unreadable. */
char synth_cgroup_freeze(const synth_proc *sp);

bool synth_is_ram(uint64_t pfn);
/* The content of a RAM page (SYNTH_PAGE bytes); a few are all zero. */
void synth_page(uint64_t pfn, uint8_t *out);

#endif
