#!/usr/bin/env bash
# Every image of the matrix reads byte for byte as `qemu-img convert -O raw` reads it, through both I/O engines;
# zero/hole extents read as zeros; `vdkit info` agrees with `qemu-img info` on virtual size and format.
source "$(dirname "$0")/lib.sh"
make_matrix
while IFS=$'\t' read -r name path fmt; do
  ref=$SCRATCH/ref.raw
  qemu_raw "$path" "$ref"
  for io in uring sync; do
    out=$SCRATCH/out.raw
    if VDKIT_IO=$io "$READCHECK" --threads 2 --random-chunks 42 "$path" "$out" && cmp -s "$ref" "$out"; then
      pass "$name reads as qemu-img reads it ($io)"
    else
      fail "$name reads differently from qemu-img ($io)"
    fi
    rm -f "$out"
  done
  want_size=$(qemu-img info --output=json "$path" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  want_fmt=$(qemu-img info --output=json "$path" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')
  got=$("$VDKIT" info --output=json "$path" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["virtual-size"], j["format"])')
  check "$name: vdkit info says $want_size $want_fmt" [ "$got" = "$want_size $want_fmt" ]
  rm -f "$ref"
done < "$MATRIX/manifest.tsv"
finish
