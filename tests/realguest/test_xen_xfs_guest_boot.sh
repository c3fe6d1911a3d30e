#!/usr/bin/env bash
# A real Xen guest with an XFS root (Debian 12; ext4 /boot with extlinux; /dev/xvdaN in fstab and on the kernel
# line, console=hvc0, static eth0 pinned by udev) does not boot on KVM as it is; `vdkit inspect` reads it without
# --kernel; `vdkit convert --fixup` without --kernel refuses before writing; `vdkit convert --fixup --kernel` writes
# its fstab through the host kernel's XFS driver and the result boots on virtio-blk: / (XFS) and /boot mounted,
# console on ttyS0, eth0 by DHCP.
#
# Measured on the 2-core Debian 12 dev machine, TCG, Debian tree cached, other builds running (2026-11-30):
#   214 s in all: make-xen-guest-xfs 32 s, control boot 69 s (the initramfs waits its 30 s for /dev/xvda2, then
#   panic=5 resets it and qemu ends), vdkit convert --fixup --kernel 4 s, qemu-img check + e2fsck + xfs_repair ~10 s,
#   fixed boot 83 s (marker printed, qemu stopped at once). A cold tree adds build-rootfs's ~4 min, shared with
#   the other layouts.
source "$(dirname "$0")/../integration/lib.sh"
RG=$VDKIT_SRC/tests/realguest
export PATH=$PATH:/usr/sbin:/sbin
T0=$SECONDS
LOGS=$VDKIT_BUILD/tests/realguest-logs
mkdir -p "$LOGS"

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mounts, the kernel's XFS for --kernel)"
[ -x "$VDKIT" ] || { fail "no vdkit binary at $VDKIT"; finish; }
for t in debootstrap extlinux qemu-system-x86_64 qemu-img zstd sfdisk mkfs.xfs xfs_repair e2fsck lsinitramfs; do
  command -v "$t" >/dev/null || skip "$t is not installed (scripts/setup installs it)"
done
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null || skip "the host kernel has no XFS driver for --kernel"
if ! "$RG/build-rootfs" --check >/dev/null; then
  mirror=$(source "$RG/lib.sh"; rg_mirror)
  timeout 30 python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' \
    "$mirror/dists/bookworm/Release" >/dev/null 2>&1 || skip "no cached Debian tree and the archive is unreachable"
fi

t=$SECONDS
src=$SCRATCH/xen-xfs-guest.vmdk
check "make-xen-guest-xfs: streamOptimized VMDK of a Xen guest with an XFS root" "$RG/make-xen-guest-xfs" "$src"
T_MAKE=$((SECONDS - t))
[ -s "$src" ] || finish
sum=$(sum_of "$src")

boot() {  # IMAGE NAME: boot-check's verdict in STATE and BOOT_SECONDS, its output in $SCRATCH/NAME.out
  local rc=0
  "$RG/boot-check" --timeout 300 --log "$LOGS/$2.serial" "$1" >"$SCRATCH/$2.out" || rc=$?
  cat "$SCRATCH/$2.out"
  STATE=NONE BOOT_SECONDS=0
  read -r STATE BOOT_SECONDS _ < <(tail -n1 "$SCRATCH/$2.out") || true
  [ $rc -le 2 ] || fail "$2: boot-check could not run qemu (exit $rc)"
}

# Inspection needs no kernel: vdkit reads the XFS root itself.
"$VDKIT" inspect --output=json "$src" >"$SCRATCH/inspect.json" || fail "vdkit inspect"
check "inspect (no --kernel): the root is XFS v5 with a clean log, /etc/fstab read from it" python3 - "$SCRATCH/inspect.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
root = [f for f in j["filesystems"] if f.get("mountpoint") == "/"][0]
assert root["type"] == "xfs" and root["state"].startswith("xfs v5") and "log clean" in root["state"], root
assert any(e["mountpoint"] == "/boot" for e in j["fstab"]), j["fstab"]
PY

boot "$src" xfs-control
T_CONTROL=$BOOT_SECONDS
check "control (unfixed Xen guest, XFS root) does not boot: $STATE" [ "$STATE" = GAVE-UP ]
check "control: the guest's own boot loader loaded its kernel" grep -aq 'Loading /vmlinuz' "$LOGS/xfs-control.serial"

dst=$SCRATCH/kvm-xfs-guest.qcow2
if "$VDKIT" convert --fixup -O qcow2 "$src" "$dst" 2>"$SCRATCH/nokernel.err"; then
  fail "convert --fixup without --kernel wrote an XFS guest"
else
  check "convert --fixup without --kernel refuses, naming XFS and --kernel" grep -q 'is on xfs on partition 2.*--kernel' \
    "$SCRATCH/nokernel.err"
fi
check "... and leaves no target" [ ! -e "$dst" ]

t=$SECONDS
if "$VDKIT" convert --fixup --kernel -O qcow2 "$src" "$dst" >"$SCRATCH/convert.out" 2>&1; then
  pass "vdkit convert --fixup --kernel -O qcow2 ($((SECONDS - t)) s)"
else
  cat "$SCRATCH/convert.out" >&2
  fail "vdkit convert --fixup --kernel"
  finish
fi
T_CONVERT=$((SECONDS - t))
cp "$SCRATCH/convert.out" "$LOGS/xfs-convert.out"
check "source unchanged by the conversion" [ "$(sum_of "$src")" = "$sum" ]
check "the fstab on XFS was rewritten (through the kernel)" grep -q '^+UUID=.* /  *xfs' "$SCRATCH/convert.out"
check "qemu-img check of the converted image" qemu-img check -q "$dst"
check "no loop device or private mount left" sh -c "! grep -q /run/vdkit/kmount /proc/mounts"

qemu-img convert -O raw "$dst" "$SCRATCH/fixed.raw"
mapfile -t geo < <(sfdisk -d "$SCRATCH/fixed.raw" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\).*/\1\n\2/p')
part() { dd if="$SCRATCH/fixed.raw" of="$SCRATCH/part.img" bs=1M iflag=skip_bytes,count_bytes conv=sparse status=none \
  skip=$((geo[$1] * 512)) count=$((geo[$1 + 1] * 512)); }
part 0
check "e2fsck -fn clean: /boot of the converted image" e2fsck -fn "$SCRATCH/part.img"
part 2
check "xfs_repair -n clean: the XFS root of the converted image" xfs_repair -n "$SCRATCH/part.img"
rm -f "$SCRATCH/fixed.raw" "$SCRATCH/part.img"

boot "$dst" xfs-fixed
T_FIXED=$BOOT_SECONDS
out=$SCRATCH/xfs-fixed.out
check "fixed guest boots: $STATE" [ "$STATE" = BOOTED ]
check "fixed guest: / and /boot mounted" \
  [ "$(grep '^VDKIT-MOUNT .* mounted$' "$out" | cut -d' ' -f2 | sort | tr '\n' ' ')" = "/ /boot " ]
check "fixed guest: root mounted read-write" grep -qx 'VDKIT-ROOT rw' "$out"
check "fixed guest: kernel console is ttyS0" grep -qx 'VDKIT-CONSOLE ttyS0' "$out"
check "fixed guest: eth0 configured by DHCP" grep -q '^VDKIT-NET .*eth0=10\.0\.2\.' "$out"

[ "$FAILED" -eq 0 ] || echo "serial logs and vdkit's output: $LOGS"
echo "timings: make guest $T_MAKE s, control boot $T_CONTROL s, convert $T_CONVERT s, fixed boot $T_FIXED s," \
  "total $((SECONDS - T0)) s"
finish
