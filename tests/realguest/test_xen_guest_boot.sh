#!/usr/bin/env bash
# A real Xen guest (Debian 12, extlinux, xvda names, console=hvc0, static eth0 pinned by udev) does not boot on KVM
# as it is, and boots after `vdkit convert --fixup`: root and /srv mounted, console on ttyS0, eth0 by DHCP.
#
# Measured on the 2-core Debian 12 dev machine, TCG, `ctest -L realguest` (boot times vary with the load):
#   cold, no cached tree: 342 s. build-rootfs 221 s (debootstrap with kernel 177 s, initramfs rebuilt after
#     pruning 36 s, tarball and clean-up the rest), then as warm.
#   warm, cached tree: 113-154 s. make-xen-guest 14-28 s (most of it the streamOptimized VMDK), control boot
#     47-56 s, vdkit convert --fixup 1-3 s, qemu-img check + e2fsck 5 s, fixed boot 35-66 s.
#   control: extlinux loads the kernel at ~5 s; the initramfs waits its 30 s for /dev/xvda1, then panic=5 resets
#     the guest and qemu (-no-reboot) ends. fixed: marker at 35-66 s, qemu stopped at once.
source "$(dirname "$0")/../integration/lib.sh"
RG=$VDKIT_SRC/tests/realguest
export PATH=$PATH:/usr/sbin:/sbin
T0=$SECONDS
# Serial logs stay after the run (SCRATCH does not), for reading a failed boot.
LOGS=$VDKIT_BUILD/tests/realguest-logs
mkdir -p "$LOGS"

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mounts, debootstrap)"
[ -x "$VDKIT" ] || { fail "no vdkit binary at $VDKIT"; finish; }

# Tools: installed here if missing, as scripts/setup would; a skip only when they cannot be.
need_packages() {
  local pkgs=()
  command -v debootstrap >/dev/null || pkgs+=(debootstrap)
  command -v extlinux >/dev/null || pkgs+=(extlinux)
  [ -e /usr/lib/syslinux/mbr/mbr.bin ] || pkgs+=(syslinux-common)
  command -v qemu-system-x86_64 >/dev/null || pkgs+=(qemu-system-x86)
  command -v qemu-img >/dev/null || pkgs+=(qemu-utils)
  command -v zstd >/dev/null || pkgs+=(zstd)
  command -v sfdisk >/dev/null || pkgs+=(fdisk)
  command -v mkfs.ext4 >/dev/null || pkgs+=(e2fsprogs)
  echo "${pkgs[*]}"
}
missing=$(need_packages)
if [ -n "$missing" ]; then
  echo "installing $missing"
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }
  # shellcheck disable=SC2086
  apt_install $missing >"$SCRATCH/apt.log" 2>&1 ||
    { apt-get update -q >>"$SCRATCH/apt.log" 2>&1 && apt_install $missing >>"$SCRATCH/apt.log" 2>&1; } ||
    tail -n 5 "$SCRATCH/apt.log"
  missing=$(need_packages)
  [ -z "$missing" ] || skip "cannot install $missing (apt-get output above)"
fi

# The tree: cached per machine. Without a cache, an unreachable archive is a reason to skip, not a failure.
if ! tarball=$("$RG/build-rootfs" --check); then
  mirror=$(source "$RG/lib.sh"; rg_mirror)
  if ! timeout 30 python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' \
    "$mirror/dists/bookworm/Release" >/dev/null 2>&1; then
    skip "no cached Debian tree and the archive $mirror is unreachable"
  fi
fi
t=$SECONDS
if tarball=$("$RG/build-rootfs"); then
  pass "debootstrap tree: $tarball ($((SECONDS - t)) s)"
else
  fail "build-rootfs"
  finish
fi
T_TREE=$((SECONDS - t))

t=$SECONDS
src=$SCRATCH/xen-guest.vmdk
check "make-xen-guest: streamOptimized VMDK of a Xen-layout guest" "$RG/make-xen-guest" "$src"
T_MAKE=$((SECONDS - t))
[ -s "$src" ] || finish
sum=$(sum_of "$src")

# boot IMAGE NAME: runs boot-check, keeps its output in $SCRATCH/NAME.out; sets STATE and BOOT_SECONDS.
boot() {
  local rc=0
  "$RG/boot-check" --timeout 300 --log "$LOGS/$2.serial" "$1" >"$SCRATCH/$2.out" || rc=$?
  cat "$SCRATCH/$2.out"
  STATE=NONE BOOT_SECONDS=0
  read -r STATE BOOT_SECONDS _ < <(tail -n1 "$SCRATCH/$2.out") || true
  [ $rc -le 2 ] || fail "$2: boot-check could not run qemu (exit $rc)"
}

# Control: the guest as Xen left it must not boot on virtio-blk (root=/dev/xvda1 names a disk KVM does not have).
boot "$src" control
T_CONTROL=$BOOT_SECONDS
check "control (unfixed Xen guest) does not boot: $STATE" [ "$STATE" != BOOTED ]
check "control gives up before the timeout (${T_CONTROL} s)" [ "$STATE" = GAVE-UP ]
# Failing later than the loader is what makes it a control: the disk boots, the kernel does not find its root.
check "control: the guest's own boot loader loaded its kernel" grep -aq 'Loading /boot/vmlinuz' "$LOGS/control.serial"

t=$SECONDS
dst=$SCRATCH/kvm-guest.qcow2
if "$VDKIT" convert --fixup -O qcow2 "$src" "$dst" >"$SCRATCH/convert.out" 2>&1; then
  pass "vdkit convert --fixup -O qcow2 ($((SECONDS - t)) s)"
else
  cat "$SCRATCH/convert.out" >&2
  fail "vdkit convert --fixup"
  finish
fi
T_CONVERT=$((SECONDS - t))
cp "$SCRATCH/convert.out" "$LOGS/convert.out"
check "source unchanged by the conversion" [ "$(sum_of "$src")" = "$sum" ]
if qemu-img check "$dst" >"$SCRATCH/check.out" 2>&1; then pass "qemu-img check of the converted image"; else
  cat "$SCRATCH/check.out" >&2
  fail "qemu-img check of the converted image"
fi

# The fixups' writes leave both file systems clean, as qemu-img (the peer) reads the image.
fsck_clean() { e2fsck -fn "$1" >"$SCRATCH/fsck.out" 2>&1 || { cat "$SCRATCH/fsck.out" >&2; return 1; }; }
qemu-img convert -O raw "$dst" "$SCRATCH/fixed.raw"
mapfile -t geo < <(sfdisk -d "$SCRATCH/fixed.raw" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\).*/\1\n\2/p')
[ ${#geo[@]} -eq 4 ] || { fail "converted image: partition table is not the two partitions made: ${geo[*]}"; geo=(); }
for ((i = 0; i < ${#geo[@]}; i += 2)); do
  dd if="$SCRATCH/fixed.raw" of="$SCRATCH/part.img" bs=1M iflag=skip_bytes,count_bytes conv=sparse status=none \
    skip=$((geo[i] * 512)) count=$((geo[i + 1] * 512))
  check "e2fsck -fn clean: partition $((i / 2 + 1)) of the converted image" fsck_clean "$SCRATCH/part.img"
done
rm -f "$SCRATCH/fixed.raw" "$SCRATCH/part.img"

boot "$dst" fixed
T_FIXED=$BOOT_SECONDS
out=$SCRATCH/fixed.out
check "fixed guest boots: $STATE" [ "$STATE" = BOOTED ]
# What the marker saw, against what make-xen-guest wrote: / and /srv mounted, nothing else in fstab.
check "fixed guest: fstab mounts / and /srv present" \
  [ "$(grep '^VDKIT-MOUNT .* mounted$' "$out" | cut -d' ' -f2 | sort | tr '\n' ' ')" = "/ /srv " ]
check "fixed guest: root mounted read-write" grep -qx 'VDKIT-ROOT rw' "$out"
# The console fixup (hvc0 -> ttyS0) is what puts the kernel's own messages on the serial line.
check "fixed guest: kernel console is ttyS0" grep -qx 'VDKIT-CONSOLE ttyS0' "$out"
check "fixed guest: kernel messages on ttyS0" grep -aq 'Linux version' "$LOGS/fixed.serial"
# Static-to-DHCP, the udev rule dropped and net.ifnames=0 together give eth0 an address from qemu's DHCP server.
check "fixed guest: eth0 configured by DHCP" grep -q '^VDKIT-NET .*eth0=10\.0\.2\.' "$out"

[ "$FAILED" -eq 0 ] || echo "serial logs and vdkit's output: $LOGS"
echo "timings: tree $T_TREE s, make guest $T_MAKE s, control boot $T_CONTROL s, convert $T_CONVERT s," \
  "fixed boot $T_FIXED s, total $((SECONDS - T0)) s"
finish
