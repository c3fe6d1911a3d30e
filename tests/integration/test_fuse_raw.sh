#!/usr/bin/env bash
# vdkit mount --raw: `disk` and `p1`.. files that blkid, fdisk -l and qemu-img read, copies equal to the partitions,
# SEEK_DATA/SEEK_HOLE agreeing with qemu-img map, writes with --rw landing in the overlay. An XFS partition is shown
# read-only by vdkit's own reader without --kernel (--rw then refused, naming --kernel) and mounts read-write with
# --kernel; vdkit umount tears down the loop device too.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.sh"
fuse_require
make_guests
mp=$SCRATCH/mnt

# Data runs of a file through SEEK_DATA/SEEK_HOLE, and of an image through qemu-img map, as "start end" lines.
seek_runs() {
  python3 - "$1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size, pos = os.fstat(fd).st_size, 0
while pos < size:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    print(d, h)
    pos = h
PY
}
map_runs() {
  qemu-img map --output=json "$1" | python3 -c '
import json, sys
runs = []
for e in json.load(sys.stdin):
    if not e["data"]:
        continue
    s, t = e["start"], e["start"] + e["length"]
    if runs and runs[-1][1] == s:
        runs[-1][1] = t
    else:
        runs.append([s, t])
for s, t in runs:
    print(s, t)'
}

for src in mbr.raw gpt.qcow2 mbr-sparse.vmdk; do
  path=$GUESTS/$src
  ref=$SCRATCH/ref.raw
  qemu-img convert -O raw "$path" "$ref"
  if ! mount_vdkit --raw "$path" "$mp"; then fail "$src: --raw mount failed"; continue; fi
  check "$src: disk equals qemu-img's raw conversion" cmp -s "$ref" "$mp/disk"
  check "$src: fdisk -l lists the partitions" bash -c "fdisk -l '$mp/disk' | grep -q '^$mp/disk1 '"
  check "$src: blkid sees the partition table" bash -c "blkid -p '$mp/disk' | grep -q 'PTTYPE='"
  n=0
  while read -r start size; do
    n=$((n + 1))
    dd if="$ref" of="$SCRATCH/want.part" bs=512 skip="$start" count="$size" status=none
    cp --sparse=always "$mp/p$n" "$SCRATCH/got.part"
    check "$src: a copy of p$n equals the partition" cmp -s "$SCRATCH/want.part" "$SCRATCH/got.part"
  done < <(sfdisk --json "$ref" | python3 -c 'import json,sys; [print(p["start"], p["size"]) for p in json.load(sys.stdin)["partitiontable"]["partitions"]]')
  check "$src: every partition has a file" [ "$(ls "$mp" | grep -c '^p')" -eq "$n" ]
  fsp=$(awk -F'\t' -v p="$path" '$2 == p {print $3}' "$GUESTS/manifest.tsv")
  check "$src: blkid finds ext4 labelled guestroot on p$fsp" \
    bash -c "blkid -o export '$mp/p$fsp' | grep -qx 'TYPE=ext4' && blkid -o export '$mp/p$fsp' | grep -qx 'LABEL=guestroot'"
  check "$src: qemu-img reads disk as raw of the right size" \
    bash -c "qemu-img info --output=json -f raw '$mp/disk' | grep -q '\"virtual-size\": $(stat -c %s "$ref")'"
  if [ "${src##*.}" != vmdk ]; then
    check "$src: SEEK_DATA/SEEK_HOLE agree with qemu-img map" cmp -s <(seek_runs "$mp/disk") <(map_runs "$path")
  fi
  check "$src: p1 is read-only without --rw" bash -c "! dd if=/dev/zero of='$mp/p1' bs=512 count=1 conv=notrunc status=none 2>/dev/null"
  umount_vdkit "$mp"
  rm -f "$ref" "$SCRATCH/want.part" "$SCRATCH/got.part"
done

# --raw --rw --overlay: writes through p2 land at the partition's offset in the overlay.
before=$(sum_of "$GUESTS/mbr.raw")
ov=$SCRATCH/raw-ov.qcow2
head -c 65536 /dev/urandom > "$SCRATCH/blob"
if mount_vdkit --raw --rw --overlay "$ov" "$GUESTS/mbr.raw" "$mp"; then
  check "--raw --rw: dd into p2" dd if="$SCRATCH/blob" of="$mp/p2" bs=4096 seek=100 conv=notrunc,fsync status=none
  umount_vdkit "$mp"
  qemu-img convert -O raw "$ov" "$SCRATCH/out.raw"
  start=$(sfdisk --json "$GUESTS/mbr.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"])')
  check "--raw --rw: the bytes are in the overlay at the partition's offset" \
    cmp -s "$SCRATCH/blob" <(dd if="$SCRATCH/out.raw" bs=4096 skip=$((start / 8 + 100)) count=16 status=none)
  rm -f "$SCRATCH/out.raw"
else
  fail "--raw --rw --overlay mount failed"
fi
check "mbr.raw unchanged after --raw --rw" [ "$(sum_of "$GUESTS/mbr.raw")" = "$before" ]

# XFS: shown read-only by vdkit's reader without --kernel, served read-write by the kernel's driver with it.
if ! command -v mkfs.xfs >/dev/null || ! grep -qw xfs /proc/filesystems && ! modprobe -n xfs 2>/dev/null; then
  skip "no XFS support (mkfs.xfs or the xfs kernel module)"
fi
x=$SCRATCH/xfs.raw
truncate -s 330M "$x"
printf 'label: gpt\nstart=2048, type=L\n' | sfdisk -q "$x"
truncate -s 320M "$SCRATCH/xfs.part"
mkfs.xfs -q -f -L xfsguest "$SCRATCH/xfs.part"
dd if="$SCRATCH/xfs.part" of="$x" bs=512 seek=2048 conv=notrunc,sparse status=none
rm -f "$SCRATCH/xfs.part"
qemu-img convert -O qcow2 "$x" "$SCRATCH/xfs.qcow2"
rm -f "$x"
x=$SCRATCH/xfs.qcow2
before=$(sum_of "$x")
if mount_vdkit "$x" "$mp"; then
  check "XFS without --kernel: vdkit's reader shows it (an empty root)" bash -c "[ -d '$mp' ] && [ -z \"\$(ls -A '$mp')\" ]"
  check "XFS without --kernel: read-only" bash -c "! touch '$mp/new' 2>/dev/null"
  check "XFS without --kernel: vdkit umount" umount_vdkit "$mp"
else
  fail "XFS without --kernel: vdkit mount"
fi
set +e
"$VDKIT" mount --rw "$x" "$mp" 2>"$SCRATCH/err"; rc=$?
set -e
check "XFS --rw without --kernel exits 1" [ "$rc" -eq 1 ]
check "the refusal names XFS and --kernel" bash -c "grep -q XFS '$SCRATCH/err' && grep -q -- --kernel '$SCRATCH/err'"
check "nothing is mounted after the refusal" bash -c "! mountpoint -q '$mp'"
# Only the loop devices of vdkit's private raw views: other tests may attach their own meanwhile.
vdkit_loops() { losetup -a 2>/dev/null | grep -c 'vdkit-raw\|/run/vdkit/kmount' || true; }
loops_before=$(vdkit_loops)
if mount_vdkit --kernel --rw "$x" "$mp"; then
  check "--kernel: the kernel mounted XFS" bash -c "findmnt -n -o FSTYPE '$mp' | grep -qx xfs"
  check "--kernel --rw: a file can be written and read back" bash -c "echo via-kernel > '$mp/hello' && sync && grep -qx via-kernel '$mp/hello'"
  check "--kernel: vdkit umount tears it down" umount_vdkit "$mp"
  check "--kernel: no mount left" bash -c "! mountpoint -q '$mp'"
  check "--kernel: the loop device is gone" [ "$(vdkit_loops)" -eq "$loops_before" ]
  check "--kernel: no private raw view left" bash -c "! grep -q 'vdkit/kmount' /proc/mounts"
else
  fail "--kernel mount of XFS failed"
fi
check "XFS source unchanged (writes went to memory)" [ "$(sum_of "$x")" = "$before" ]
finish
