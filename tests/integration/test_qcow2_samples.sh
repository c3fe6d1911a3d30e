#!/usr/bin/env bash
# The real qcow2 images in ../shared/samples (see SOURCES.md there) read as SOURCES.md says: dissect's zlib/zstd
# images, the external data file pair, the three-level backing chain, the snapshot image, and plaso's ext2 image.
source "$(dirname "$0")/lib.sh"
[ -d "$VDKIT_SAMPLES" ] || skip "no samples folder at $VDKIT_SAMPLES"
S=$SCRATCH/samples
mkdir -p "$S"
# unpack NAME.gz AS: gunzip into the scratch folder, keeping runs of zeros sparse.
unpack() { gunzip -c "$VDKIT_SAMPLES/$1" | cp --sparse=always /dev/stdin "$S/$2"; }
unpack dissect-basic.qcow2.gz basic.qcow2
unpack dissect-basic-zstd.qcow2.gz basic-zstd.qcow2
unpack dissect-data-file.qcow2.gz data-file.qcow2
unpack dissect-data-file.bin.gz data-file.bin   # the qcow2 names its data file data-file.bin
for i in 1 2 3; do unpack "dissect-backing-chain-$i.qcow2.gz" "backing-chain-$i.qcow2"; done
unpack dissect-snapshot.qcow2.gz snapshot.qcow2
cp "$VDKIT_SAMPLES/plaso-ext2.qcow2" "$S/"
before=$(sum_of "$S"/*)

# read_raw IMAGE OUT: the image's bytes as vdkit reads them.
read_raw() { "$READCHECK" --threads 2 "$1" "$2"; }

# MiB i of a 512 MiB image holds byte value i for i in 0..254.
check_mib_pattern() {
  python3 - "$1" <<'PY'
import sys
with open(sys.argv[1], "rb") as f:
    for i in range(255):
        f.seek(i << 20)
        b = f.read(1 << 20)
        if len(b) != 1 << 20 or b.count(bytes([i])) != len(b):
            sys.exit("MiB %d is not filled with byte %d" % (i, i))
PY
}
for img in basic basic-zstd data-file; do
  if read_raw "$S/$img.qcow2" "$SCRATCH/out.raw" && check_mib_pattern "$SCRATCH/out.raw"; then
    pass "$img.qcow2: MiB i holds byte i (0..254)"
  else
    fail "$img.qcow2 does not read as MiB i = byte i"
  fi
  rm -f "$SCRATCH/out.raw"
done
got=$("$VDKIT" info --output=json "$S/basic-zstd.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["compression"])')
check "basic-zstd.qcow2: info says zstd compression" [ "$got" = zstd ]
got=$("$VDKIT" info --output=json "$S/data-file.qcow2" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["files"][0].endswith("data-file.bin"))')
check "data-file.qcow2: info lists data-file.bin" [ "$got" = True ]

# Each of the first five MiB, stripped of NUL bytes, as SOURCES.md lists them.
check_chain() {
  python3 - "$@" <<'PY'
import sys
path, want = sys.argv[1], sys.argv[2:]
with open(path, "rb") as f:
    for i, w in enumerate(want):
        f.seek(i << 20)
        got = f.read(1 << 20).replace(b"\0", b"").decode("ascii", "replace")
        if got != w:
            sys.exit("MiB %d reads %r, expected %r" % (i, got, w))
PY
}
declare -A CHAIN
CHAIN[3]='Something here|Something here too|Something here three||'
CHAIN[2]='Nothing here|Something here too|Something here three|Something here four|'
CHAIN[1]='Nothing here|Nothing here two|Something here three|Something here four|Something here five'
for i in 3 2 1; do
  IFS='|' read -r -a want <<< "${CHAIN[$i]}|"
  if read_raw "$S/backing-chain-$i.qcow2" "$SCRATCH/out.raw" && check_chain "$SCRATCH/out.raw" "${want[@]:0:5}"; then
    pass "backing-chain-$i.qcow2 reads as SOURCES.md says"
  else
    fail "backing-chain-$i.qcow2 reads differently from SOURCES.md"
  fi
  rm -f "$SCRATCH/out.raw"
done
got=$("$VDKIT" info --backing-chain --output=json "$S/backing-chain-1.qcow2" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "backing-chain-1.qcow2: info --backing-chain shows three images" [ "$got" = 3 ]

# The snapshot image: the active layer's first 4 MiB are zeros; info counts the snapshots qemu-img lists.
if read_raw "$S/snapshot.qcow2" "$SCRATCH/out.raw" &&
  python3 -c 'import sys; b=open(sys.argv[1],"rb").read(4<<20); sys.exit(0 if len(b)==4<<20 and b.count(0)==len(b) else 1)' "$SCRATCH/out.raw"
then pass "snapshot.qcow2: the active layer's first 4 MiB are zeros"
else fail "snapshot.qcow2: the active layer's first 4 MiB are not zeros"
fi
rm -f "$SCRATCH/out.raw"
want=$(qemu-img info --output=json "$S/snapshot.qcow2" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("snapshots", [])))')
got=$("$VDKIT" info --output=json "$S/snapshot.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format-specific"]["snapshots"])')
check "snapshot.qcow2: $got snapshots, as qemu-img lists ($want)" [ "$got" = "$want" ]

# plaso's compat=0.10 image: bytes as qemu-img reads them, and the ext2 file system in it is sound and holds its files.
qemu_raw "$S/plaso-ext2.qcow2" "$SCRATCH/ref.raw"
if read_raw "$S/plaso-ext2.qcow2" "$SCRATCH/out.raw" && cmp -s "$SCRATCH/ref.raw" "$SCRATCH/out.raw"; then
  pass "plaso-ext2.qcow2 reads as qemu-img reads it"
else
  fail "plaso-ext2.qcow2 reads differently from qemu-img"
fi
quiet() { "$@" >/dev/null 2>&1; }
check "plaso-ext2.qcow2: e2fsck finds the ext2 file system clean" quiet e2fsck -fn "$SCRATCH/out.raw"
listing=$(debugfs -R 'ls -p /' "$SCRATCH/out.raw" 2>/dev/null || true)
check "plaso-ext2.qcow2: passwords.txt is in the root folder" grep -q '/passwords.txt/' <<< "$listing"
sub=$(debugfs -R 'ls -p /a_directory' "$SCRATCH/out.raw" 2>/dev/null || true)
check "plaso-ext2.qcow2: a_directory/another_file exists" grep -q '/another_file/' <<< "$sub"

check "the samples were not modified" [ "$(sum_of "$S"/*)" = "$before" ]
finish
