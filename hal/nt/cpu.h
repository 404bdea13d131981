/* A processor's control state, read with plain instructions (legal at any
 * IRQL: nothing here calls the kernel). mingw-w64 lacks __sidt, _sgdt,
 * _str and _sldt, so this is inline assembly; the stand-in build gets the
 * stand-in processor's values instead. */
#ifndef LDN_CPU_H
#define LDN_CPU_H

#include <stdint.h>

typedef struct ldn_cpu_regs {
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t gdtr_base, idtr_base;
    uint16_t gdtr_limit, idtr_limit;
    uint16_t tr, ldtr;
    uint16_t cs, ds, es, fs, gs, ss;
    uint64_t gs_base, fs_base, kernel_gs_base;
    uint32_t mxcsr;
} ldn_cpu_regs;

#define LDN_MSR_FS_BASE 0xC0000100u
#define LDN_MSR_GS_BASE 0xC0000101u
#define LDN_MSR_KERNEL_GS_BASE 0xC0000102u

#if defined(LDN_STANDIN)
void ldn_read_cpu_regs(ldn_cpu_regs *r);
#else
static inline uint64_t ldn_rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void ldn_read_cpu_regs(ldn_cpu_regs *r)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } gdtr, idtr;
    __asm__ volatile("mov %%cr0, %0" : "=r"(r->cr0));
    __asm__ volatile("mov %%cr2, %0" : "=r"(r->cr2));
    __asm__ volatile("mov %%cr3, %0" : "=r"(r->cr3));
    __asm__ volatile("mov %%cr4, %0" : "=r"(r->cr4));
    __asm__ volatile("mov %%cr8, %0" : "=r"(r->cr8));
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    __asm__ volatile("sidt %0" : "=m"(idtr));
    __asm__ volatile("str %0" : "=r"(r->tr));
    __asm__ volatile("sldt %0" : "=r"(r->ldtr));
    __asm__ volatile("mov %%cs, %0" : "=r"(r->cs));
    __asm__ volatile("mov %%ds, %0" : "=r"(r->ds));
    __asm__ volatile("mov %%es, %0" : "=r"(r->es));
    __asm__ volatile("mov %%fs, %0" : "=r"(r->fs));
    __asm__ volatile("mov %%gs, %0" : "=r"(r->gs));
    __asm__ volatile("mov %%ss, %0" : "=r"(r->ss));
    __asm__ volatile("stmxcsr %0" : "=m"(r->mxcsr));
    r->gdtr_base = gdtr.base;
    r->gdtr_limit = gdtr.limit;
    r->idtr_base = idtr.base;
    r->idtr_limit = idtr.limit;
    /* Architectural MSRs every x64 processor has: no #GP. */
    r->fs_base = ldn_rdmsr(LDN_MSR_FS_BASE);
    r->gs_base = ldn_rdmsr(LDN_MSR_GS_BASE);
    r->kernel_gs_base = ldn_rdmsr(LDN_MSR_KERNEL_GS_BASE);
}
#endif

#endif
