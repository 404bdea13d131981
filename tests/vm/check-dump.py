#!/usr/bin/python3
"""Check a live dump taken in the guest against independent readers.

usage: check-dump.py OUTDIR KDUMPFILE_READ

OUTDIR holds out/dump.elf (livedump, in the guest), out/iomem.txt (the
guest's /proc/iomem) and qemu.elf (QEMU's dump-guest-memory, taken right
after). Checks, each printed:
  1. every page of the kernel's code and rodata ranges is in dump.elf and
     identical to QEMU's dump;
  2. libkdumpfile (KDUMPFILE_READ, our small C program) and drgn open
     dump.elf and read the same physical bytes as this script's own parser;
  3. makedumpfile turns dump.elf into a filtered (-d 31), compressed (-c)
     kdump file, which libkdumpfile then reads: kernel text still matches.
Exit 0 iff all pass. Runs under Debian's /usr/bin/python3 (drgn's).
"""
import os
import random
import struct
import subprocess
import sys
import time

PAGE = 4096


class Elf:
    """A small ELF64 core reader of our own: PT_LOADs by physical address."""

    def __init__(self, path):
        self.f = open(path, 'rb')
        h = self.f.read(64)
        if h[:4] != b'\x7fELF' or h[4] != 2 or h[5] != 1:
            raise SystemExit('%s: not an ELF64 LSB file' % path)
        self.type, self.machine = struct.unpack_from('<HH', h, 16)
        phoff, = struct.unpack_from('<Q', h, 32)
        phnum, = struct.unpack_from('<H', h, 56)
        if phnum == 0xffff:
            shoff, = struct.unpack_from('<Q', h, 40)
            self.f.seek(shoff + 44)
            phnum, = struct.unpack('<I', self.f.read(4))
        self.loads, self.notes = [], []
        self.f.seek(phoff)
        raw = self.f.read(56 * phnum)
        for i in range(phnum):
            p_type, _, off, vaddr, paddr, filesz, memsz, _ = struct.unpack_from('<IIQQQQQQ', raw, 56 * i)
            if p_type == 1 and filesz:
                self.loads.append((paddr, filesz, off, vaddr))
            elif p_type == 4:
                self.notes += self._notes(off, filesz)
        self.loads.sort()

    def _notes(self, off, size):
        self.f.seek(off)
        buf, pos, out = self.f.read(size), 0, []
        while pos + 12 <= len(buf):
            namesz, descsz, ntype = struct.unpack_from('<III', buf, pos)
            name = buf[pos + 12:pos + 12 + namesz].rstrip(b'\0').decode(errors='replace')
            dpos = pos + 12 + ((namesz + 3) & ~3)
            out.append((name, ntype, buf[dpos:dpos + descsz]))
            pos = dpos + ((descsz + 3) & ~3)
        return out

    def read(self, pa, n):
        """n bytes at physical pa, or None if any of them is absent."""
        for paddr, filesz, off, _ in self.loads:
            if paddr <= pa and pa + n <= paddr + filesz:
                self.f.seek(off + pa - paddr)
                return self.f.read(n)
        return None

    def pages(self):
        return sum(s for _, s, _, _ in self.loads) // PAGE


def iomem_ranges(path, names):
    out = []
    for line in open(path):
        rng, _, name = line.strip().partition(' : ')
        if name in names:
            a, b = (int(x, 16) for x in rng.split('-'))
            out.append((name, a, b + 1))
    return out


def main():
    outdir, kdr = sys.argv[1], os.path.abspath(sys.argv[2])
    ours_path = os.path.join(outdir, 'out', 'dump.elf')
    ours, qemu = Elf(ours_path), Elf(os.path.join(outdir, 'qemu.elf'))
    fails = 0

    def check(ok, what):
        nonlocal fails
        print('%s %s' % ('PASS' if ok else 'FAIL', what), flush=True)
        fails += not ok

    notes = {}
    for name, t, desc in ours.notes:
        notes.setdefault((name, t), []).append(desc)
    print('dump.elf: %d PT_LOADs, %d pages, notes: %s' % (
        len(ours.loads), ours.pages(), ', '.join('%s/%d x%d' % (n, t, len(d)) for (n, t), d in notes.items())))
    vmci = notes.get(('VMCOREINFO', 0), [b''])[0]
    qvmci = [d for n, t, d in qemu.notes if n == 'VMCOREINFO']
    check(vmci.startswith(b'OSRELEASE='), 'VMCOREINFO note copied from /proc/kcore (%d bytes)' % len(vmci))
    if qvmci:
        check(qvmci[0].rstrip(b'\0') == vmci, "VMCOREINFO equals the one in QEMU's dump")
    pids = [struct.unpack_from('<I', d, 32)[0] for d in notes.get(('CORE', 1), [])]
    print('NT_PRSTATUS pr_pid per CPU: %s' % pids)

    # 1. kernel code and rodata, page by page, against QEMU's dump
    same = differ = missing = 0
    for name, a, b in iomem_ranges(os.path.join(outdir, 'out', 'iomem.txt'), ('Kernel code', 'Kernel rodata')):
        for pa in range((a + PAGE - 1) // PAGE * PAGE, b // PAGE * PAGE, PAGE):
            mine, theirs = ours.read(pa, PAGE), qemu.read(pa, PAGE)
            if mine is None or theirs is None:
                missing += 1
            elif mine == theirs:
                same += 1
            else:
                differ += 1
                print('  %s page %#x differs' % (name, pa))
    check(same > 0 and differ == 0 and missing == 0,
          'kernel code+rodata vs QEMU dump-guest-memory: %d pages identical, %d differ, %d missing'
          % (same, differ, missing))
    data_same = data_diff = 0
    for name, a, b in iomem_ranges(os.path.join(outdir, 'out', 'iomem.txt'), ('Kernel data',)):
        for pa in range((a + PAGE - 1) // PAGE * PAGE, b // PAGE * PAGE, PAGE):
            mine, theirs = ours.read(pa, PAGE), qemu.read(pa, PAGE)
            if mine is not None and theirs is not None:
                data_same += mine == theirs
                data_diff += mine != theirs
    print('info: kernel data pages (they change as the kernel runs): %d same, %d changed before QEMU\'s dump'
          % (data_same, data_diff))

    # 2. the same physical bytes through libkdumpfile and drgn
    text = iomem_ranges(os.path.join(outdir, 'out', 'iomem.txt'), ('Kernel code',))[0]
    rng = random.Random(4)
    sample = [(text[1] // PAGE * PAGE + PAGE, 16 * PAGE)]
    sample += [(paddr + rng.randrange(size // PAGE) * PAGE, PAGE)
               for paddr, size, _, _ in rng.sample(ours.loads, min(24, len(ours.loads)))]
    expect = b''.join(ours.read(a, n) for a, n in sample)
    args = [x for a, n in sample for x in ('%#x' % a, str(n))]
    got_path = os.path.join(outdir, 'kdumpfile.bin')
    r = subprocess.run([kdr, ours_path, got_path] + args, capture_output=True, text=True)
    print(r.stdout + r.stderr, end='')
    check(r.returncode == 0 and open(got_path, 'rb').read() == expect,
          'libkdumpfile reads %d ranges (%d bytes) identical to our parser' % (len(sample), len(expect)))

    import drgn
    prog = drgn.Program()
    prog.set_core_dump(ours_path)
    print('drgn %s: flags %s, platform %s' % (drgn.__version__, prog.flags, prog.platform))
    got = b''.join(prog.read(a, n, True) for a, n in sample)
    check(got == expect, 'drgn reads the same %d ranges physically, identical' % len(sample))
    try:
        rel = prog['UTS_RELEASE'].string_().decode()
    except Exception as e:  # needs vmlinux debug info, which this test does not ship
        rel = 'needs debug info (%s)' % type(e).__name__
    print('drgn: UTS_RELEASE %s' % rel)

    # 3. makedumpfile: filtered (31 = zero, cache, cache+private, user, free), compressed (zlib)
    kdump = os.path.join(outdir, 'filtered.kdump')
    if os.path.exists(kdump):
        os.unlink(kdump)
    t0 = time.monotonic()
    r = subprocess.run(['makedumpfile', '-c', '-d', '31', ours_path, kdump], capture_output=True, text=True)
    secs = time.monotonic() - t0
    print(r.stdout + r.stderr, end='')
    ok = r.returncode == 0 and os.path.exists(kdump)
    check(ok, 'makedumpfile -c -d 31 wrote a filtered compressed dump (%s bytes from %d, %.1f s)'
          % (os.path.getsize(kdump) if ok else '-', os.path.getsize(ours_path), secs))
    if ok:
        got_path = os.path.join(outdir, 'kdumpfile-kdump.bin')
        r = subprocess.run([kdr, kdump, got_path, '%#x' % sample[0][0], str(sample[0][1])],
                           capture_output=True, text=True)
        print(r.stdout + r.stderr, end='')
        check(r.returncode == 0 and 'diskdump' in r.stdout and
              open(got_path, 'rb').read() == expect[:sample[0][1]],
              "libkdumpfile reads kernel text from makedumpfile's output, identical")
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
