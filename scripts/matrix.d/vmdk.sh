# VMDK images for the read matrix (sourced by scripts/make-matrix with OUT, BASE and `add`): every createType
# qemu-img writes, hand-written descriptors qemu-img also reads (odd split sparse/flat extents, VMFS, CRLF with
# comments and quoted names), a capacity that is not a multiple of the grain, a zeroed grain, and snapshot deltas.
# Descriptors qemu-img cannot read (ZERO extents, vmfsThin, seSparse) are covered by tests/integration/test_vmdk_*.sh.
vd=$OUT/vmdk
mkdir -p "$vd"

for sub in monolithicSparse streamOptimized twoGbMaxExtentSparse monolithicFlat twoGbMaxExtentFlat; do
  mkdir -p "$vd/$sub"
  qemu-img convert -q -O vmdk -o subformat=$sub "$BASE" "$vd/$sub/vmdk-$sub.vmdk"
  add "vmdk-$sub" "$vd/$sub/vmdk-$sub.vmdk" vmdk
done

# streamOptimized as VMware writes it: the header's gdOffset is GD_AT_END (0xffffffffffffffff) and the real header
# follows in the footer (footer marker, header copy, end-of-stream marker). qemu-img writes the GD offset in the
# header, so move it to a footer here; qemu-img reads both.
python3 - "$vd/streamOptimized/vmdk-streamOptimized.vmdk" "$vd/vmdk-streamOptimized-footer.vmdk" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
data += bytes(-len(data) % 512)
header = bytes(data[:512])
data += struct.pack("<QII", 1, 0, 3).ljust(512, b"\0") + header + bytes(512)
data[56:64] = struct.pack("<Q", 0xFFFFFFFFFFFFFFFF)
open(sys.argv[2], "wb").write(data)
PY
add vmdk-streamOptimized-footer "$vd/vmdk-streamOptimized-footer.vmdk" vmdk

# Another adapter and hardware version in the descriptor (qemu-img fixes the grain at 64 KiB).
qemu-img convert -q -O vmdk -o subformat=monolithicSparse,adapter_type=lsilogic,hwversion=6 "$BASE" \
  "$vd/vmdk-monolithicSparse-lsilogic.vmdk"
add vmdk-monolithicSparse-lsilogic "$vd/vmdk-monolithicSparse-lsilogic.vmdk" vmdk

# A capacity that is not a multiple of the 64 KiB grain: 24 MiB + 3 sectors.
cp --sparse=always "$BASE" "$vd/odd.raw"
truncate -s $(((24 << 20) + 1536)) "$vd/odd.raw"
printf 'odd tail' | dd of="$vd/odd.raw" bs=1 seek=$(((24 << 20) + 1000)) conv=notrunc status=none
for sub in monolithicSparse streamOptimized; do
  qemu-img convert -q -O vmdk -o subformat=$sub "$vd/odd.raw" "$vd/vmdk-$sub-oddsize.vmdk"
  add "vmdk-$sub-oddsize" "$vd/vmdk-$sub-oddsize.vmdk" vmdk
done
rm -f "$vd/odd.raw"

# Zeroed grains (GTE = 1): write -z on an image made with zeroed_grain=on.
qemu-img convert -q -O vmdk -o subformat=monolithicSparse,zeroed_grain=on "$BASE" "$vd/vmdk-zeroed-grain.vmdk"
qemu-io -f vmdk -c 'write -z 0 1M' -c 'write -z 2M 192k' "$vd/vmdk-zeroed-grain.vmdk" >/dev/null
add vmdk-zeroed-grain "$vd/vmdk-zeroed-grain.vmdk" vmdk

# A VMware snapshot chain: base <- delta1 <- delta2, each delta writing its own data (relative parent names).
mkdir -p "$vd/snap"
(
  cd "$vd/snap"
  qemu-img convert -q -O vmdk -o subformat=monolithicSparse "$BASE" snap-base.vmdk
  qemu-img create -q -f vmdk -b snap-base.vmdk -F vmdk snap-delta1.vmdk 24M
  qemu-io -f vmdk -c 'write -P 0x77 1M 300k' -c 'write -P 0x33 10M 64k' -c 'write -P 0x44 23M 4k' \
    snap-delta1.vmdk >/dev/null
  qemu-img create -q -f vmdk -b snap-delta1.vmdk -F vmdk snap-delta2.vmdk 24M
  qemu-io -f vmdk -c 'write -P 0x99 1100k 100k' -c 'write -P 0x55 16M 1M' snap-delta2.vmdk >/dev/null
)
# A snapshot over a streamOptimized parent (compressed grains below, plain grains above).
(
  cd "$vd/snap"
  qemu-img convert -q -O vmdk -o subformat=streamOptimized "$BASE" snap-stream-base.vmdk
  qemu-img create -q -f vmdk -b snap-stream-base.vmdk -F vmdk snap-stream-delta.vmdk 24M
  qemu-io -f vmdk -c 'write -P 0x21 3M 200k' -c 'write -P 0x22 12M 4k' snap-stream-delta.vmdk >/dev/null
)
add vmdk-snapshot-over-streamOptimized "$vd/snap/snap-stream-delta.vmdk" vmdk
add vmdk-snapshot-delta1 "$vd/snap/snap-delta1.vmdk" vmdk
add vmdk-snapshot-delta2 "$vd/snap/snap-delta2.vmdk" vmdk

# Hand-written descriptors over slices of base.raw. Slices: 5 MiB, 7 MiB, the remaining 12 MiB.
mkdir -p "$vd/split"
dd if="$BASE" of="$vd/split/s1.raw" bs=1M count=5 status=none
dd if="$BASE" of="$vd/split/s2.raw" bs=1M skip=5 count=7 status=none
dd if="$BASE" of="$vd/split/s3.raw" bs=1M skip=12 status=none
for k in 1 2 3; do
  qemu-img convert -q -O vmdk -o subformat=monolithicSparse "$vd/split/s$k.raw" "$vd/split/sparse-$k.vmdk"
done
cat > "$vd/split/vmdk-split-sparse-odd.vmdk" <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="twoGbMaxExtentSparse"

# Extent description: split sparse extents of 5, 7 and 12 MiB
RW 10240 SPARSE "sparse-1.vmdk"
RW 14336 SPARSE "sparse-2.vmdk"
RW 24576 SPARSE "sparse-3.vmdk"

ddb.virtualHWVersion = "4"
ddb.adapterType = "ide"
EOF
add vmdk-split-sparse-odd "$vd/split/vmdk-split-sparse-odd.vmdk" vmdk

# Flat extents of odd sizes, one at a nonzero offset inside its file (1 MiB of junk first).
head -c 1048576 /dev/urandom > "$vd/split/flat-2.bin"
cat "$vd/split/s2.raw" >> "$vd/split/flat-2.bin"
cp "$vd/split/s1.raw" "$vd/split/flat-1.bin"
cp "$vd/split/s3.raw" "$vd/split/flat-3.bin"
cat > "$vd/split/vmdk-split-flat-odd.vmdk" <<'EOF'
# Disk DescriptorFile
version=1
CID=2345abcd
parentCID=ffffffff
createType="twoGbMaxExtentFlat"
RW 10240 FLAT "flat-1.bin" 0
RW 14336 FLAT "flat-2.bin" 2048
RW 24576 FLAT "flat-3.bin" 0
EOF
add vmdk-split-flat-odd "$vd/split/vmdk-split-flat-odd.vmdk" vmdk

# An ESX "vmfs" descriptor over one flat file.
cp --sparse=always "$BASE" "$vd/split/esx-flat.vmdk"
cat > "$vd/split/vmdk-vmfs.vmdk" <<'EOF'
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW 49152 VMFS "esx-flat.vmdk"

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "13"
EOF
add vmdk-vmfs "$vd/split/vmdk-vmfs.vmdk" vmdk

# CRLF line ends, comments, blank lines and a quoted file name with spaces (qemu-img needs key="value" with
# no spaces; the looser spellings VMware accepts are in tests/integration/test_vmdk_descriptors.sh).
cp --sparse=always "$BASE" "$vd/split/my disk-flat.vmdk"
printf '%s\r\n' '# Disk DescriptorFile' '# written by hand, with CRLF' 'version=1' 'encoding="UTF-8"' \
  'CID=0badcafe' 'parentCID=ffffffff' '' 'createType="monolithicFlat"' '# Extent description' \
  'RW 49152 FLAT "my disk-flat.vmdk" 0' '' 'ddb.adapterType = "buslogic"' > "$vd/split/vmdk-crlf-quoted.vmdk"
add vmdk-crlf-quoted "$vd/split/vmdk-crlf-quoted.vmdk" vmdk
rm -f "$vd"/split/s?.raw
