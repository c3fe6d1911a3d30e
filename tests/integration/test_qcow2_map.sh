#!/usr/bin/env bash
# qcow2 extents against qemu-img: on every qcow2 image of the matrix (tops, chain members, data-file images), the
# ranges `vdkit map` calls data are the ranges `qemu-img map` calls data, every zero/hole range reads as zeros in
# `qemu-img convert -O raw` output, and vdkit reads the same bytes (data-file images through both I/O engines).
source "$(dirname "$0")/lib.sh"
make_matrix
source "$(dirname "$0")/map_lib.sh"

images=("$MATRIX"/qcow2/*.qcow2 "$MATRIX"/qcow2-over-raw.qcow2)
for img in "${images[@]}"; do
  name=${img#"$MATRIX"/}
  dir=$(dirname "$img")
  base=$(basename "$img")
  ref=$SCRATCH/ref.raw
  # qemu-img opens a relative data-file name from its working directory; vdkit from the image's folder.
  (cd "$dir" && qemu-img convert -O raw "$base" "$ref" && qemu-img map --output=json "$base" > "$SCRATCH/qemu.json")
  if "$VDKIT" map --output=json "$img" > "$SCRATCH/ours.json" &&
    compare_maps "$SCRATCH/ours.json" "$SCRATCH/qemu.json" "$ref"; then
    pass "$name: vdkit map agrees with qemu-img map, zero/hole ranges read as zeros"
  else
    fail "$name: vdkit map disagrees with qemu-img map"
  fi
  engines=(uring)
  case $base in datafile*) engines=(uring sync) ;; esac
  for io in "${engines[@]}"; do
    if VDKIT_IO=$io "$READCHECK" --threads 2 --random-chunks 7 "$img" "$SCRATCH/out.raw" && cmp -s "$ref" "$SCRATCH/out.raw"
    then pass "$name reads as qemu-img reads it ($io)"
    else fail "$name reads differently from qemu-img ($io)"
    fi
  done
  rm -f "$ref" "$SCRATCH/out.raw"
done
finish
