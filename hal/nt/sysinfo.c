/* What the running kernel says of itself, for the .dmp header a debugger
 * needs: KeInitializeCrashDumpHeader(DUMP_TYPE_FULL) (documented, any
 * IRQL) fills a DUMP_HEADER64 with the version, DirectoryTableBase (of the
 * System process when called from a system thread, as the driver does),
 * PfnDataBase, PsLoadedModuleList, PsActiveProcessHead, the machine type,
 * the processor count and KdDebuggerDataBlock. We take those values; the
 * context, the required dump size, the comment, the bug check and the run
 * list (it caps at 42) are written by the engine's .dmp writer itself.
 *
 * The debugger data block: since Windows 8 the kernel keeps it encoded in
 * memory and decodes it only into its own dumps. KeCapturePersistentThreadState
 * (exported, undocumented, looked up at run time) writes a triage dump whose
 * TRIAGE_DUMP64 (at 0x2000) names a decoded copy (DebuggerDataOffset/Size
 * at +0x70/+0x74). When it is there and carries the "KDBG" tag, the page
 * reads put it over the block in the dump's copy of memory (memory.c):
 * the dump holds it decoded, as Windows' own do, and memory is never
 * written. Otherwise the dump holds what memory holds, and the stats say
 * why (kdbg_status). */
#include "nt_internal.h"

#define HDR_BYTES 0x2000u
#define HDR_SIGNATURE 0x000u
#define HDR_VALID_DUMP 0x004u
#define HDR_MAJOR 0x008u
#define HDR_MINOR 0x00Cu
#define HDR_DTB 0x010u
#define HDR_PFN_DB 0x018u
#define HDR_MODULE_LIST 0x020u
#define HDR_PROCESS_LIST 0x028u
#define HDR_MACHINE 0x030u
#define HDR_KDBG 0x080u

#define TRIAGE_AT 0x2000u
#define TRIAGE_DEBUGGER_OFFSET 0x70u
#define TRIAGE_DEBUGGER_SIZE 0x74u
#define KDBG_TAG_AT 0x10u
#define KDBG_SIZE_AT 0x14u
#define KDBG_MAX_BYTES 0x1000u

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static ld_status decode_kdbg(ldn *n)
{
    ldn_kdbg *k = &n->kdbg;
    uint64_t va = n->sys.debugger_data_block;
    if (!va)
        return LD_STATUS_NOT_FOUND;
    UNICODE_STRING name = RTL_CONSTANT_STRING(L"KeCapturePersistentThreadState");
    ldn_capture_persistent_fn capture = (ldn_capture_persistent_fn)MmGetSystemRoutineAddress(&name);
    if (!capture)
        return LD_STATUS_NOT_SUPPORTED;
    uint8_t *buf = ldn_zalloc(LDN_PERSISTENT_STATE_BYTES);
    void *ctx_mem = ldn_zalloc(sizeof(CONTEXT) + 16);
    ld_status st = LD_STATUS_SUCCESS;
    if (!buf || !ctx_mem)
        st = LD_STATUS_NO_MEMORY;
    ULONG len = 0;
    if (st == LD_STATUS_SUCCESS) {
        CONTEXT *ctx = (CONTEXT *)(((ULONG_PTR)ctx_mem + 15) & ~(ULONG_PTR)15);
        RtlCaptureContext(ctx);
        len = capture(ctx, NULL, LD_BUGCHECK_LIVE_SYSTEM_DUMP, 0, 0, 0, 0, buf);
        /* 0: dumps disabled or encrypted, the buffer untouched */
        if (len < TRIAGE_AT + TRIAGE_DEBUGGER_SIZE + 4 || len > LDN_PERSISTENT_STATE_BYTES)
            st = LD_STATUS_UNSUCCESSFUL;
    }
    uint32_t off = 0, size = 0;
    if (st == LD_STATUS_SUCCESS) {
        off = get32(buf + TRIAGE_AT + TRIAGE_DEBUGGER_OFFSET);
        size = get32(buf + TRIAGE_AT + TRIAGE_DEBUGGER_SIZE);
        if (off >= len || size > len - off || size < KDBG_SIZE_AT + 4 || size > KDBG_MAX_BYTES ||
            memcmp(buf + off + KDBG_TAG_AT, "KDBG", 4) != 0)
            st = LD_STATUS_FILE_CORRUPT;
    }
    if (st == LD_STATUS_SUCCESS) {
        uint32_t own = get32(buf + off + KDBG_SIZE_AT); /* the block's own Size field */
        if (own && own < size)
            size = own;
        uint32_t first = LDN_PAGE - (uint32_t)(va % LDN_PAGE);
        k->first_bytes = size < first ? size : first;
        PHYSICAL_ADDRESS p0 = MmGetPhysicalAddress((PVOID)(ULONG_PTR)va);
        PHYSICAL_ADDRESS p1 = {0};
        if (size > k->first_bytes)
            p1 = MmGetPhysicalAddress((PVOID)(ULONG_PTR)(va + k->first_bytes));
        k->bytes = ldn_alloc(size);
        if (!k->bytes)
            st = LD_STATUS_NO_MEMORY;
        else if (!p0.QuadPart || (size > k->first_bytes && !p1.QuadPart))
            st = LD_STATUS_NOT_FOUND;
        if (st == LD_STATUS_SUCCESS) {
            memcpy(k->bytes, buf + off, size);
            k->va = va;
            k->size = size;
            k->pa[0] = (uint64_t)p0.QuadPart;
            k->pa[1] = (uint64_t)p1.QuadPart;
            k->valid = true;
        }
    }
    ldn_free(buf);
    ldn_free(ctx_mem);
    return st;
}

/* Read the header's values (once per backend: one capture). */
ld_status ldn_sysinfo_refresh(ldn *n)
{
    if (n->have_sys)
        return LD_STATUS_SUCCESS;
    if (!n->dump_header) {
        n->dump_header = ldn_zalloc(HDR_BYTES);
        if (!n->dump_header)
            return LD_STATUS_NO_MEMORY;
    }
    memset(&n->sys, 0, sizeof n->sys);
    n->sys.machine_type = 0x8664;
    ULONG needed = HDR_BYTES; /* some builds read it before writing it */
    NTSTATUS s = KeInitializeCrashDumpHeader(LDN_DUMP_TYPE_FULL, 0, n->dump_header, HDR_BYTES, &needed);
    const uint8_t *h = n->dump_header;
    if (NT_SUCCESS(s) && !memcmp(h + HDR_SIGNATURE, "PAGE", 4) && !memcmp(h + HDR_VALID_DUMP, "DU64", 4)) {
        n->sys.os_major = get32(h + HDR_MAJOR);
        n->sys.os_minor = get32(h + HDR_MINOR);
        n->sys.directory_table_base = get64(h + HDR_DTB);
        n->sys.pfn_database = get64(h + HDR_PFN_DB);
        n->sys.loaded_module_list = get64(h + HDR_MODULE_LIST);
        n->sys.active_process_list = get64(h + HDR_PROCESS_LIST);
        n->sys.machine_type = get32(h + HDR_MACHINE);
        n->sys.debugger_data_block = get64(h + HDR_KDBG);
    }
    /* Without the header a dump still has its pages: the fields stay 0. */
    n->have_sys = true;
    n->stats.kdbg_decoded = 0;
    n->stats.kdbg_status = LD_STATUS_NOT_SUPPORTED;
    if (!(n->cfg.nt_flags & LD_NT_NO_KDBG_DECODE)) {
        n->stats.kdbg_status = decode_kdbg(n);
        n->stats.kdbg_decoded = n->kdbg.valid;
    }
    return LD_STATUS_SUCCESS;
}

ld_status ldn_system_info(void *ctx, ld_system_info *out)
{
    ldn *n = ctx;
    if (!out)
        return LD_STATUS_INVALID_PARAMETER;
    ld_status st = ldn_sysinfo_refresh(n);
    if (st != LD_STATUS_SUCCESS)
        return st;
    *out = n->sys;
    return LD_STATUS_SUCCESS;
}

void ldn_sysinfo_close(ldn *n)
{
    ldn_free(n->dump_header);
    ldn_free(n->kdbg.bytes);
}
