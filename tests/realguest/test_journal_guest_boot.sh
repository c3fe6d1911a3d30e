#!/usr/bin/env bash
# A Xen guest copied while it ran (tests/realguest/make-journal-guest): its current fstab is only in the root's
# ext4 journal; the one on disk mounts /srv from a disk that is gone. `vdkit convert --fixup` must replay the
# journal into its overlay and fix the journal's fstab, or the guest's kernel would replay the Xen names over the
# fix at boot. The unfixed control does not boot on KVM; the converted guest boots with / and /srv mounted.
#
# Run time, measured on the 2-core machine with the tree cached while six other builds ran (load ~28): make guest
# 36 s (make-xen-guest, two mounts, the shutdown, the snapshot), control boot 74 s (the initramfs gives up on
# /dev/xvda1 and panic=5 ends it), convert 4 s, fixed boot 127 s; 337 s in all (a second run, with two more qemu
# guests beside it: 62 + 140 + 4 + 248 = 562 s, 11 checks passed). On a quiet machine expect the
# boots of test_xen_guest_boot.sh (about 50 s each), so 2.5-3 min; about 4 min more when build-rootfs makes the
# tree first. Each run prints its own "timings:" line.
source "$(dirname "$0")/../integration/lib.sh"
RG=$VDKIT_SRC/tests/realguest
export PATH=$PATH:/usr/sbin:/sbin
T0=$SECONDS
LOGS=$VDKIT_BUILD/tests/realguest-logs
mkdir -p "$LOGS"

[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mounts, debootstrap)"
[ -x "$VDKIT" ] || { fail "no vdkit binary at $VDKIT"; finish; }
for t in xfs_io debootstrap extlinux qemu-system-x86_64 qemu-img sfdisk debugfs e2fsck zstd; do
  command -v "$t" >/dev/null || skip "$t is not installed (scripts/setup installs it)"
done
if ! "$RG/build-rootfs" --check >/dev/null; then
  mirror=$(source "$RG/lib.sh"; rg_mirror)
  timeout 30 python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' \
    "$mirror/dists/bookworm/Release" >/dev/null 2>&1 || skip "no cached Debian tree and the archive is unreachable"
fi

t=$SECONDS
src=$SCRATCH/journal-guest.vmdk
check "make-journal-guest: the current fstab only in the root's journal" "$RG/make-journal-guest" "$src"
T_MAKE=$((SECONDS - t))
[ -s "$src" ] || finish
sum=$(sum_of "$src")

"$VDKIT" inspect --output=json "$src" >"$SCRATCH/inspect.json"
check "inspect replays the root's journal (v2, checksum v3) and sees /srv on /dev/xvda2" python3 - "$SCRATCH/inspect.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
root = [x for x in j["journals"] if x["partition"] == 1][0]
assert root["state"] == "replayed" and root["version"] == 2 and root["checksum"] == "v3", root
assert any(e["device"] == "/dev/xvda2" and e["mountpoint"] == "/srv" for e in j["fstab"]), j["fstab"]
PY

boot() {
  local rc=0
  "$RG/boot-check" --timeout 300 --log "$LOGS/$2.serial" "$1" >"$SCRATCH/$2.out" || rc=$?
  cat "$SCRATCH/$2.out"
  STATE=NONE BOOT_SECONDS=0
  read -r STATE BOOT_SECONDS _ < <(tail -n1 "$SCRATCH/$2.out") || true
  [ $rc -le 2 ] || fail "$2: boot-check could not run qemu (exit $rc)"
}

boot "$src" journal-control
T_CONTROL=$BOOT_SECONDS
check "control (unfixed, journal not replayed) does not boot: $STATE" [ "$STATE" != BOOTED ]

t=$SECONDS
dst=$SCRATCH/journal-kvm.qcow2
if "$VDKIT" convert --fixup -O qcow2 "$src" "$dst" >"$SCRATCH/convert.out" 2>&1; then
  pass "vdkit convert --fixup ($((SECONDS - t)) s)"
else
  cat "$SCRATCH/convert.out" >&2
  fail "vdkit convert --fixup"
  finish
fi
T_CONVERT=$((SECONDS - t))
cp "$SCRATCH/convert.out" "$LOGS/journal-convert.out"
check "convert reports the replay" grep -q 'ext4 on partition 1: journal v2 (checksum v3): replayed' "$SCRATCH/convert.out"
check "source unchanged by the conversion" [ "$(sum_of "$src")" = "$sum" ]

qemu-img convert -O raw "$dst" "$SCRATCH/fixed.raw"
mapfile -t geo < <(sfdisk -d "$SCRATCH/fixed.raw" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\).*/\1\n\2/p')
dd if="$SCRATCH/fixed.raw" of="$SCRATCH/root.img" bs=1M iflag=skip_bytes,count_bytes conv=sparse status=none \
  skip=$((geo[0] * 512)) count=$((geo[1] * 512))
rm -f "$SCRATCH/fixed.raw"
check "the converted root holds the journal's fstab, fixed (/srv by UUID, no /dev/xvd name)" \
  bash -c "debugfs -R 'cat etc/fstab' '$SCRATCH/root.img' 2>/dev/null | grep -q '^UUID=.* /srv ' &&
           ! debugfs -R 'cat etc/fstab' '$SCRATCH/root.img' 2>/dev/null | grep -q /dev/xvd"
check "the converted root is e2fsck -fn clean" e2fsck -fn "$SCRATCH/root.img"
before=$(sum_of "$SCRATCH/root.img")
e2fsck -E journal_only -p "$SCRATCH/root.img" >/dev/null 2>&1 || true
check "e2fsck -E journal_only finds nothing left to recover" [ "$(sum_of "$SCRATCH/root.img")" = "$before" ]
rm -f "$SCRATCH/root.img"

boot "$dst" journal-fixed
T_FIXED=$BOOT_SECONDS
check "fixed guest boots: $STATE" [ "$STATE" = BOOTED ]
check "fixed guest: fstab mounts / and /srv present" \
  [ "$(grep '^VDKIT-MOUNT .* mounted$' "$SCRATCH/journal-fixed.out" | cut -d' ' -f2 | sort | tr '\n' ' ')" = "/ /srv " ]

[ "$FAILED" -eq 0 ] || echo "serial logs and vdkit's output: $LOGS"
echo "timings: make guest $T_MAKE s, control boot $T_CONTROL s, convert $T_CONVERT s, fixed boot $T_FIXED s," \
  "total $((SECONDS - T0)) s"
finish
