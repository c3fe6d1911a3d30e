#!/usr/bin/env bash
# VMDK descriptors qemu-img cannot read but VMware writes: ZERO extents, vmfsThin, RDONLY extents, keys and types in
# any case with loose spacing, CRLF. Bytes are compared with the slices they were made from. Also: extent paths
# outside the image's folder need --allow-external-paths, a parentCID mismatch and COWD extents are refused.
source "$(dirname "$0")/lib.sh"
D=$SCRATCH/d
mkdir -p "$D/sub"
python3 - "$D/r.raw" <<'PY'
import random, sys
r = random.Random(99)
open(sys.argv[1], "wb").write(bytes(r.getrandbits(8) for _ in range(4 << 20)))
PY
before=$(sum_of "$D/r.raw")
# Expected: r[0:2M] + 1 MiB of zeros + r[2M:4M].
{ head -c 2097152 "$D/r.raw"; head -c 1048576 /dev/zero; tail -c 2097152 "$D/r.raw"; } > "$D/want.raw"

quiet() { "$@" >/dev/null; }
# read_as NAME IMAGE [READCHECK OPTIONS]: reads through both I/O engines and compares with want.raw.
read_as() {
  local name=$1 img=$2; shift 2
  for io in uring sync; do
    rm -f "$SCRATCH/out.raw"
    if VDKIT_IO=$io "$READCHECK" "$@" --threads 2 --random-chunks 5 "$img" "$SCRATCH/out.raw" &&
      cmp -s "$D/want.raw" "$SCRATCH/out.raw"; then
      pass "$name reads as the slices it was made from ($io)"
    else
      fail "$name reads wrongly ($io)"
    fi
  done
}

cat > "$D/thin.vmdk" <<'EOF'
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfsThin"

# Extent description: a VMFS extent without offset, a ZERO extent, a read-only flat extent at an offset
RW 4096 VMFS "r.raw"
RW 2048 ZERO
RDONLY 4096 FLAT "r.raw" 4096

ddb.adapterType = "lsilogic"
ddb.thinProvisioned = "1"
EOF
read_as "vmfsThin with a ZERO extent" "$D/thin.vmdk"
zero=$("$VDKIT" map --output=json "$D/thin.vmdk" |
  python3 -c 'import json,sys; print([(e["start"], e["length"]) for e in json.load(sys.stdin) if e["zero"] and not e["data"]])')
check "the ZERO extent maps as zero ($zero)" [ "$zero" = "[(2097152, 1048576)]" ]
info=$("$VDKIT" info --output=json "$D/thin.vmdk" |
  python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["subformat"], j["virtual-size"], j["format-specific"]["adapter-type"])')
check "info: $info" [ "$info" = "vmfsThin 5242880 lsilogic" ]

# Loose spelling: CRLF, keys in other cases, spaces and tabs around '=', lower-case access and types.
printf '%s\r\n' '# Disk DescriptorFile' 'Version = 1' 'cid =  0badcafe' 'PARENTCID=ffffffff' \
  'createtype   =	"monolithicFlat"' '  # an indented comment' '' 'rw 4096 flat "r.raw" 0' 'Rw	2048	Zero' \
  'rdonly 4096 Flat "r.raw" 4096' > "$D/loose.vmdk"
read_as "a CRLF descriptor with loose spelling" "$D/loose.vmdk"
sub=$("$VDKIT" info --output=json "$D/loose.vmdk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format-specific"]["cid"])')
check "loose descriptor: CID read as 0badcafe ($sub)" [ "$sub" = "0badcafe" ]

# Extents outside the image's folder.
sed 's|"r.raw"|"../r.raw"|' "$D/thin.vmdk" > "$D/sub/outside.vmdk"
set +e
msg=$("$VDKIT" info "$D/sub/outside.vmdk" 2>&1 >/dev/null); rc=$?
set -e
check "an extent in ../ is refused with exit 1 ($rc)" [ "$rc" -eq 1 ]
check "the refusal says how to allow it: $msg" grep -q -- "--allow-external-paths" <<<"$msg"
read_as "an extent in ../ with --allow-external-paths" "$D/sub/outside.vmdk" --allow-external-paths
check "vdkit info --allow-external-paths opens it" quiet "$VDKIT" info --allow-external-paths "$D/sub/outside.vmdk"

# A snapshot whose parentCID does not match its parent's CID (the parent changed after the snapshot).
qemu-img convert -q -O vmdk -o subformat=monolithicSparse "$D/r.raw" "$D/parent.vmdk"
qemu-img create -q -f vmdk -b parent.vmdk -F vmdk "$D/child.vmdk" 4M
check "the child opens while its parentCID matches" quiet "$VDKIT" info "$D/child.vmdk"
qemu-io -f vmdk -c 'write -P 1 0 4k' "$D/parent.vmdk" >/dev/null   # changes the parent's CID
set +e
msg=$("$VDKIT" info "$D/child.vmdk" 2>&1 >/dev/null); rc=$?
set -e
check "a parentCID mismatch is refused with exit 1 ($rc)" [ "$rc" -eq 1 ]
check "the refusal names parentCID: $msg" grep -q "parentCID .* does not match the CID" <<<"$msg"

# A vmfsSparse descriptor whose extent is a COWD (ESX 2.x) file: refused, naming COWD.
printf 'COWD\1\0\0\0' > "$D/cowd-delta.vmdk"
truncate -s 4096 "$D/cowd-delta.vmdk"
printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="vmfsSparse"\nRW 8192 VMFSSPARSE "cowd-delta.vmdk"\n' \
  > "$D/cowd.vmdk"
set +e
msg=$("$VDKIT" info "$D/cowd.vmdk" 2>&1 >/dev/null); rc=$?
set -e
check "a COWD extent is refused with exit 1 ($rc): $msg" [ "$rc" -eq 1 ]
check "the refusal names COWD" grep -q COWD <<<"$msg"

check "the source files were not modified" [ "$(sum_of "$D/r.raw")" = "$before" ]
finish
