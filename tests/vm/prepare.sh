#!/bin/sh
# Fetches what the real-kernel test needs into the cache folder (idempotent):
# Debian's linux-image-amd64 kernel (.deb via apt-get download, never
# installed), its vmlinuz, config and the few modules the guest loads, and a
# static busybox. Packages come from tools/deps.sh.
#   env: LIVEDUMP_VM_CACHE (default .cache/vm in the source tree),
#        VM_KERNEL_PKG=linux-image-6.1.0-NN-amd64 pins a kernel package.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${LIVEDUMP_VM_CACHE:-$root/.cache/vm}
mkdir -p "$cache"

# virtio-blk (the result disk) and qemu_fw_cfg (gives QEMU's vmcoreinfo
# device the guest's VMCOREINFO, so dump-guest-memory carries it); the
# .deb has no usable modules.dep, run-guest.py loads them in this order.
modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk qemu_fw_cfg"

if [ ! -s "$cache/kernel/vmlinuz" ] || [ ! -s "$cache/kernel/modules/qemu_fw_cfg.ko" ]; then
    pkg=${VM_KERNEL_PKG:-}
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
        if [ -z "$pkg" ]; then
            apt-get update -qq >&2
            pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
        fi
    fi
    [ -n "$pkg" ] || { echo "prepare: cannot resolve the kernel package" >&2; exit 1; }
    tmp=$(mktemp -d "$cache/tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && apt-get download -q "$pkg" >&2 2>/dev/null) || true
    ls "$tmp"/*.deb >/dev/null 2>&1 || { echo "prepare: apt-get download $pkg failed" >&2; exit 1; }
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    kver=$(ls "$tmp/x/lib/modules")
    rm -rf "$cache/kernel"
    mkdir -p "$cache/kernel/modules"
    cp "$tmp/x/boot/vmlinuz-$kver" "$cache/kernel/vmlinuz"
    cp "$tmp/x/boot/config-$kver" "$cache/kernel/config"
    for m in $modules; do
        src=$(find "$tmp/x/lib/modules/$kver" -name "$m.ko*" | head -n 1)
        [ -n "$src" ] || { echo "prepare: module $m missing in $pkg" >&2; exit 1; }
        case $src in
            *.ko.xz) xz -dc "$src" > "$cache/kernel/modules/$m.ko" ;;
            *) cp "$src" "$cache/kernel/modules/$m.ko" ;;
        esac
    done
    echo "$pkg $(dpkg-deb -f "$tmp"/*.deb Version) $kver" > "$cache/kernel/version"
    rm -rf "$tmp"
    trap - EXIT
fi
echo "prepare: kernel $(cat "$cache/kernel/version")" >&2

if [ ! -x "$cache/busybox" ]; then
    if readelf -l /bin/busybox 2>/dev/null | grep -q 'program interpreter'; then
        echo "prepare: /bin/busybox is not static (install busybox-static)" >&2
        exit 1
    fi
    cp /bin/busybox "$cache/busybox"
fi

# KVM only when it really boots the guest; here it is usually TCG.
if [ ! -s "$cache/accel" ]; then
    accel=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
       "$root/tests/vm/run-guest.py" -A kvm -t 60 -o "$cache/probe-kvm" "$cache/busybox" true >/dev/null 2>&1; then
        accel=kvm
    fi
    echo "$accel" > "$cache/accel"
    rm -rf "$cache/probe-kvm"
fi
echo "prepare: accelerator $(cat "$cache/accel")" >&2
