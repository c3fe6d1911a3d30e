#!/usr/bin/env bash
# vdkit convert with sources and targets that cannot seek: streamOptimized VMDK and raw on stdin, NBD exports from
# nbdkit and qemu-nbd, raw and qcow2 written to a pipe. Checked with qemu-img compare and qemu-img check.
source "$(dirname "$0")/lib.sh"
make_matrix
src() { grep -P "^$1\t" "$MATRIX/manifest.tsv" | cut -f2; }
base=$(src raw)
same() { qemu-img compare -q "$1" "$2"; }
clean_qcow2() { qemu-img check -q "$1"; }

# streamOptimized VMDK on stdin, to raw and to (compressed) qcow2.
for name in vmdk-streamOptimized vmdk-streamOptimized-oddsize; do
  s=$(src "$name")
  rm -f "$SCRATCH/o.raw" "$SCRATCH/o.qcow2"
  check "cat $name | vdkit convert - out.raw" bash -c "cat '$s' | '$VDKIT' convert - '$SCRATCH/o.raw'"
  check "$name from stdin reads as the source (raw)" same "$s" "$SCRATCH/o.raw"
  check "cat $name | vdkit convert -O qcow2 -c - out.qcow2" \
    bash -c "cat '$s' | '$VDKIT' convert -O qcow2 -c - '$SCRATCH/o.qcow2'"
  check "$name from stdin reads as the source (qcow2 -c)" same "$s" "$SCRATCH/o.qcow2"
  check "$name from stdin: qcow2 target is clean" clean_qcow2 "$SCRATCH/o.qcow2"
done

# A raw stream on stdin keeps its holes in a raw file target, and to qcow2.
rm -f "$SCRATCH/o.raw" "$SCRATCH/o.qcow2"
check "cat base.raw | vdkit convert - out.raw" bash -c "cat '$base' | '$VDKIT' convert - '$SCRATCH/o.raw'"
check "raw stdin reads back byte for byte" cmp "$base" "$SCRATCH/o.raw"
sync "$SCRATCH/o.raw"
check "raw stdin target is sparse" [ "$(($(stat -c %b "$SCRATCH/o.raw") * 512))" -lt "$(stat -c %s "$base")" ]
check "cat base.raw | vdkit convert -O qcow2 - out.qcow2" \
  bash -c "cat '$base' | '$VDKIT' convert -O qcow2 - '$SCRATCH/o.qcow2'"
check "raw stdin to qcow2 reads as the source" same "$base" "$SCRATCH/o.qcow2"
check "raw stdin to qcow2 is clean" clean_qcow2 "$SCRATCH/o.qcow2"

# A stdin source with a qcow2 stdout target is refused with the reason.
err=$(cat "$base" | "$VDKIT" convert -O qcow2 - - 2>&1 >/dev/null) && rc=0 || rc=$?
check "stdin source + qcow2 stdout target exits 1" [ "$rc" -eq 1 ]
check "... and says why (two passes)" grep -q "two passes" <<<"$err"

# Targets on a pipe: raw streams in order; qcow2 is laid out in advance (plain, zlib, zstd, 512-byte clusters).
for name in raw qcow2-zlib vmdk-monolithicSparse vmdk-snapshot-delta2; do
  s=$(src "$name")
  check "$name -> raw on a pipe" bash -c "'$VDKIT' convert '$s' - | cat > '$SCRATCH/p.raw'"
  check "$name -> raw on a pipe reads as the source" same "$s" "$SCRATCH/p.raw"
  for opts in "" "-c" "-c --compression zstd" "--cluster-size 512"; do
    # shellcheck disable=SC2086
    check "$name -> qcow2 $opts on a pipe" bash -c "'$VDKIT' convert -O qcow2 $opts '$s' - | cat > '$SCRATCH/p.qcow2'"
    check "$name -> qcow2 $opts on a pipe: qemu-img check is clean" clean_qcow2 "$SCRATCH/p.qcow2"
    check "$name -> qcow2 $opts on a pipe reads as the source" same "$s" "$SCRATCH/p.qcow2"
  done
  rm -f "$SCRATCH/p.raw" "$SCRATCH/p.qcow2"
done

# NBD sources: nbdkit's file plugin (block status from SEEK_DATA) and qemu-nbd serving a qcow2.
rm -f "$SCRATCH/o.raw" "$SCRATCH/o.qcow2"
check "nbdkit file export -> raw" nbdkit -U - file "$base" --run "'$VDKIT' convert \"\$uri\" '$SCRATCH/o.raw'"
check "nbdkit export converts byte for byte" cmp "$base" "$SCRATCH/o.raw"
sync "$SCRATCH/o.raw"
check "nbdkit export: holes stayed holes (block status used)" \
  [ "$(($(stat -c %b "$SCRATCH/o.raw") * 512))" -lt $((8 << 20)) ]
q=$(src qcow2-zlib)
sock=$SCRATCH/qemu-nbd.sock
qemu-nbd -t -k "$sock" -r -f qcow2 "$q" &
qpid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
check "qemu-nbd export -> qcow2 -c" "$VDKIT" convert -O qcow2 -c "nbd+unix:///?socket=$sock" "$SCRATCH/o.qcow2"
check "qemu-nbd export converts to what qemu-img reads" same "$q" "$SCRATCH/o.qcow2"
check "qemu-nbd export -> qcow2 is clean" clean_qcow2 "$SCRATCH/o.qcow2"
check "qemu-nbd export -> qcow2 on a pipe (two passes over NBD)" \
  bash -c "'$VDKIT' convert -O qcow2 'nbd+unix:///?socket=$sock' - | cat > '$SCRATCH/p.qcow2'"
check "... reads as the source" same "$q" "$SCRATCH/p.qcow2"
check "... is clean" clean_qcow2 "$SCRATCH/p.qcow2"
kill "$qpid" 2>/dev/null || true
wait "$qpid" 2>/dev/null || true
leftover=$(find "$SCRATCH" -name '*.vdkit-tmp.*' | wc -l)
check "no temporary files left" [ "$leftover" -eq 0 ]
finish
