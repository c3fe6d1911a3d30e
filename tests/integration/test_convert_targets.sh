#!/usr/bin/env bash
# Convert straight onto block devices (loop devices) and NBD exports (nbdkit memory/file, qemu-nbd): refusals
# (no --overwrite, too small, mounted), holes kept as holes on a sparse backing file and on tmpfs, BLKZEROOUT where
# a device cannot punch (loop over ramfs), --fixup onto both kinds, zero requests and
# multi-conn on NBD, qcow2 laid out onto both, and runs interrupted at random points (SIGINT, SIGTERM, SIGKILL) finished
# with --resume to the same bytes. Every result is checked with `qemu-img compare` against the source.
# Needs root (losetup, mount), nbdkit, qemu-nbd, qemu-img. About 1.5 minutes on 2 cores. VDKIT_TEST_SEED=N repeats
# the random interrupt points of a failed run (the seed is printed).
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root for loop devices"
for t in losetup nbdkit qemu-nbd qemu-img qemu-io mkfs.ext4; do command -v "$t" >/dev/null || skip "$t is missing"; done

# Default resume records go here, not to /var/lib/vdkit; every run that completes removes its own.
export XDG_STATE_HOME=$SCRATCH/state
# Loop devices and servers are found by their files in SCRATCH at exit (the helpers below run in $( ), so no list
# they kept would reach this shell), so an early exit leaves nothing behind.
MOUNTS=()
cleanup() {
  # A mount of a loop device goes before the loop; a loop over a file on the tmpfs before the tmpfs.
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  losetup -a 2>/dev/null | grep -F "$SCRATCH/" | cut -d: -f1 | while read -r l; do losetup -d "$l" || true; done || true
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  for p in "$SCRATCH"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  sleep 0.2
  cleanup_scratch
}
trap cleanup EXIT

loop_of() { losetup -f --show "$1"; } # attaches FILE, prints the device
detach() { losetup -d "$1"; }
# serve NAME ARGS...: nbdkit on SCRATCH/NAME.sock; prints the URI.
serve() {
  local name=$1; shift
  local sock=$SCRATCH/$name.sock
  nbdkit -U "$sock" -P "$SCRATCH/$name.pid" "$@" >/dev/null
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  echo "nbd+unix:///?socket=$sock"
}
stop() {
  local pid
  pid=$(cat "$SCRATCH/$1.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$SCRATCH/$1.sock" "$SCRATCH/$1.pid"
}
# same SRC-FORMAT SRC TARGET [TARGET-FORMAT]: the guest-visible bytes agree (size of the source only).
same() {
  local sf=$1 src=$2 tgt=$3 tf=${4:-raw}
  local size
  size=$(qemu-img info -f "$sf" --output=json "$src" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  if [ "$tf" = raw ]; then
    qemu-img compare -q --image-opts "driver=$sf,file.filename=$src" "driver=raw,size=$size,file.filename=$tgt"
  else
    qemu-img compare -q -f "$sf" -F "$tf" "$src" "$tgt"
  fi
}
alloc_kib() { du -k "$1" | cut -f1; }
sum1() { sha256sum "$1" | cut -c1-16; }

# Sources: 96 MiB with random data (at 40 MiB and in the last chunk), patterns, explicit zeros and holes; as qcow2
# and streamOptimized VMDK.
SRC=$SCRATCH/src.qcow2
qemu-img create -q -f qcow2 "$SCRATCH/pat.qcow2" 96M
qemu-io -f qcow2 -c "write -P 0x5a 1M 3M" -c "write -P 0x11 60M 64k" -c "write -P 0 70M 2M" "$SCRATCH/pat.qcow2" >/dev/null
qemu-img convert -q -O raw "$SCRATCH/pat.qcow2" "$SCRATCH/src.raw"
head -c $((5 << 20)) /dev/urandom >"$SCRATCH/rand"
dd if="$SCRATCH/rand" of="$SCRATCH/src.raw" bs=1M seek=40 conv=notrunc status=none
dd if="$SCRATCH/rand" of="$SCRATCH/src.raw" bs=1M seek=91 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$SCRATCH/src.raw" "$SRC"
VMDK=$SCRATCH/src.vmdk
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$SCRATCH/src.raw" "$VMDK"
SIZE=$((96 << 20))
DATA_KIB=$((($(qemu-img map -f qcow2 --output=json "$SRC" | python3 -c '
import json,sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]))')) / 1024))
src_sum=$(sum_of "$SRC" "$VMDK")

# 1. Refusals: no --overwrite, a smaller device, a mounted device. The device is left as it was.
head -c $SIZE /dev/urandom >"$SCRATCH/full.img"
dev=$(loop_of "$SCRATCH/full.img")
before=$(sum1 "$dev")
rc=0; "$VDKIT" convert "$SRC" "$dev" 2>"$SCRATCH/err" || rc=$?
check "device without --overwrite: exit 1 (got $rc), names --overwrite" [ "$rc" -eq 1 ] && grep -q -- "--overwrite" "$SCRATCH/err"
check "device without --overwrite: device unchanged" [ "$before" = "$(sum1 "$dev")" ]
detach "$dev"
truncate -s $((SIZE - (1 << 20))) "$SCRATCH/small.img"
dev=$(loop_of "$SCRATCH/small.img")
rc=0; "$VDKIT" convert --overwrite "$SRC" "$dev" 2>"$SCRATCH/err" || rc=$?
check "smaller device: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "smaller device: names both sizes ($(cat "$SCRATCH/err"))" grep -q "$((SIZE - (1 << 20))) bytes.*$SIZE bytes" "$SCRATCH/err"
check "smaller device: nothing written" [ "$(alloc_kib "$SCRATCH/small.img")" -eq 0 ]
detach "$dev"
truncate -s $SIZE "$SCRATCH/fs.img"
mkfs.ext4 -q -F "$SCRATCH/fs.img"
dev=$(loop_of "$SCRATCH/fs.img")
mkdir -p "$SCRATCH/mnt"
if mount "$dev" "$SCRATCH/mnt"; then
  MOUNTS+=("$SCRATCH/mnt")
  rc=0; "$VDKIT" convert --overwrite "$SRC" "$dev" 2>"$SCRATCH/err" || rc=$?
  check "mounted device: exit 1 (got $rc), says in use" [ "$rc" -eq 1 ] && grep -q "in use" "$SCRATCH/err"
  umount "$SCRATCH/mnt"
  check "mounted device: the file system is intact" e2fsck -fn "$dev" >/dev/null 2>&1
else
  echo "note: cannot mount ext4 here; the mounted-device case is not run"
fi
detach "$dev"

# 2. A sparse backing file full of old bytes: data lands, zero ranges become holes again, --output-json and -p work.
dev=$(loop_of "$SCRATCH/full.img")
"$VDKIT" convert --overwrite -p --output-json "$SRC" "$dev" >"$SCRATCH/json" 2>"$SCRATCH/progress"
check "loop over a sparse file: same bytes as the source" same qcow2 "$SRC" "$dev"
detach "$dev"
check "loop over a sparse file: zero ranges punched (allocated $(alloc_kib "$SCRATCH/full.img") KiB, data $DATA_KIB KiB)" \
  [ "$(alloc_kib "$SCRATCH/full.img")" -le $((DATA_KIB + 256)) ]
check "--output-json names the target kind" grep -q '"target-kind": "block-device"' "$SCRATCH/json"
check "-p draws progress" grep -q "100.0%" "$SCRATCH/progress"
# The same from a streamOptimized VMDK on standard input, and with --target-is-zero onto a fresh sparse file.
dev=$(loop_of "$SCRATCH/full.img")
rc=0; "$VDKIT" convert --overwrite -O qcow2 - "$dev" <"$VMDK" 2>"$SCRATCH/err" || rc=$?
check "-O qcow2 from standard input onto a device: refused (exit $rc), says why" [ "$rc" -eq 1 ] && grep -q "two passes" "$SCRATCH/err"
check "stdin streamOptimized VMDK onto a device" "$VDKIT" convert --overwrite - "$dev" <"$VMDK"
check "... same bytes" same qcow2 "$SRC" "$dev"
detach "$dev"
truncate -s $SIZE "$SCRATCH/zero.img"
dev=$(loop_of "$SCRATCH/zero.img")
check "--target-is-zero onto a fresh sparse file" "$VDKIT" convert --overwrite --target-is-zero "$VMDK" "$dev"
check "... same bytes" same qcow2 "$SRC" "$dev"
detach "$dev"
check "... only data allocated ($(alloc_kib "$SCRATCH/zero.img") KiB)" [ "$(alloc_kib "$SCRATCH/zero.img")" -le $((DATA_KIB + 256)) ]

# 3. A loop device over a file on tmpfs (punch hole on shmem), larger than the source: bytes past it are kept.
mkdir -p "$SCRATCH/tmpfs"
mount -t tmpfs -o size=200m vdkit-test "$SCRATCH/tmpfs"
MOUNTS+=("$SCRATCH/tmpfs")
head -c $((SIZE + (4 << 20))) /dev/urandom >"$SCRATCH/tmpfs/dev.img"
tail_before=$(tail -c $((4 << 20)) "$SCRATCH/tmpfs/dev.img" | sha256sum)
dev=$(loop_of "$SCRATCH/tmpfs/dev.img")
check "loop over tmpfs" "$VDKIT" convert --overwrite "$SRC" "$dev"
check "... same bytes" same qcow2 "$SRC" "$dev"
detach "$dev"
check "... bytes past the source's size untouched" [ "$tail_before" = "$(tail -c $((4 << 20)) "$SCRATCH/tmpfs/dev.img" | sha256sum)" ]
check "... holes punched on tmpfs ($(alloc_kib "$SCRATCH/tmpfs/dev.img") KiB)" \
  [ "$(alloc_kib "$SCRATCH/tmpfs/dev.img")" -le $((DATA_KIB + 4096 + 256)) ]
rm -f "$SCRATCH/tmpfs/dev.img"

# 3b. A device that cannot punch holes (a loop over a file on ramfs, which has no fallocate): zero ranges go to
# BLKZEROOUT (seen with strace when it is installed), and the old bytes still read back as zeros.
mkdir -p "$SCRATCH/ramfs"
mount -t ramfs vdkit-test "$SCRATCH/ramfs"
MOUNTS+=("$SCRATCH/ramfs")
head -c $SIZE /dev/urandom >"$SCRATCH/ramfs/dev.img"
dev=$(loop_of "$SCRATCH/ramfs/dev.img")
if command -v strace >/dev/null; then
  check "loop over ramfs" strace -f -o "$SCRATCH/strace" -e trace=fallocate,ioctl "$VDKIT" convert --overwrite "$SRC" "$dev"
  check "... punch refused, BLKZEROOUT used" grep -q "BLKZEROOUT" "$SCRATCH/strace"
  check "... never BLKDISCARD" sh -c "! grep -q BLKDISCARD '$SCRATCH/strace'"
else
  check "loop over ramfs" "$VDKIT" convert --overwrite "$SRC" "$dev"
fi
check "... same bytes" same qcow2 "$SRC" "$dev"
detach "$dev"
rm -f "$SCRATCH/ramfs/dev.img"

# 4. -O qcow2 onto a device (old bytes on it): qemu-img check clean, guest view equal; too small a device refused.
head -c $SIZE /dev/urandom >"$SCRATCH/q.img"
dev=$(loop_of "$SCRATCH/q.img")
check "-O qcow2 onto a device" "$VDKIT" convert --overwrite -O qcow2 "$VMDK" "$dev"
check "... qemu-img check is clean" qemu-img check -q -f qcow2 "$dev"
check "... guest view equal" same qcow2 "$SRC" "$dev" qcow2
check "-O qcow2 -c --compression zstd onto a device" "$VDKIT" convert --overwrite -O qcow2 -c --compression zstd "$SRC" "$dev"
check "... qemu-img check is clean" qemu-img check -q -f qcow2 "$dev"
check "... guest view equal" same qcow2 "$SRC" "$dev" qcow2
detach "$dev"
truncate -s $((8 << 20)) "$SCRATCH/qsmall.img"
dev=$(loop_of "$SCRATCH/qsmall.img")
rc=0; "$VDKIT" convert --overwrite -O qcow2 "$SRC" "$dev" 2>"$SCRATCH/err" || rc=$?
check "-O qcow2 onto a device too small for it: exit 1 (got $rc), says so" [ "$rc" -eq 1 ] && grep -q "past the end" "$SCRATCH/err"
detach "$dev"
check "... nothing written" [ "$(alloc_kib "$SCRATCH/qsmall.img")" -eq 0 ]

# 4b. --fixup onto a device and an export: the same guest as --fixup into a file (the fixups stamp times, so the
# bytes differ; `vdkit inspect` of both must not), the same report; --resume of a --fixup run is refused.
"$VDKIT_SRC/scripts/make-guest" canfar "$SCRATCH/g" >/dev/null
G=$SCRATCH/g/canfar.vmdk
gsize=$(qemu-img info --output=json "$G" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
"$VDKIT" convert --fixup --device-names uuid "$G" "$SCRATCH/fixed.raw" >"$SCRATCH/fix-file.txt"
"$VDKIT" inspect --output=json "$SCRATCH/fixed.raw" | sed 's|"[^"]*fixed.raw"|IMG|g' >"$SCRATCH/insp-file.json"
check "the fixups change the guest" sh -c "! qemu-img compare -q -f vmdk -F raw '$G' '$SCRATCH/fixed.raw'"
head -c "$gsize" /dev/urandom >"$SCRATCH/gdev.img"
dev=$(loop_of "$SCRATCH/gdev.img")
rc=0; "$VDKIT" convert --overwrite --fixup --device-names uuid "$G" "$dev" >"$SCRATCH/fix-dev.txt" || rc=$?
check "--fixup onto a device (exit $rc)" [ "$rc" -eq 0 ]
check "... the same fixups reported" cmp "$SCRATCH/fix-file.txt" "$SCRATCH/fix-dev.txt"
"$VDKIT" inspect --output=json "$dev" | sed "s|\"$dev\"|IMG|g" >"$SCRATCH/insp-dev.json"
check "... the same guest as --fixup into a file" cmp "$SCRATCH/insp-file.json" "$SCRATCH/insp-dev.json"
rc=0; "$VDKIT" convert --overwrite --fixup --resume --state "$SCRATCH/none.json" "$G" "$dev" 2>"$SCRATCH/err" || rc=$?
check "--resume with --fixup: refused (exit $rc)" [ "$rc" -eq 1 ] && grep -q "fixup" "$SCRATCH/err"
detach "$dev"
truncate -s "$gsize" "$SCRATCH/gexp.img"
uri=$(serve gexp file "$SCRATCH/gexp.img")
rc=0; "$VDKIT" convert --fixup --device-names uuid --output-json "$G" "$uri" >"$SCRATCH/fix.json" || rc=$?
check "--fixup onto an NBD export (exit $rc)" [ "$rc" -eq 0 ]
stop gexp
"$VDKIT" inspect --output=json "$SCRATCH/gexp.img" | sed 's|"[^"]*gexp.img"|IMG|g' >"$SCRATCH/insp-exp.json"
check "... the same guest as --fixup into a file" cmp "$SCRATCH/insp-file.json" "$SCRATCH/insp-exp.json"
check "... --output-json has the fixups" grep -q '"fixup"' "$SCRATCH/fix.json"

# 5. NBD exports: nbdkit memory and file, multi-conn on and off (the log filter counts connections and zero requests).
for mc in emulate disable; do
  uri=$(serve mem --filter=multi-conn --filter=log memory $SIZE multi-conn-mode=$mc logfile="$SCRATCH/mem-$mc.log")
  check "nbdkit memory (multi-conn $mc)" "$VDKIT" convert "$SRC" "$uri"
  conns=$(grep -o 'connection=[0-9]*' "$SCRATCH/mem-$mc.log" | sort -u | wc -l)
  check "... same bytes" qemu-img compare -q -f qcow2 -F raw "$SRC" "$uri"
  if [ $mc = emulate ]; then check "... several connections ($conns)" [ "$conns" -gt 1 ]
  else check "... one connection ($conns)" [ "$conns" -eq 1 ]; fi
  check "... fast zero requests used" grep -q "Zero.*fast=1" "$SCRATCH/mem-$mc.log"
  check "... flushed" grep -q "Flush" "$SCRATCH/mem-$mc.log"
  stop mem
done
# A server with no zero requests: zeros are written as bytes.
uri=$(serve nozero --filter=nozero --filter=log memory $SIZE logfile="$SCRATCH/nozero.log")
check "nbdkit memory without zero requests" "$VDKIT" convert "$SRC" "$uri"
check "... same bytes" qemu-img compare -q -f qcow2 -F raw "$SRC" "$uri"
check "... no zero request sent" sh -c "! grep -q 'Zero' '$SCRATCH/nozero.log'"
stop nozero
head -c $SIZE /dev/urandom >"$SCRATCH/export.img"
for mc in emulate disable; do
  uri=$(serve file --filter=multi-conn file "$SCRATCH/export.img" multi-conn-mode=$mc)
  check "nbdkit file (multi-conn $mc), streamOptimized VMDK source" "$VDKIT" convert "$VMDK" "$uri"
  stop file
  check "... same bytes" same qcow2 "$SRC" "$SCRATCH/export.img"
  check "... zero ranges punched ($(alloc_kib "$SCRATCH/export.img") KiB)" [ "$(alloc_kib "$SCRATCH/export.img")" -le $((DATA_KIB + 256)) ]
done
# Write-back flushes: with multi-conn, a source with more data than the write-back interval (32 MiB) is flushed on a
# connection of its own while the data still goes, and a failed write-back flush fails the run.
head -c $SIZE /dev/urandom >"$SCRATCH/big.raw"
uri=$(serve wb --filter=multi-conn --filter=log memory $SIZE multi-conn-mode=emulate logfile="$SCRATCH/wb.log")
check "96 MiB of random data onto nbdkit memory (multi-conn)" "$VDKIT" convert "$SCRATCH/big.raw" "$uri"
check "... same bytes" qemu-img compare -q -f raw -F raw "$SCRATCH/big.raw" "$uri"
stop wb
check "... flushed before the last write (write-back)" python3 - "$SCRATCH/wb.log" <<'PY'
import sys
lines = [l for l in open(sys.argv[1]) if " Write " in l or " Flush " in l]
first_flush = next(i for i, l in enumerate(lines) if " Flush " in l)
last_write = max(i for i, l in enumerate(lines) if " Write " in l)
sys.exit(0 if first_flush < last_write else 1)
PY
# An export (nbdkit eval over a file) whose first flush fails and later ones succeed: the first is a write-back flush.
truncate -s $SIZE "$SCRATCH/evalwb.img"
F=$SCRATCH/evalwb.img FLAG=$SCRATCH/evalwb.flushed LATER=$SCRATCH/evalwb.later
uri=$(serve evalwb eval get_size="echo $SIZE" can_write='exit 0' can_flush='exit 0' can_multi_conn='exit 0' \
  pread="dd if='$F' iflag=skip_bytes,count_bytes skip=\$4 count=\$3 status=none" \
  pwrite="[ -e '$FLAG' ] && touch '$LATER'; dd of='$F' bs=1M iflag=fullblock oflag=seek_bytes seek=\$4 conv=notrunc status=none" \
  flush="[ -e '$FLAG' ] && exit 0; touch '$FLAG'; echo 'EIO injected write-back failure' >&2; exit 1")
rc=0; "$VDKIT" convert "$SCRATCH/big.raw" "$uri" 2>"$SCRATCH/err" || rc=$?
check "a failed write-back flush fails the run: exit 1 (got $rc), names the flush ($(head -c 300 "$SCRATCH/err"))" \
  [ "$rc" -eq 1 ] && grep -q "flush" "$SCRATCH/err"
check "... the failing flush came before the end (a write followed it)" [ -e "$LATER" ]
check "... and is named as the write-back flush" grep -q "write-back flush" "$SCRATCH/err"
rec=$(grep -o 'resume record: [^)]*' "$SCRATCH/err" | cut -d' ' -f3)
check "... a resume record is kept ($rec)" [ -f "$rec" ]
rm -f "$rec"
stop evalwb
uri=$(serve file file "$SCRATCH/export.img")
check "-O qcow2 onto an nbdkit file export" "$VDKIT" convert -O qcow2 "$SRC" "$uri"
stop file
check "... qemu-img check is clean" qemu-img check -q -f qcow2 "$SCRATCH/export.img"
check "... guest view equal" same qcow2 "$SRC" "$SCRATCH/export.img" qcow2
uri=$(serve small memory $((SIZE - 4096)))
rc=0; "$VDKIT" convert "$SRC" "$uri" 2>"$SCRATCH/err" || rc=$?
check "an export smaller than the source: exit 1 (got $rc), names both sizes" [ "$rc" -eq 1 ] && grep -q "$((SIZE - 4096)) bytes.*$SIZE bytes" "$SCRATCH/err"
stop small
# qemu-nbd -f qcow2: raw conversion into the guest view of a qcow2, checked after the server stops.
qemu-img create -q -f qcow2 "$SCRATCH/guest.qcow2" $SIZE
qemu-nbd -f qcow2 -k "$SCRATCH/qn.sock" --pid-file="$SCRATCH/qn.pid" --fork --cache=none "$SCRATCH/guest.qcow2"
check "qemu-nbd -f qcow2 export" "$VDKIT" convert --output-json "$VMDK" "nbd+unix:///?socket=$SCRATCH/qn.sock" >"$SCRATCH/json"
check "... --output-json says nbd" grep -q '"target-kind": "nbd"' "$SCRATCH/json"
stop qn
check "... the qcow2 holds the source" qemu-img compare -q -f qcow2 -F qcow2 "$SRC" "$SCRATCH/guest.qcow2"
check "... and stays sparse ($(qemu-img info --output=json "$SCRATCH/guest.qcow2" | grep -o '"actual-size": [0-9]*'))" \
  [ "$(alloc_kib "$SCRATCH/guest.qcow2")" -le $((DATA_KIB + 1024)) ]
# qemu-nbd -e 4 caps connections at four and leaves a fifth waiting unanswered (it advertises multi-conn): vdkit
# must stay within the four it asks for, write-back flushes included, or it waits forever.
truncate -s $SIZE "$SCRATCH/capped.img"
qemu-nbd -e 4 --persistent -f raw -k "$SCRATCH/qc.sock" --pid-file="$SCRATCH/qc.pid" --fork "$SCRATCH/capped.img"
check "qemu-nbd -e 4, 96 MiB of random data: done within a minute" \
  timeout 60 "$VDKIT" convert "$SCRATCH/big.raw" "nbd+unix:///?socket=$SCRATCH/qc.sock"
stop qc
check "... same bytes" cmp -s "$SCRATCH/big.raw" "$SCRATCH/capped.img"
# qemu-nbd -e 2, as target and as source: a third connection gets no answer; vdkit gives up on it after 2 s.
truncate -s 0 "$SCRATCH/capped.img"
truncate -s $SIZE "$SCRATCH/capped.img"
qemu-nbd -e 2 --persistent -f raw -k "$SCRATCH/qc.sock" --pid-file="$SCRATCH/qc.pid" --fork "$SCRATCH/capped.img"
check "qemu-nbd -e 2 as the target: done within a minute" \
  timeout -k 5 60 "$VDKIT" convert "$SCRATCH/big.raw" "nbd+unix:///?socket=$SCRATCH/qc.sock"
stop qc
check "... same bytes" cmp -s "$SCRATCH/big.raw" "$SCRATCH/capped.img"
qemu-nbd -e 2 -r --persistent -f raw -k "$SCRATCH/qc.sock" --pid-file="$SCRATCH/qc.pid" --fork "$SCRATCH/big.raw"
check "qemu-nbd -e 2 as the source: done within a minute" \
  timeout -k 5 60 "$VDKIT" convert -O raw "nbd+unix:///?socket=$SCRATCH/qc.sock" "$SCRATCH/from-capped.raw"
stop qc
check "... same bytes" cmp -s "$SCRATCH/big.raw" "$SCRATCH/from-capped.raw"

# 6. Interrupted at random points (SIGINT or SIGKILL) with a throttled source, then --resume: the same bytes.
# A denser source (48 MiB of random data in 64 MiB), read by one worker, 100 ms a request: 2-4 s a run.
truncate -s 64M "$SCRATCH/dense.raw"
head -c $((32 << 20)) /dev/urandom | dd of="$SCRATCH/dense.raw" bs=1M seek=4 conv=notrunc status=none
head -c $((16 << 20)) /dev/urandom | dd of="$SCRATCH/dense.raw" bs=1M seek=48 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$SCRATCH/dense.raw" "$SCRATCH/dense.qcow2"
slow=$(serve slow --filter=delay file "$SCRATCH/dense.raw" rdelay=100ms)
RANDOM=${VDKIT_TEST_SEED:-$$}
echo "interrupt seed: ${VDKIT_TEST_SEED:-$$}"
for i in 1 2 3 4 5 6; do
  case $i in 1|4) kind=device fmt=raw ;; 2|5) kind=nbd fmt=raw ;; 3) kind=device fmt=qcow2 ;; 6) kind=nbd fmt=qcow2 ;; esac
  sigs=(INT TERM KILL)
  sig=${sigs[$((RANDOM % 3))]}
  # A qcow2 is laid out first (one whole read of the source): stop it later to land in its data too.
  extra=0; [ $fmt = qcow2 ] && extra=1
  # Drawn here, not inside $( ): a subshell reseeds RANDOM, and the seed must repeat a run.
  whole=$((RANDOM % 2 + extra)) tenths=$((3 + RANDOM % 7))
  delay=$whole.$tenths
  head -c $((64 << 20)) /dev/urandom >"$SCRATCH/r.img"
  if [ $kind = device ]; then tgt=$(loop_of "$SCRATCH/r.img"); else tgt=$(serve rt file "$SCRATCH/r.img"); fi
  state=$SCRATCH/resume-$i.json
  args=(--overwrite -O $fmt -j 1 --state "$state" --checkpoint-interval 0.2)
  "$VDKIT" convert "${args[@]}" "$slow" "$tgt" 2>"$SCRATCH/err" &
  pid=$!
  sleep "$delay"
  kill -"$sig" $pid 2>/dev/null || true
  rc=0; wait $pid 2>/dev/null || rc=$?
  what="interrupt $i ($kind, $fmt, SIG$sig after ${delay}s)"
  if [ "$rc" -eq 0 ]; then
    pass "$what: finished before the signal"
  elif grep -q "nothing was written" "$SCRATCH/err"; then
    # Stopped while a qcow2 was still being laid out: nothing to resume, and no record left.
    check "$what: stopped before writing, no record left" [ ! -e "$state" ]
    check "$what: a new run finishes" "$VDKIT" convert "${args[@]}" "$slow" "$tgt"
  else
    if [ $sig != KILL ]; then
      check "$what: says the target was left partly written ($(cat "$SCRATCH/err"))" grep -q "left partly written.*--resume" "$SCRATCH/err"
    fi
    check "$what: a resume record is kept (at $(grep -o '"flushed-offset": [0-9]*' "$state" 2>/dev/null))" [ -s "$state" ]
    check "$what: --resume finishes" "$VDKIT" convert "${args[@]}" --resume "$slow" "$tgt"
    check "$what: the record is removed" [ ! -e "$state" ]
  fi
  if [ $kind = device ]; then detach "$tgt"; else stop rt; fi
  check "$what: same bytes as the source" same qcow2 "$SCRATCH/dense.qcow2" "$SCRATCH/r.img" $fmt
done
# A changed source is refused on --resume.
head -c $((64 << 20)) /dev/urandom >"$SCRATCH/r.img"
tgt=$(loop_of "$SCRATCH/r.img")
"$VDKIT" convert --overwrite -j 1 --state "$SCRATCH/ch.json" --checkpoint-interval 0.2 "$slow" "$tgt" 2>/dev/null &
pid=$!; sleep 0.6; kill -INT $pid; wait $pid || true
stop slow
cp "$SCRATCH/dense.raw" "$SCRATCH/changed.raw"
printf 'X' | dd of="$SCRATCH/changed.raw" bs=1 seek=100 conv=notrunc status=none
rc=0; "$VDKIT" convert --overwrite --resume --state "$SCRATCH/ch.json" "$SCRATCH/changed.raw" "$tgt" 2>"$SCRATCH/err" || rc=$?
check "--resume with a changed source: exit 1 (got $rc), says it changed" [ "$rc" -eq 1 ] && grep -q "source changed" "$SCRATCH/err"
rc=0; "$VDKIT" convert --overwrite --resume --state "$SCRATCH/none.json" "$SRC" "$tgt" 2>"$SCRATCH/err" || rc=$?
check "--resume without a record: exit 1 (got $rc)" [ "$rc" -eq 1 ]
detach "$tgt"
check "sources unchanged" [ "$src_sum" = "$(sum_of "$SRC" "$VMDK")" ]
check "no resume record left behind by the runs that completed" [ -z "$(find "$XDG_STATE_HOME" -type f 2>/dev/null)" ]
finish
