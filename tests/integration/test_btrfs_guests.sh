#!/usr/bin/env bash
# Btrfs test guests (tests/guests/*/manifest with `btrfs` lines; root, since make-guest lays out subvolumes with the
# kernel): inspection read in userspace (subvolumes, root, snapshots), --dry-run diff, refusal without --kernel
# (nothing written, no target left), the fix with --kernel into a new qcow2 with every expected file in the booted
# subvolume (read back by a ro,nologreplay kernel mount), the other snapshots byte-identical, btrfs check clean,
# the source untouched, a second run changing nothing, and vdkit mount showing it without --kernel; then the same
# guest crashed after an fsync: its log tree reported, --in-place refused without --replay-journal, and -o
# replaying it into the overlay only.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (make-guest mounts Btrfs to lay out subvolumes; --kernel mounts)"
export PATH=$PATH:/sbin:/usr/sbin
for t in mkfs.btrfs btrfs qemu-img sfdisk losetup; do command -v "$t" >/dev/null || skip "$t is not installed"; done
[ -e /dev/loop-control ] || skip "no loop devices"
GUESTS=$VDKIT_SRC/tests/guests

json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)
PY
}

MNT=$SCRATCH/mnt
mkdir -p "$MNT"
mounted=""
cleanup() {
  [ -n "$mounted" ] && umount "$MNT" 2>/dev/null
  "$VDKIT" umount "$SCRATCH/fuse" 2>/dev/null || true
  cleanup_scratch
}
trap cleanup EXIT
# kmount RAW PART OPTIONS: a read-only kernel view of partition PART of RAW, as the image is (no log replay).
kmount() {
  local off
  off=$(awk -v p="$2" '$1==p {print $2}' "$PARTS")
  mount -t btrfs -o "loop,ro,rescue=nologreplay,offset=$off,$3" "$1" "$MNT" && mounted=1
}
kumount() { umount "$MNT" && mounted=""; }

for name in $("$VDKIT_SRC/scripts/make-guest" --list); do
  grep -q '^btrfs ' "$GUESTS/$name/manifest" || continue
  out=$SCRATCH/$name
  "$VDKIT_SRC/scripts/make-guest" "$name" "$out" >/dev/null || { fail "$name: make-guest"; continue; }
  PARTS=$out/$name.parts
  part=$(awk '$4=="btrfs" {print $1; exit}' "$PARTS")
  for fmt in vmdk qcow2; do
    src=$out/$name.$fmt
    sum=$(sum_of "$src")
    "$VDKIT" inspect --output=json "$src" >"$out/inspect.json" || { fail "$name.$fmt: inspect"; continue; }
    bad=0
    while read -r key want; do
      got=$(json_get "$out/inspect.json" "$key" 2>&1) || got="<missing>"
      [ "$got" = "$want" ] || { echo "  $key: got '$got', want '$want'" >&2; bad=1; }
    done < <(grep -v '^#' "$GUESTS/$name/inspect.expect")
    check "$name.$fmt: inspect (userspace, no --kernel) reports subvolumes, root and snapshots" [ $bad = 0 ]
    rootid=$(json_get "$out/inspect.json" "filesystems.$((part - 1)).root-subvolume")

    "$VDKIT" fixup --dry-run "$src" >"$out/dry.txt"
    check "$name.$fmt: dry run prints a unified diff" grep -q '^+++ b/' "$out/dry.txt"
    check "$name.$fmt: dry run keeps rootflags=subvol= on the kernel command line" \
      grep -q '^+.*root=UUID=.*rootflags=subvol=' "$out/dry.txt"
    check "$name.$fmt: dry run leaves the source byte for byte" [ "$(sum_of "$src")" = "$sum" ]

    fixed=$out/fixed.qcow2
    rm -f "$fixed"
    rc=0
    "$VDKIT" fixup -o "$fixed" "$src" >/dev/null 2>"$out/err.txt" || rc=$?
    check "$name.$fmt: without --kernel the fix is refused, naming btrfs and --kernel" \
      grep -q 'btrfs.*--kernel' "$out/err.txt"
    check "$name.$fmt: ... with exit status 1 and no target left" [ $rc = 1 ] && [ ! -e "$fixed" ]

    "$VDKIT" fixup --kernel --output-json -o "$fixed" "$src" >"$out/fix.json" || { fail "$name.$fmt: fixup --kernel -o"; continue; }
    check "$name.$fmt: the source is unchanged" [ "$(sum_of "$src")" = "$sum" ]
    want_w=$(sort -u "$GUESTS/$name/warnings.expect" | paste -sd' ')
    got_w=$(python3 -c 'import json,sys; print(" ".join(sorted({w["code"] for w in json.load(open(sys.argv[1]))["warnings"]})))' \
      "$out/fix.json")
    check "$name.$fmt: warnings are '$want_w' (got '$got_w')" [ "$got_w" = "$want_w" ]
    qemu-img convert -O raw "$fixed" "$out/fixed.raw"
    # Every expected file in the booted subvolume, read by the kernel.
    bad=0
    [ -n "$(find "$GUESTS/$name/expected" -type f | head -1)" ] || { echo "  no expected files" >&2; bad=1; }
    kmount "$out/fixed.raw" "$part" "subvolid=$rootid" || { fail "$name.$fmt: kernel mount of the fix"; continue; }
    while IFS= read -r -d '' f; do
      rel=${f#"$GUESTS/$name/expected/"}
      cmp -s "$f" "$MNT/$rel" || { echo "  /$rel differs:" >&2; diff -u "$f" "$MNT/$rel" >&2 || true; bad=1; }
    done < <(find "$GUESTS/$name/expected" -type f -print0)
    kumount
    check "$name.$fmt: every fixed file has its expected content in the booted subvolume" [ $bad = 0 ]
    # Every other subvolume as it was: the source's and the fix's trees compared file by file.
    qemu-img convert -O raw "$src" "$out/src.raw"
    bad=0
    for sv in $(python3 -c 'import json,sys
for f in json.load(open(sys.argv[1]))["filesystems"]:
    for s in f.get("subvolumes", []):
        if not s["root"]: print(s["id"])' "$out/inspect.json"); do
      kmount "$out/src.raw" "$part" "subvolid=$sv" && (cd "$MNT" && find . -xdev -type f -print0 | sort -z |
        xargs -0r sha256sum) >"$out/before.$sv" && kumount
      kmount "$out/fixed.raw" "$part" "subvolid=$sv" && (cd "$MNT" && find . -xdev -type f -print0 | sort -z |
        xargs -0r sha256sum) >"$out/after.$sv" && kumount
      cmp -s "$out/before.$sv" "$out/after.$sv" || { echo "  subvolume $sv changed" >&2; bad=1; }
    done
    check "$name.$fmt: every other subvolume and snapshot is untouched" [ $bad = 0 ]
    off=$(awk -v p="$part" '$1==p {print $2}' "$PARTS")
    size=$(awk -v p="$part" '$1==p {print $3}' "$PARTS")
    dd if="$out/fixed.raw" of="$out/p.img" bs=1M skip=$((off / 1048576)) count=$((size / 1048576)) status=none
    check "$name.$fmt: btrfs check --readonly finds the fixed file system clean" \
      sh -c "btrfs check --readonly \"$out/p.img\" >\"$out/check.txt\" 2>&1"

    # A second run (in place, through the kernel) changes nothing.
    "$VDKIT" fixup --kernel --output-json --in-place "$fixed" >"$out/again.json"
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["changes"]))' "$out/again.json")
    check "$name.$fmt: a second run changes nothing" [ "$n" = 0 ]

    # vdkit mount shows the fixed root without --kernel (the booted subvolume by --subvol; the default one is the
    # top level on some layouts).
    mkdir -p "$SCRATCH/fuse"
    if "$VDKIT" mount --subvol "$rootid" "$fixed" "$SCRATCH/fuse"; then
      check "$name.$fmt: vdkit mount shows the fixed /etc/fstab" cmp -s "$GUESTS/$name/expected/etc/fstab" "$SCRATCH/fuse/etc/fstab"
      "$VDKIT" umount "$SCRATCH/fuse"
    else
      fail "$name.$fmt: vdkit mount"
    fi
    rm -f "$out/fixed.raw" "$out/src.raw" "$out/p.img" "$fixed"
  done

  # A guest that crashed after an fsync: its log tree is reported, never replayed into the source; --in-place
  # needs --replay-journal; -o replays it into the overlay (the logged file is in the fix, not in the source).
  crash=$out/crash.raw
  cp --sparse=always "$out/$name.raw" "$crash"
  off=$(awk -v p="$part" '$1==p {print $2}' "$PARTS")
  rootid=$(json_get "$out/inspect.json" "filesystems.$((part - 1)).root-subvolume")
  mount -t btrfs -o "loop,offset=$off,commit=300,subvolid=$rootid" "$crash" "$MNT" && mounted=1
  sync -f "$MNT"
  echo "written after the last commit" >"$MNT/etc/logged-after-commit"
  python3 -c 'import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDONLY))' "$MNT/etc/logged-after-commit"
  cp --sparse=always "$crash" "$out/crashed.raw"
  kumount
  crash=$out/crashed.raw
  sum=$(sum_of "$crash")
  "$VDKIT" inspect --output=json "$crash" >"$out/crash.json"
  check "$name crashed: inspection warns of the log tree"     grep -q 'log tree that needs replay' "$out/crash.json"
  rc=0
  "$VDKIT" fixup --kernel --in-place "$crash" >/dev/null 2>"$out/err.txt" || rc=$?
  check "$name crashed: --in-place without --replay-journal is refused (exit $rc)" grep -q 'replay-journal' "$out/err.txt"
  check "$name crashed: ... and the image is unchanged" [ "$(sum_of "$crash")" = "$sum" ]
  "$VDKIT" fixup --kernel --output-json -o "$out/crash-fixed.qcow2" "$crash" >"$out/crash-fix.json" ||
    fail "$name crashed: fixup --kernel -o"
  check "$name crashed: the fix reports the log replayed into the overlay" grep -q '"log-replayed"' "$out/crash-fix.json"
  check "$name crashed: the source is unchanged" [ "$(sum_of "$crash")" = "$sum" ]
  qemu-img convert -O raw "$out/crash-fixed.qcow2" "$out/crash-fixed.raw"
  kmount "$out/crash-fixed.raw" "$part" "subvolid=$rootid"
  check "$name crashed: the logged file is in the fixed image" [ -s "$MNT/etc/logged-after-commit" ]
  check "$name crashed: and /etc/fstab is fixed" cmp -s "$GUESTS/$name/expected/etc/fstab" "$MNT/etc/fstab"
  kumount
  rm -f "$out"/crash*.raw "$out/crash-fixed.qcow2"
done
finish
