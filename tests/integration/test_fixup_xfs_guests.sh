#!/usr/bin/env bash
# The XFS test guests (every tests/guests/* whose manifest has an xfs or xfs-v4 partition), as streamOptimized VMDK
# and qcow2: inspection facts and file-system state; --dry-run prints the diff and changes no byte; without --kernel
# the fixup stops before writing anything (no target, source untouched) and names the file system. As root, v5:
# --kernel writes every expected file (read back through the kernel's `ro,norecovery` loop mount), xfs_repair -n
# finds the result clean, a second run changes nothing, and no loop device, mount or private folder is left; v4:
# --kernel is refused by name. A guest whose log was left dirty: inspection and --dry-run warn, -o --kernel replays
# the log into the overlay (the write made before the crash shows up, the source does not change), --in-place
# without --replay-journal is refused before writing.
source "$(dirname "$0")/lib.sh"
export PATH=$PATH:/sbin:/usr/sbin
for t in mkfs.xfs xfs_db xfs_repair qemu-img sfdisk python3; do command -v "$t" >/dev/null || skip "$t is not installed"; done
GUESTS=$VDKIT_SRC/tests/guests
ROOT=0
[ "$(id -u)" = 0 ] && grep -qw xfs /proc/filesystems && [ -w /dev/loop-control ] && command -v xfs_io >/dev/null && ROOT=1
[ $ROOT = 1 ] || echo "note: not root (or no kernel XFS): the --kernel writes are not run"

json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)
PY
}
leftovers() {  # loop devices and mounts of vdkit's private raw views, and the views' folders
  { losetup -a 2>/dev/null | grep -c 'vdkit-raw\|/run/vdkit/kmount' || true; } | tr -d '\n'
  echo -n " $(grep -c /run/vdkit/kmount /proc/mounts || true)"
  echo " $(ls -d /run/vdkit/kmount.* 2>/dev/null | wc -l)"
}
before_leftovers=$(leftovers)
M=$SCRATCH/mnt
mkdir -p "$M"

# check_expected NAME RAW PARTS: every file under expected/ has that content, read through the kernel, and
# xfs_repair -n finds every XFS partition clean.
check_expected() {
  local name=$1 raw=$2 parts=$3 ok=1
  while read -r num off size type; do
    case $type in xfs*) ;; *) continue ;; esac
    dd if="$raw" of="$SCRATCH/p$num.img" bs=1M skip=$((off / 1048576)) count=$((size / 1048576)) status=none
    xfs_repair -n -o force_geometry "$SCRATCH/p$num.img" >"$SCRATCH/repair" 2>&1 || { cat "$SCRATCH/repair" >&2; ok=0; }
  done <"$parts"
  mount -o ro,norecovery,nouuid,loop "$SCRATCH/p2.img" "$M" || return 1
  mount -o ro,norecovery,nouuid,loop "$SCRATCH/p1.img" "$M/boot" || { umount "$M"; return 1; }
  while IFS= read -r -d '' f; do
    local rel=/${f#"$GUESTS/$name/expected/"}
    cmp -s "$f" "$M$rel" || { echo "  $rel differs:" >&2; diff -u "$f" "$M$rel" >&2 || true; ok=0; }
  done < <(find -L "$GUESTS/$name/expected" -type f -print0)
  umount "$M/boot"; umount "$M"
  rm -f "$SCRATCH"/p*.img
  [ $ok = 1 ]
}

for name in $("$VDKIT_SRC/scripts/make-guest" --list); do
  grep -Eq '^part .* xfs(-v4)? ' "$GUESTS/$name/manifest" || continue
  v4=0
  grep -Eq '^part .* xfs-v4 ' "$GUESTS/$name/manifest" && v4=1
  out=$SCRATCH/$name
  "$VDKIT_SRC/scripts/make-guest" "$name" "$out" >/dev/null || { fail "$name: make-guest"; continue; }
  parts=$out/$name.parts
  for fmt in vmdk qcow2; do
    src=$out/$name.$fmt
    sum=$(sum_of "$src")
    "$VDKIT" inspect --output=json "$src" >"$out/inspect.json" || { fail "$name.$fmt: inspect"; continue; }
    bad=0
    while read -r key want; do
      got=$(json_get "$out/inspect.json" "$key" 2>&1) || got="<missing>"
      [ "$got" = "$want" ] || { echo "  $key: got '$got', want '$want'" >&2; bad=1; }
    done < <(grep -v '^#' "$GUESTS/$name/inspect.expect")
    check "$name.$fmt: inspect reports what the guest holds, without --kernel" [ $bad = 0 ]
    want_state="xfs v$((v4 ? 4 : 5))"
    check "$name.$fmt: inspect reports each XFS's version and a clean log" \
      grep -q "mounted at /; $want_state.*log clean" <("$VDKIT" inspect "$src")

    if [ -w /dev/fuse ]; then
      "$VDKIT" mount --partition 2 "$src" "$M"
      check "$name.$fmt: vdkit mount shows the XFS root read-only without --kernel" \
        cmp -s "$M/etc/fstab" "$GUESTS/$name/root/etc/fstab"
      check "$name.$fmt: ... and refuses writes" sh -c "! touch '$M/new' 2>/dev/null"
      "$VDKIT" umount "$M"
    fi

    "$VDKIT" fixup --dry-run "$src" >"$out/dry.txt"
    check "$name.$fmt: dry run prints a unified diff" grep -q '^+++ b/etc/fstab' "$out/dry.txt"
    check "$name.$fmt: dry run leaves the source byte for byte" [ "$(sum_of "$src")" = "$sum" ]

    rm -f "$out/fixed.qcow2"
    if "$VDKIT" fixup -o "$out/fixed.qcow2" "$src" 2>"$out/err"; then
      fail "$name.$fmt: fixup without --kernel wrote an XFS guest"
    else
      check "$name.$fmt: without --kernel the refusal names the file system and --kernel" \
        grep -q "is on xfs on partition 2 (/), which vdkit reads but does not write itself.*--kernel" "$out/err"
    fi
    check "$name.$fmt: ... and leaves no target" [ ! -e "$out/fixed.qcow2" ]
    check "$name.$fmt: ... and the source untouched" [ "$(sum_of "$src")" = "$sum" ]
    [ $ROOT = 1 ] || continue

    if [ $v4 = 1 ]; then
      if "$VDKIT" fixup --kernel -o "$out/fixed.qcow2" "$src" 2>"$out/err"; then
        fail "$name.$fmt: --kernel wrote XFS v4 on a kernel without v4 support"
      else
        check "$name.$fmt: --kernel on XFS v4 is refused by name" grep -q "is XFS v4 (no metadata CRCs)" "$out/err"
      fi
      check "$name.$fmt: ... with no target left" [ ! -e "$out/fixed.qcow2" ]
      continue
    fi
    "$VDKIT" fixup --kernel --output-json -o "$out/fixed.qcow2" "$src" >"$out/fix.json" ||
      { fail "$name.$fmt: fixup --kernel -o"; continue; }
    check "$name.$fmt: --kernel leaves the source unchanged" [ "$(sum_of "$src")" = "$sum" ]
    want_w=$(sort -u "$GUESTS/$name/warnings.expect" | paste -sd' ')
    got_w=$(python3 -c 'import json,sys; print(" ".join(sorted({w["code"] for w in json.load(open(sys.argv[1]))["warnings"]})))' \
      "$out/fix.json")
    check "$name.$fmt: warnings are '$want_w' (got '$got_w')" [ "$got_w" = "$want_w" ]
    qemu-img convert -O raw "$out/fixed.qcow2" "$out/fixed.raw"
    check "$name.$fmt: every fixed file as expected through the kernel, xfs_repair -n clean" \
      check_expected "$name" "$out/fixed.raw" "$parts"
    fixed_sum=$(sum_of "$out/fixed.qcow2")
    "$VDKIT" fixup --kernel --output-json --in-place "$out/fixed.qcow2" >"$out/again.json"
    check "$name.$fmt: a second run changes nothing" \
      [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["changes"]))' "$out/again.json")" = 0 ]
    check "$name.$fmt: ... and no byte" [ "$(sum_of "$out/fixed.qcow2")" = "$fixed_sum" ]
    check "$name.$fmt: no loop device, mount or private folder left" [ "$(leftovers)" = "$before_leftovers" ]
    rm -f "$out/fixed.raw" "$out/fixed.qcow2"
  done

  # A guest that crashed: its root log is dirty and holds a file written just before.
  [ $ROOT = 1 ] && [ $v4 = 0 ] || continue
  d=$out/dirty.raw
  cp "$out/$name.raw" "$d"
  read -r _ off size _ < <(awk '$1==2' "$parts")
  mount -o loop,nouuid,offset="$off",sizelimit="$size" "$d" "$M"
  echo "written just before the crash" >"$M/etc/crash-note"
  sync -f "$M/etc/crash-note"
  xfs_io -x -c 'shutdown -f' "$M"
  umount "$M"
  sum=$(sum_of "$d")
  "$VDKIT" inspect "$d" >"$out/inspect.txt"
  check "$name: inspect warns that the root log is dirty" \
    grep -q "warning: XFS log is dirty: the guest was not shut down cleanly; what vdkit reads may miss its last writes" \
    "$out/inspect.txt"
  "$VDKIT" fixup --dry-run --output-json "$d" >"$out/dry.json"
  check "$name: --dry-run warns too (log-needs-recovery)" grep -q '"log-needs-recovery"' "$out/dry.json"
  "$VDKIT" fixup --kernel --output-json -o "$out/fixed.qcow2" "$d" >"$out/fix.json" || fail "$name: -o --kernel on a dirty log"
  check "$name: the report says the log was replayed into the overlay" \
    grep -q 'replayed its log into the overlay (the source is unchanged)' "$out/fix.json"
  check "$name: the dirty source is unchanged" [ "$(sum_of "$d")" = "$sum" ]
  "$VDKIT" mount --partition 2 "$out/fixed.qcow2" "$M"
  check "$name: the replayed file is in the fixed image (its log now clean)" \
    grep -q "written just before the crash" "$M/etc/crash-note"
  "$VDKIT" umount "$M"
  cp "$d" "$out/inplace.raw"
  if "$VDKIT" fixup --kernel --in-place "$out/inplace.raw" 2>"$out/err"; then
    fail "$name: --in-place replayed a dirty log without --replay-journal"
  else
    check "$name: --in-place on a dirty log needs --replay-journal" grep -q -- "--replay-journal" "$out/err"
  fi
  check "$name: ... and wrote nothing" [ "$(sum_of "$out/inplace.raw")" = "$sum" ]
  "$VDKIT" fixup --kernel --replay-journal --in-place "$out/inplace.raw" >/dev/null
  check "$name: --in-place --replay-journal --kernel writes it" [ "$(sum_of "$out/inplace.raw")" != "$sum" ]
  check "$name: no loop device, mount or private folder left" [ "$(leftovers)" = "$before_leftovers" ]
  rm -rf "$out"
done
finish
