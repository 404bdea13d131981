#!/usr/bin/env python3
"""Boot the cached Debian kernel in QEMU and run one static binary as the guest's program.

usage: run-guest.py [-m MEM] [-o OUTDIR] [-t SECS] [-A kvm|tcg] [-C CPU] [-c CPUS]
                    [-k bzimage|pvh] [-d DISK] [-f FILE]... [-x HOOK] [-q QMP_SOCKET]
                    [-a KERNEL_ARGS] [-v] BINARY [ARGS...]

Needs tests/vm/prepare.sh to have run (cache: $LIVEDUMP_VM_CACHE or .cache/vm). The guest is a tiny initramfs (busybox + BINARY); the
program runs as root with cwd /out, stdin/stdout on the serial console, files from -f
in /in. Results land in OUTDIR: console.log (serial console), run.log (host events: boot
time, hooks, QEMU memory), exit_code and out/ (the files the program left in its cwd).

Hooks: when the guest prints a line '@@HOST-HOOK@@ ARGS...', HOOK runs on the host as
`HOOK ARGS...` (cwd OUTDIR, env VM_QMP_SOCK = this VM's QMP socket); then the line
'@@HOOK-DONE@@ RC' is typed on the guest console, i.e. the program's stdin. Without -x
the reply is RC 127. Example: -x ./dump-memory.py, guest prints '@@HOST-HOOK@@ mem.elf'.

Exit status: the program's exit status; 124 on timeout; 125 if the VM or the retrieval
of results failed.
"""
import argparse
import ctypes
import os
import queue
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get('LIVEDUMP_VM_CACHE') or os.path.join(HERE, '..', '..', '.cache', 'vm')
# guest kernel modules, in load order: virtio-blk (result disk), qemu_fw_cfg (hands the
# guest's VMCOREINFO to QEMU's -device vmcoreinfo, so dump-guest-memory includes it)
MODULES = ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev',
           'virtio_pci', 'virtio_blk', 'qemu_fw_cfg']


def cpio_newc(entries):
    """entries: (name, mode, data_bytes, rdev_major, rdev_minor) -> newc cpio bytes."""
    out = bytearray()

    def pad():
        out.extend(b'\0' * (-len(out) % 4))

    for ino, (name, mode, data, rmaj, rmin) in enumerate(entries + [('TRAILER!!!', 0, b'', 0, 0)], 1):
        nb = name.encode() + b'\0'
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmaj, rmin, len(nb), 0)
        out += b'070701' + ''.join('%08x' % f for f in fields).encode() + nb
        pad()
        out += data
        pad()
    return bytes(out)


def die_with_parent():
    """In the QEMU child: get SIGKILL if this script dies, even by SIGKILL (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def is_dynamic(path):
    """True if the ELF file has a PT_INTERP (needs a loader the guest does not have)."""
    with open(path, 'rb') as f:
        h = f.read(64)
        if h[:4] != b'\x7fELF' or h[4] != 2:
            return False
        phoff, = struct.unpack_from('<Q', h, 32)
        phentsize, phnum = struct.unpack_from('<HH', h, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack('<I', f.read(4))[0] == 3:      # PT_INTERP
                return True
    return False


def build_initrd(binary, args, extra_files):
    read = lambda p: open(p, 'rb').read()
    d, x = 0o040755, 0o100755
    name = os.path.basename(binary)
    e = [(n, d, b'', 0, 0) for n in ('bin', 'dev', 'lib', 'lib/modules', 'proc', 'sys',
                                     'tmp', 'mnt', 'out', 'in', 'test', 'test/bin')]
    e += [('dev/console', 0o020600, b'', 5, 1),
          ('init', x, read(os.path.join(HERE, 'guest-init.sh')), 0, 0),
          ('bin/busybox', x, read(os.path.join(CACHE, 'busybox')), 0, 0),
          ('test/bin/' + name, x, read(binary), 0, 0),
          ('test/prog', 0o100644, name.encode(), 0, 0),
          ('test/args', 0o100644, b''.join(a.encode() + b'\n' for a in args), 0, 0)]
    e.append(('lib/modules/order', 0o100644, ''.join(m + '\n' for m in MODULES).encode(), 0, 0))
    for m in MODULES:
        e.append(('lib/modules/%s.ko' % m, 0o100644,
                  read(os.path.join(CACHE, 'kernel', 'modules', m + '.ko')), 0, 0))
    for f in extra_files:
        e.append(('in/' + os.path.basename(f), x if os.access(f, os.X_OK) else 0o100644,
                  read(f), 0, 0))
    return cpio_newc(e)


class Runner:
    def __init__(self, a):
        self.a = a
        self.t0 = time.monotonic()
        self.log_f = open(os.path.join(a.outdir, 'run.log'), 'w')
        self.hooks = queue.Queue()
        self.booted = None

    def log(self, msg):
        line = '[%7.2fs] %s' % (time.monotonic() - self.t0, msg)
        print('run-guest: ' + line, file=sys.stderr, flush=True)
        self.log_f.write(line + '\n')
        self.log_f.flush()

    def read_console(self, stream):
        buf = b''
        with open(os.path.join(self.a.outdir, 'console.log'), 'wb') as con:
            while True:
                chunk = stream.read1(65536)
                if not chunk:
                    break
                con.write(chunk)
                con.flush()
                if self.a.verbose:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                buf += chunk
                *lines, buf = buf.split(b'\n')
                for raw in lines:
                    line = raw.decode('utf-8', 'replace').strip('\r')
                    if line.startswith('@@GUEST-START@@') and self.booted is None:
                        self.booted = time.monotonic() - self.t0
                        self.log('program started %.2fs after QEMU start (%s)' % (
                            self.booted, line.split(' ', 1)[1]))
                    elif line.startswith('@@GUEST-END@@'):
                        self.log('program ended (%s)' % line.split(' ', 1)[1])
                    elif line.startswith('@@HOST-HOOK@@'):
                        self.hooks.put(shlex.split(line[len('@@HOST-HOOK@@'):]))

    def run_hook(self, qemu, hargs, deadline):
        rc = 127
        if self.a.hook:
            self.log('hook: %s %s' % (self.a.hook, ' '.join(hargs)))
            env = dict(os.environ, VM_QMP_SOCK=self.qmp_sock)
            try:
                rc = subprocess.run(shlex.split(self.a.hook) + hargs, cwd=self.a.outdir,
                                    env=env, timeout=max(1, deadline - time.monotonic()),
                                    stdout=sys.stderr).returncode
            except subprocess.TimeoutExpired:
                rc = 124
            except OSError as e:
                self.log('hook failed: %s' % e)
            self.log('hook rc=%d' % rc)
        qemu.stdin.write(b'@@HOOK-DONE@@ %d\n' % rc)
        qemu.stdin.flush()

    def qemu_mem(self, pid):
        try:
            with open('/proc/%d/status' % pid) as f:
                return {k: v.split()[0] for k, v in (l.split(':', 1) for l in f)
                        if k in ('VmRSS', 'VmHWM')}
        except OSError:
            return None

    def run(self, tmp):
        a = self.a
        initrd = os.path.join(tmp, 'initrd.cpio')
        with open(initrd, 'wb') as f:
            f.write(build_initrd(a.binary, a.args, a.file))
        disk = os.path.join(tmp, 'out.img')
        with open(disk, 'wb') as f:
            f.truncate(parse_size(a.disk))
        self.qmp_sock = a.qmp or os.path.join(tmp, 'qmp.sock')
        accel = a.accel or open(os.path.join(CACHE, 'accel')).read().strip()
        cpu = a.cpu or ('host' if accel == 'kvm' else 'max')
        kernel = os.path.join(CACHE, 'kernel', 'vmlinux' if a.kernel == 'pvh' else 'vmlinuz')
        cmd = ['qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none',
               '-no-reboot', '-machine', 'q35', '-accel', accel, '-cpu', cpu,
               '-smp', str(a.cpus), '-m', a.mem, '-kernel', kernel, '-initrd', initrd,
               '-append', 'console=ttyS0 panic=-1 oops=panic quiet ' + a.kernel_args,
               '-serial', 'stdio',
               '-drive', 'file=%s,format=raw,if=virtio' % disk, '-device', 'vmcoreinfo',
               '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_sock]
        self.log('accel=%s cpu=%s mem=%s cpus=%d kernel=%s qmp=%s' % (
            accel, cpu, a.mem, a.cpus, a.kernel, self.qmp_sock))
        qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=open(os.path.join(a.outdir, 'qemu.log'), 'wb'),
                                start_new_session=True, preexec_fn=die_with_parent)
        reader = threading.Thread(target=self.read_console, args=(qemu.stdout,), daemon=True)
        reader.start()
        deadline = self.t0 + a.timeout
        mem, timed_out = None, False
        try:
            while qemu.poll() is None:
                if time.monotonic() > deadline:
                    timed_out = True
                    self.log('timeout after %ds, stopping QEMU' % a.timeout)
                    break
                mem = self.qemu_mem(qemu.pid) or mem
                try:
                    self.run_hook(qemu, self.hooks.get(timeout=0.1), deadline)
                except queue.Empty:
                    pass
                except BrokenPipeError:
                    pass
        finally:
            if qemu.poll() is None:            # timeout, error or signal: stop our QEMU only
                qemu.terminate()
                try:
                    qemu.wait(5)
                except subprocess.TimeoutExpired:
                    qemu.kill()
                    qemu.wait()
            reader.join(5)
        if mem:
            self.log('QEMU memory: peak RSS %s kB, last RSS %s kB' % (mem['VmHWM'], mem['VmRSS']))
        if timed_out:
            return 124
        if qemu.returncode != 0:
            err = open(os.path.join(a.outdir, 'qemu.log'), errors='replace').read().strip()
            self.log('QEMU exited with %d: %s' % (qemu.returncode, err[-500:]))
        try:
            with tarfile.open(disk, 'r:') as t:
                if hasattr(tarfile, 'data_filter'):
                    t.extractall(a.outdir, filter='data')
                else:
                    t.extractall(a.outdir)
            rc = int(open(os.path.join(a.outdir, 'exit_code')).read())
        except (OSError, ValueError, tarfile.TarError) as e:
            self.log('no results from the guest (%s); see console.log' % e)
            return 125
        self.log('program exit status %d' % rc)
        return rc


def parse_size(s):
    mult = {'K': 2**10, 'M': 2**20, 'G': 2**30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-m', dest='mem', default='1G', help='guest memory (default 1G)')
    ap.add_argument('-o', dest='outdir', default='vm-out', help='output folder (default vm-out)')
    ap.add_argument('-t', dest='timeout', type=int, default=300, help='seconds (default 300)')
    ap.add_argument('-A', dest='accel', choices=['kvm', 'tcg'],
                    help='accelerator (default: cache/accel, set by prepare.sh)')
    ap.add_argument('-C', dest='cpu', help='QEMU CPU model (default: host for kvm, max for '
                    'tcg; max has 5-level paging, "max,la57=off" has 4)')
    ap.add_argument('-c', dest='cpus', type=int, default=1, help='vCPUs (default 1)')
    ap.add_argument('-k', dest='kernel', choices=['bzimage', 'pvh'], default='bzimage',
                    help='bzimage: vmlinuz, KASLR as on real machines (default); pvh: '
                    'uncompressed vmlinux, boots ~4s faster under TCG, kernel image not randomized')
    ap.add_argument('-d', dest='disk', default='256M', help='result disk size (default 256M)')
    ap.add_argument('-f', dest='file', action='append', default=[], help='copy FILE to /in')
    ap.add_argument('-x', dest='hook', help='host command for @@HOST-HOOK@@ lines')
    ap.add_argument('-q', dest='qmp', help='QMP socket path (default: in a temp folder)')
    ap.add_argument('-a', dest='kernel_args', default='', help='extra kernel command line')
    ap.add_argument('-v', dest='verbose', action='store_true', help='copy console to stderr')
    ap.add_argument('binary')
    ap.add_argument('args', nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(CACHE, 'kernel', 'vmlinuz')):
        ap.error('run %s first' % os.path.join(HERE, 'prepare.sh'))
    if not os.access(a.binary, os.R_OK) or is_dynamic(a.binary):
        ap.error('%s: not readable or dynamically linked (build it with -static)' % a.binary)
    if a.hook:                             # hooks run in OUTDIR: pin a relative path
        words = shlex.split(a.hook)
        if os.path.exists(words[0]):
            words[0] = os.path.abspath(words[0])
        a.hook = shlex.join(words)
    os.makedirs(a.outdir, exist_ok=True)
    a.outdir = os.path.abspath(a.outdir)
    for stale in ('exit_code', 'console.log', 'qemu.log'):
        if os.path.exists(os.path.join(a.outdir, stale)):
            os.unlink(os.path.join(a.outdir, stale))
    shutil.rmtree(os.path.join(a.outdir, 'out'), ignore_errors=True)
    # SIGTERM/SIGHUP -> SystemExit, so that the finally clause stops QEMU
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(125))
    with tempfile.TemporaryDirectory(prefix='vm-') as tmp:
        try:
            return Runner(a).run(tmp)
        except KeyboardInterrupt:
            return 125
        except OSError as e:                # e.g. qemu-system-x86_64 missing
            print('run-guest: %s' % e, file=sys.stderr)
            return 125


if __name__ == '__main__':
    sys.exit(main())
