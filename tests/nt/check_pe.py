#!/usr/bin/env python3
"""Check livedump.sys's PE headers, read directly from the file.

Fails unless the image is x64 (PE32+, machine 0x8664), of the native
subsystem (a kernel driver), has an entry point, a correct checksum (a
driver needs one), ASLR and NX on, 4 KiB sections, no section both writable
and executable, imports only from ntoskrnl.exe and hal.dll and only the
routines of the allow-list (by name, never by ordinal), and no __chkstk,
no CRT (no import of a C runtime DLL, no CRT start-up symbol in the symbol
table). Prints what it found, the import list included.

usage: check_pe.py IMAGE ALLOW_LIST
"""
import struct
import sys

IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_MEM_WRITE = 0x80000000
IMAGE_SCN_CNT_CODE = 0x00000020
DLLCHAR_DYNAMIC_BASE = 0x0040
DLLCHAR_NX_COMPAT = 0x0100
ALLOWED_DLLS = {"ntoskrnl.exe", "hal.dll"}
# Symbols that mean a C runtime or a stack probe got linked in.
FORBIDDEN_SYMBOLS = {"__chkstk", "___chkstk_ms", "__chkstk_ms", "_alloca", "__alloca", "mainCRTStartup",
                     "WinMainCRTStartup", "DllMainCRTStartup", "_DllMainCRTStartup", "__main", "atexit",
                     "_CRT_INIT", "__security_check_cookie", "__security_init_cookie", "_pei386_runtime_relocator"}


class Pe:
    def __init__(self, data):
        self.data = data
        if data[:2] != b"MZ":
            raise ValueError("no MZ header")
        self.pe = struct.unpack_from("<I", data, 0x3C)[0]
        if data[self.pe:self.pe + 4] != b"PE\0\0":
            raise ValueError("no PE signature")
        coff = self.pe + 4
        (self.machine, self.nsections, _, self.symtab, self.nsymbols, self.optsize,
         self.characteristics) = struct.unpack_from("<HHIIIHH", data, coff)
        self.opt = coff + 20
        self.magic = struct.unpack_from("<H", data, self.opt)[0]
        self.entry = struct.unpack_from("<I", data, self.opt + 16)[0]
        self.section_alignment, self.file_alignment = struct.unpack_from("<II", data, self.opt + 32)
        self.checksum_at = self.opt + 64
        self.checksum, self.subsystem, self.dllchar = struct.unpack_from("<IHH", data, self.checksum_at)
        self.ndirs = struct.unpack_from("<I", data, self.opt + 108)[0]
        self.dirs = [struct.unpack_from("<II", data, self.opt + 112 + 8 * i) for i in range(self.ndirs)]
        self.sections = []
        at = self.opt + self.optsize
        for i in range(self.nsections):
            name, vsize, va, rawsize, rawptr = struct.unpack_from("<8sIIII", data, at + 40 * i)
            chars = struct.unpack_from("<I", data, at + 40 * i + 36)[0]
            self.sections.append((self.section_name(name), vsize, va, rawsize, rawptr, chars))

    def section_name(self, raw):
        name = raw.rstrip(b"\0").decode("ascii", "replace")
        if name.startswith("/") and self.symtab:  # a long name, in the string table
            strtab = self.symtab + 18 * self.nsymbols
            off = int(name[1:])
            end = self.data.index(b"\0", strtab + off)
            name = self.data[strtab + off:end].decode("ascii", "replace")
        return name

    def rva(self, rva):
        for _, vsize, va, rawsize, rawptr, _ in self.sections:
            if va <= rva < va + max(vsize, rawsize):
                return rawptr + rva - va
        raise ValueError(f"RVA 0x{rva:x} is in no section")

    def cstr(self, off):
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode("ascii", "replace")

    def imports(self):
        if self.ndirs < 2 or not self.dirs[1][0]:
            return []
        out = []
        at = self.rva(self.dirs[1][0])
        while True:
            lookup, _, _, name, first = struct.unpack_from("<IIIII", self.data, at)
            if not (lookup or name or first):
                break
            dll = self.cstr(self.rva(name))
            thunks = self.rva(lookup or first)
            while True:
                entry = struct.unpack_from("<Q", self.data, thunks)[0]
                if not entry:
                    break
                if entry >> 63:
                    out.append((dll, f"#ordinal {entry & 0xffff}"))
                else:
                    out.append((dll, self.cstr(self.rva(entry & 0x7fffffff) + 2)))
                thunks += 8
            at += 20
        return out

    def symbols(self):
        """Names in the COFF symbol table, if the image kept one."""
        names = set()
        if not self.symtab or not self.nsymbols:
            return names
        strtab = self.symtab + 18 * self.nsymbols
        i = 0
        while i < self.nsymbols:
            off = self.symtab + 18 * i
            raw = self.data[off:off + 8]
            if raw[:4] == b"\0\0\0\0":
                names.add(self.cstr(strtab + struct.unpack_from("<I", raw, 4)[0]))
            else:
                names.add(raw.rstrip(b"\0").decode("ascii", "replace"))
            aux = self.data[off + 17]
            i += 1 + aux
        return names

    def computed_checksum(self):
        """The PE checksum (as MapFileAndCheckSum computes it)."""
        data = bytearray(self.data)
        data[self.checksum_at:self.checksum_at + 4] = b"\0\0\0\0"
        if len(data) % 2:
            data += b"\0"
        total = 0
        for (word,) in struct.iter_unpack("<H", bytes(data)):
            total += word
            total = (total & 0xffff) + (total >> 16)
        total = (total & 0xffff) + (total >> 16)
        return (total + len(self.data)) & 0xffffffff


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as fh:
        pe = Pe(fh.read())
    allowed = set()
    with open(sys.argv[2]) as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                dll, _, name = line.partition("!")
                allowed.add((dll.lower(), name))
    problems = []

    def need(ok, what):
        if not ok:
            problems.append(what)

    need(pe.machine == 0x8664, f"machine 0x{pe.machine:x}, not x64 (0x8664)")
    need(pe.magic == 0x20B, f"optional header magic 0x{pe.magic:x}, not PE32+")
    need(pe.subsystem == 1, f"subsystem {pe.subsystem}, not native (1): not a kernel driver")
    need(pe.entry != 0, "no entry point (an unknown --entry is only a linker warning)")
    need(pe.checksum != 0 and pe.checksum == pe.computed_checksum(),
         f"checksum 0x{pe.checksum:x}, should be 0x{pe.computed_checksum():x} (drivers need a correct one)")
    need(pe.dllchar & DLLCHAR_DYNAMIC_BASE, "no DYNAMIC_BASE (ASLR)")
    need(pe.dllchar & DLLCHAR_NX_COMPAT, "no NX_COMPAT")
    need(pe.section_alignment == 0x1000, f"section alignment 0x{pe.section_alignment:x}, not 0x1000")
    for name, _, _, _, _, chars in pe.sections:
        executable = chars & (IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_CNT_CODE)
        need(not (executable and chars & IMAGE_SCN_MEM_WRITE), f"section {name} is writable and executable")
    imports = pe.imports()
    need(imports, "no imports at all: not linked against the kernel")
    for dll, name in imports:
        need(dll.lower() in ALLOWED_DLLS, f"imports from {dll}: only ntoskrnl.exe and hal.dll are allowed")
        need(not name.startswith("#"), f"imports {dll} {name}: by ordinal")
        need("chkstk" not in name.lower(), f"imports {name}: a stack probe")
        need((dll.lower(), name) in allowed or dll.lower() not in ALLOWED_DLLS,
             f"imports {dll}!{name}: not in the allow-list {sys.argv[2]}")
    for sym in sorted(pe.symbols() & FORBIDDEN_SYMBOLS):
        need(False, f"symbol {sym}: a C runtime or stack probe was linked in")
    sections = ", ".join(f"{n}" for n, *_ in pe.sections)
    print(f"{sys.argv[1]}: machine 0x{pe.machine:x}, subsystem {pe.subsystem}, entry 0x{pe.entry:x}, "
          f"checksum 0x{pe.checksum:x}, DllCharacteristics 0x{pe.dllchar:x}")
    print(f"sections: {sections}")
    by_dll = {}
    for dll, name in imports:
        by_dll.setdefault(dll, []).append(name)
    for dll, names in by_dll.items():
        print(f"imports from {dll} ({len(names)}): {' '.join(sorted(names))}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {len(imports)} imports, all in the allow-list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
