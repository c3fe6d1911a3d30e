#!/usr/bin/env bash
# vdkit convert on every matrix image into raw, qcow2, qcow2 -c zlib and qcow2 -c zstd: qemu-img compare says the
# target reads as the source, qemu-img check is clean, and the target never takes more disk than qemu-img convert's.
source "$(dirname "$0")/lib.sh"
make_matrix
# Allocated bytes once the file system has settled its delayed allocations (both files flushed alike).
alloc() { sync "$1"; echo $(($(stat -c %b "$1") * 512)); }
# variant NAME: "vdkit options" | "qemu-img options"
variants=(
  "raw|-O raw|-O raw"
  "qcow2|-O qcow2|-O qcow2"
  "qcow2-zlib|-O qcow2 -c|-O qcow2 -c"
  "qcow2-zstd|-O qcow2 -c --compression zstd|-O qcow2 -c -o compression_type=zstd"
)
before=$(cut -f2 "$MATRIX/manifest.tsv" | xargs sha256sum | sha256sum)
while IFS=$'\t' read -r name path fmt; do
  if ! qemu-img info "$path" >/dev/null 2>&1; then
    echo "note: qemu-img cannot read $name; skipped here"
    continue
  fi
  for v in "${variants[@]}"; do
    IFS='|' read -r vname vopts qopts <<<"$v"
    out=$SCRATCH/out.$vname
    ref=$SCRATCH/ref.$vname
    rm -f "$out" "$ref"
    # shellcheck disable=SC2086
    if ! "$VDKIT" convert $vopts "$path" "$out" 2>"$SCRATCH/err"; then
      fail "$name -> $vname: vdkit convert failed: $(cat "$SCRATCH/err")"
      continue
    fi
    tfmt=raw
    [ "$vname" != raw ] && tfmt=qcow2
    if qemu-img compare -q -f "$fmt" -F "$tfmt" "$path" "$out"; then
      pass "$name -> $vname reads as the source (qemu-img compare)"
    else
      fail "$name -> $vname differs from the source (qemu-img compare)"
    fi
    if [ "$tfmt" = qcow2 ]; then
      check "$name -> $vname: qemu-img check is clean" qemu-img check -q "$out"
    fi
    # shellcheck disable=SC2086
    qemu-img convert $qopts -f "$fmt" "$path" "$ref"
    a=$(alloc "$out")
    b=$(alloc "$ref")
    check "$name -> $vname: $a allocated bytes <= qemu-img's $b" [ "$a" -le "$b" ]
    rm -f "$out" "$ref"
  done
done <"$MATRIX/manifest.tsv"
# --compression-level: the fastest and the smallest zlib levels both read as the source; the smallest is no larger.
IFS=$'\t' read -r name path fmt < <(grep -m1 -P '\traw$' "$MATRIX/manifest.tsv")
for lvl in 1 12; do
  check "$name -> qcow2 -c --compression-level $lvl" "$VDKIT" convert -O qcow2 -c --compression-level $lvl "$path" \
    "$SCRATCH/lvl$lvl.qcow2"
  check "level $lvl reads as the source" qemu-img compare -q -f "$fmt" -F qcow2 "$path" "$SCRATCH/lvl$lvl.qcow2"
done
check "level 12 is no larger than level 1" [ "$(alloc "$SCRATCH/lvl12.qcow2")" -le "$(alloc "$SCRATCH/lvl1.qcow2")" ]
expect_usage() { "$VDKIT" convert "$@" "$path" "$SCRATCH/bad.qcow2" 2>/dev/null; [ $? = 2 ] && [ ! -e "$SCRATCH/bad.qcow2" ]; }
check "a zlib level above 12 is a usage error" expect_usage -O qcow2 -c --compression-level 13
check "a level without -c is a usage error" expect_usage -O qcow2 --compression-level 3
after=$(cut -f2 "$MATRIX/manifest.tsv" | xargs sha256sum | sha256sum)
check "no source image changed" [ "$before" = "$after" ]
leftover=$(find "$SCRATCH" -name '*.vdkit-tmp.*' | wc -l)
check "no temporary files left" [ "$leftover" -eq 0 ]
finish
