#!/usr/bin/env bash
# `vdkit fixup --in-place` interrupted by a failing write (VDKIT_FAULT): for every write of the run in turn, one write
# fails (EIO, ENOSPC, or torn half way); each file the fixup edits must then hold its old content or its whole new
# content, e2fsck -fn must find every file system clean, the run must exit non-zero naming the failure, and a rerun
# without faults must finish the job. The sweep ends at the first index past the run's last write (exit 0).
source "$(dirname "$0")/lib.sh"
for t in debugfs e2fsck qemu-img sfdisk mkfs.ext4 cpio; do
  command -v "$t" >/dev/null || PATH=$PATH:/sbin:/usr/sbin command -v "$t" >/dev/null || skip "$t is not installed"
done
export PATH=$PATH:/sbin:/usr/sbin
GUESTS=$VDKIT_SRC/tests/guests
d=$SCRATCH

# guest_state IMG PARTS NAME OUT: OUT/<path with / as _> for every file under expected/ (absent when the guest has
# none), and OUT/fsck with the e2fsck verdict of every ext partition. Mount points come from the guest's tree names:
# the partition whose tree is "root" is /, a tree called "boot" is /boot.
guest_state() {
  local img=$1 parts=$2 name=$3 out=$4
  rm -rf "$out"
  mkdir -p "$out/files"
  : >"$out/fsck"
  while read -r num off size type; do
    case $type in ext*) ;; *) continue ;; esac
    local tree mnt part=$out/p$num.img
    tree=$(awk -v n="$num" '$1=="part" && $2==n {print $7} $1=="whole" {print $7}' "$GUESTS/$name/manifest")
    case $tree in root) mnt= ;; boot) mnt=/boot ;; *) continue ;; esac
    if [ "$num" = 0 ]; then cp "$img" "$part"; else
      dd if="$img" of="$part" bs=1M skip=$((off / 1048576)) count=$((size / 1048576)) status=none; fi
    e2fsck -fn "$part" >>"$out/fsck" 2>&1 || echo "E2FSCK-FAILED p$num" >>"$out/fsck"
    : >"$out/cmds"
    while IFS= read -r -d '' f; do
      local g=${f#"$GUESTS/$name/expected"}
      [ -n "$mnt" ] && { case $g in "$mnt"/*) ;; *) continue ;; esac; }
      [ -z "$mnt" ] && case $g in /boot/*) grep -q '^part .* boot$' "$GUESTS/$name/manifest" && continue ;; esac
      echo "dump ${g#"$mnt"} $out/files/${g//\//_}" >>"$out/cmds"
    done < <(find "$GUESTS/$name/expected" -type f -print0)
    debugfs -f "$out/cmds" "$part" >/dev/null 2>&1 || true
    rm -f "$part"
  done <"$parts"
}

# each_file_old_or_new NAME STATE: every edited file is byte for byte the original or the expected result.
each_file_old_or_new() {
  local name=$1 st=$2 ok=0
  while IFS= read -r -d '' f; do
    local g=${f#"$GUESTS/$name/expected"}
    local got=$st/files/${g//\//_} orig
    orig=$(find "$GUESTS/$name" -path "$GUESTS/$name/expected" -prune -o -path "*$g" -print | head -1)
    if cmp -s "$got" "$f"; then :
    elif [ -n "$orig" ] && cmp -s "$got" "$orig"; then :
    elif [ -z "$orig" ] && [ ! -e "$got" ]; then :
    else echo "  $g is neither the old nor the new content" >&2; ok=1; fi
  done < <(find "$GUESTS/$name/expected" -type f -print0)
  return $ok
}

all_new() {
  local name=$1 st=$2
  while IFS= read -r -d '' f; do
    local g=${f#"$GUESTS/$name/expected"}
    cmp -s "$st/files/${g//\//_}" "$f" || { echo "  $g is not the fixed content" >&2; return 1; }
  done < <(find "$GUESTS/$name/expected" -type f -print0)
}

# sweep NAME FMT STRIDE: fail write k (k = 0, STRIDE, 2*STRIDE, ...) of an in-place fixup of a fresh copy.
sweep() {
  local name=$1 fmt=$2 stride=$3 out=$d/$1
  local pristine=$out/$name.$fmt parts=$out/$name.parts img=$out/victim.$fmt
  local k=0 runs=0 bad=0 rolled=0 kinds=(write-error torn-write write-error) errnos=(EIO EIO ENOSPC)
  while :; do
    cp "$pristine" "$img"
    local kind=${kinds[k % 3]} errno=${errnos[k % 3]}
    local rule="$kind:victim.$fmt:0:1099511627776:$errno:1:2048:$k"
    local rc=0
    VDKIT_FAULT=$rule "$VDKIT" fixup --in-place "$img" >"$out/out.txt" 2>"$out/err.txt" || rc=$?
    runs=$((runs + 1))
    local raw=$img
    if [ "$fmt" != raw ]; then
      # Leaked clusters (exit 3) waste space but harm nothing; corruption (2) or an unfinished check (1) do.
      local qrc=0
      qemu-img check -q "$img" >"$out/qcheck" 2>&1 || qrc=$?
      if [ $qrc != 0 ] && [ $qrc != 3 ]; then
        echo "  write $k ($kind): qemu-img check exit $qrc: $(head -c 300 "$out/qcheck")" >&2
        bad=$((bad + 1))
      fi
      qemu-img convert -O raw "$img" "$out/victim.raw"
      raw=$out/victim.raw
    fi
    guest_state "$raw" "$parts" "$name" "$out/state"
    if grep -q E2FSCK-FAILED "$out/state/fsck"; then
      echo "  write $k ($kind): e2fsck -fn is not clean:" >&2
      grep -v '^e2fsck\|^Pass' "$out/state/fsck" | head -20 >&2
      bad=$((bad + 1))
    fi
    each_file_old_or_new "$name" "$out/state" || { echo "  (write $k, $kind)" >&2; bad=$((bad + 1)); }
    if [ $rc = 0 ]; then
      all_new "$name" "$out/state" || bad=$((bad + 1))
      break
    fi
    if ! grep -qiE "injected fault|input/output error|no space" "$out/err.txt"; then
      echo "  write $k ($kind): the message does not name the failure: $(head -c 300 "$out/err.txt")" >&2
      bad=$((bad + 1))
    fi
    grep -q "rolled back" "$out/err.txt" && rolled=$((rolled + 1))
    if [ $((runs % 3)) = 1 ]; then
      # Recovery: a rerun without faults finishes the job.
      if ! "$VDKIT" fixup --in-place "$img" >/dev/null 2>"$out/err2.txt"; then
        echo "  write $k: the rerun failed: $(head -c 300 "$out/err2.txt")" >&2
        bad=$((bad + 1))
      else
        [ "$fmt" != raw ] && qemu-img convert -O raw "$img" "$out/victim.raw"
        guest_state "$raw" "$parts" "$name" "$out/state"
        all_new "$name" "$out/state" || { echo "  (rerun after write $k)" >&2; bad=$((bad + 1)); }
      fi
    fi
    k=$((k + stride))
    [ $k -lt 3000 ] || { echo "  the run never finished without a fault" >&2; bad=$((bad + 1)); break; }
  done
  echo "  $name.$fmt: $runs runs, the failing write at every ${stride} index, $rolled rolled back" >&2
  check "$name.$fmt --in-place: a write failing at any of $runs points leaves each file old or new, e2fsck clean" \
    [ $bad = 0 ]
  check "$name.$fmt: failures were rolled back and reported ($rolled of $((runs - 1)))" [ "$rolled" -gt 0 ]
}

for name in sl5 rhel8 canfar; do
  "$VDKIT_SRC/scripts/make-guest" "$name" "$d/$name" >/dev/null || { fail "$name: make-guest"; continue; }
done
sweep sl5 raw 1
sweep rhel8 raw 2
sweep sl5 qcow2 3
sweep canfar raw 3  # a file system on the whole disk, no partition table

# A device that keeps failing: the undo cannot be written either; the run must say the file system needs e2fsck.
cp "$d/sl5/sl5.raw" "$d/sl5/victim.raw"
rc=0
VDKIT_FAULT="write-error:victim.raw:0:1099511627776:EIO:-1::12" "$VDKIT" fixup --in-place "$d/sl5/victim.raw" \
  >/dev/null 2>"$d/err.txt" || rc=$?
check "a device failing every write from the 13th on: non-zero exit" [ $rc != 0 ]
check "... and the message says to check the file system ($(head -c 200 "$d/err.txt"))" grep -q "e2fsck" "$d/err.txt"
finish
