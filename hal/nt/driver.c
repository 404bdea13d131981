/* livedump.sys: the driver's entry, its device and its one IOCTL.
 *
 * The device \Device\LiveDump (\\.\LiveDump) is created with
 * FILE_DEVICE_SECURE_OPEN and then given a DACL that lets SYSTEM and
 * Administrators in and nobody else: IoCreateDeviceSecure (and its SDDL
 * "D:P(A;;GA;;;SY)(A;;GA;;;BA)") lives in a static library mingw-w64 does
 * not have, so the descriptor is built by hand (RtlCreateAcl,
 * RtlAddAccessAllowedAce with SeExports' SIDs) and set with
 * ZwSetSecurityObject. Until that is done the device is not opened
 * (DO_DEVICE_INITIALIZING stays set); if it cannot be done, DriverEntry
 * fails.
 *
 * IOCTL_CAPTURE (METHOD_BUFFERED, PASSIVE_LEVEL in the caller's thread):
 * the request names a file the caller opened; the handle is referenced
 * with the caller's access mode (it must grant FILE_WRITE_DATA to the
 * caller and be synchronous), reopened as a kernel handle for the system
 * thread that writes it, and the reply (status, stats, result, events)
 * goes back in the system buffer. The IRP completes with STATUS_SUCCESS
 * whenever a reply was written, so the I/O manager copies it out; the
 * capture's own status is in the reply.
 *
 * Unload: only when no handle is open (the I/O manager's rule), so no
 * capture runs; every DPC of a stop has returned (the backend flushed
 * them when it closed). Windows only: this file is not part of the
 * stand-in build. */
#include "nt_internal.h"

static UNICODE_STRING device_name = RTL_CONSTANT_STRING(LD_NT_DEVICE_KERNEL_NAME);
static UNICODE_STRING link_name = RTL_CONSTANT_STRING(LD_NT_DEVICE_LINK_NAME);

DRIVER_INITIALIZE DriverEntry;
static DRIVER_UNLOAD unload;
static DRIVER_DISPATCH dispatch_open_close;
static DRIVER_DISPATCH dispatch_ioctl;

/* SYSTEM and Administrators: all access; nobody else. */
static NTSTATUS protect(PDEVICE_OBJECT dev)
{
    PSID sids[2] = {SeExports->SeLocalSystemSid, SeExports->SeAliasAdminsSid};
    ULONG size = sizeof(ACL);
    for (int i = 0; i < 2; i++)
        size += (ULONG)(sizeof(ACCESS_ALLOWED_ACE) - sizeof(ULONG)) + RtlLengthSid(sids[i]);
    PACL acl = ldn_alloc(size);
    if (!acl)
        return STATUS_INSUFFICIENT_RESOURCES;
    SECURITY_DESCRIPTOR sd;
    NTSTATUS s = RtlCreateSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
    if (NT_SUCCESS(s))
        s = RtlCreateAcl(acl, size, ACL_REVISION);
    for (int i = 0; i < 2 && NT_SUCCESS(s); i++)
        s = RtlAddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, sids[i]);
    if (NT_SUCCESS(s))
        s = RtlSetDaclSecurityDescriptor(&sd, TRUE, acl, FALSE);
    HANDLE h = NULL;
    if (NT_SUCCESS(s))
        s = ObOpenObjectByPointer(dev, OBJ_KERNEL_HANDLE, NULL, WRITE_DAC, NULL, KernelMode, &h);
    if (NT_SUCCESS(s)) {
        s = ZwSetSecurityObject(h, DACL_SECURITY_INFORMATION, &sd);
        ZwClose(h);
    }
    ldn_free(acl);
    return s;
}

static NTSTATUS complete(PIRP irp, NTSTATUS status, ULONG_PTR info)
{
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = info;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

static NTSTATUS NTAPI dispatch_open_close(PDEVICE_OBJECT dev, PIRP irp)
{
    (void)dev;
    return complete(irp, STATUS_SUCCESS, 0);
}

/* The caller's file as a kernel handle the system thread may use: the
 * caller must hold FILE_WRITE_DATA on it, it must do synchronous I/O
 * (ZwWriteFile then returns when the bytes are written), and it must be a
 * file: a volume or a device opened directly is refused, so a mistaken
 * handle cannot have a dump written over a disk. */
static NTSTATUS kernel_handle(uint64_t user_handle, KPROCESSOR_MODE mode, HANDLE *out)
{
    PFILE_OBJECT fo = NULL;
    NTSTATUS s = ObReferenceObjectByHandle((HANDLE)(ULONG_PTR)user_handle, FILE_WRITE_DATA, *IoFileObjectType, mode,
                                           (PVOID *)&fo, NULL);
    if (!NT_SUCCESS(s))
        return s;
    if (!(fo->Flags & FO_SYNCHRONOUS_IO) || (fo->Flags & (FO_VOLUME_OPEN | FO_DIRECT_DEVICE_OPEN)))
        s = STATUS_INVALID_PARAMETER;
    else
        s = ObOpenObjectByPointer(fo, OBJ_KERNEL_HANDLE, NULL, FILE_WRITE_DATA | SYNCHRONIZE, *IoFileObjectType,
                                  KernelMode, out);
    ObDereferenceObject(fo);
    return s;
}

static NTSTATUS NTAPI dispatch_ioctl(PDEVICE_OBJECT dev, PIRP irp)
{
    (void)dev;
    PIO_STACK_LOCATION sl = IoGetCurrentIrpStackLocation(irp);
    ULONG code = sl->Parameters.DeviceIoControl.IoControlCode;
    ULONG in_len = sl->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out_len = sl->Parameters.DeviceIoControl.OutputBufferLength;
    void *buf = irp->AssociatedIrp.SystemBuffer;
    if (code != LD_NT_IOCTL_CAPTURE)
        return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    if (in_len != sizeof(ld_nt_request) || out_len < sizeof(ld_nt_reply) || !buf)
        return complete(irp, STATUS_INVALID_PARAMETER, 0);
    /* the system buffer is input and output: keep the request apart */
    ld_nt_request *req = ldn_alloc(sizeof *req);
    if (!req)
        return complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
    memcpy(req, buf, sizeof *req);
    size_t len = 0;
    ld_status st = ldn_request_check(req);
    HANDLE file = NULL;
    if (st == LD_STATUS_SUCCESS)
        st = ldn_status(kernel_handle(req->file, irp->RequestorMode, &file));
    if (st == LD_STATUS_SUCCESS) {
        st = ldn_service_capture(req, file, buf, out_len, &len, NULL);
        ZwClose(file);
    }
    if (len < sizeof(ld_nt_reply)) {
        /* refused before any work: a reply that says why (written in place:
         * the reply is too large for a kernel stack frame) */
        ld_nt_reply *r = buf; /* pool memory: aligned */
        memset(r, 0, sizeof *r);
        r->version = LD_NT_REPLY_VERSION;
        r->size = sizeof *r;
        r->status = st;
        r->result.status = st;
        len = sizeof *r;
    }
    ldn_free(req);
    return complete(irp, STATUS_SUCCESS, len);
}

static void NTAPI unload(PDRIVER_OBJECT drv)
{
    IoDeleteSymbolicLink(&link_name);
    if (drv->DeviceObject)
        IoDeleteDevice(drv->DeviceObject);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT drv, PUNICODE_STRING registry)
{
    (void)registry;
    PDEVICE_OBJECT dev = NULL;
    NTSTATUS s = IoCreateDevice(drv, 0, &device_name, FILE_DEVICE_UNKNOWN, FILE_DEVICE_SECURE_OPEN, FALSE, &dev);
    if (!NT_SUCCESS(s))
        return s;
    s = protect(dev);
    if (NT_SUCCESS(s))
        s = IoCreateSymbolicLink(&link_name, &device_name);
    if (!NT_SUCCESS(s)) {
        IoDeleteDevice(dev);
        return s;
    }
    drv->MajorFunction[IRP_MJ_CREATE] = dispatch_open_close;
    drv->MajorFunction[IRP_MJ_CLOSE] = dispatch_open_close;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = dispatch_ioctl;
    drv->DriverUnload = unload;
    dev->Flags |= DO_BUFFERED_IO;
    dev->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}
