#!/usr/bin/env bash
# VHDX against its peers: qemu-img's vhdx images (dynamic and fixed, 1 MiB to 32 MiB blocks) read the same through
# vdkit as through qemu-img and vhdimount (libvhdi); a differencing VHDX from tests/tools/vhdxgen.py (written from
# the specification; qemu-img cannot) reads as the raw disk it was made from, and as libvhdi reads it. Then the
# header pair, the region table copy, a log that needs replaying, the parent linkage and hostile BAT entries.
# A log left pending by qemu itself (blkdebug fails its write of the BAT after the log entry is on disk) is replayed
# in memory: vdkit reads what qemu-img reads after `qemu-img check -r all` replays a copy, and the file is unchanged.
# Run time: about 25 seconds.
source "$(dirname "$0")/lib.sh"
command -v qemu-img >/dev/null || skip "qemu-img is not installed"
VHDXGEN="python3 $VDKIT_SRC/tests/tools/vhdxgen.py"
cd "$SCRATCH"
have_vhdi=1
command -v vhdimount >/dev/null && [ -e /dev/fuse ] || have_vhdi=0
vhdi_raw() {  # IMAGE OUT: the disk as libvhdi's FUSE view shows it (the top of a chain is the last vhdiN)
  local mnt=$SCRATCH/vhdi-mnt
  mkdir -p "$mnt"
  (cd "$(dirname "$1")" && vhdimount "$(basename "$1")" "$mnt" >/dev/null 2>&1) || return 1
  cp "$mnt/$(ls "$mnt" | sort -V | tail -1)" "$2"
  local rc=$?
  fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
  return $rc
}

head -c 3M /dev/urandom >src.raw
head -c 2M /dev/zero >>src.raw
head -c 1M /dev/urandom >>src.raw
truncate -s 41M src.raw
for sub in dynamic fixed; do
  for bs in 1M 8M 32M; do
    img=$sub-$bs.vhdx
    qemu-img convert -O vhdx -o subformat=$sub,block_size=$bs src.raw "$img"
    qemu-img convert -O raw "$img" ref.raw
    rm -f ours.raw
    if "$VDKIT" convert -O raw "$img" ours.raw && cmp -s ref.raw ours.raw; then
      pass "$img: vdkit reads what qemu-img reads"
    else
      fail "$img: vdkit and qemu-img read different bytes"
    fi
    "$VDKIT" map --output=json "$img" >ours.json
    check "$img: every range vdkit calls zero or a hole reads as zeros in qemu-img's raw" python3 - ours.json ref.raw <<'PY'
import json, sys
ref = open(sys.argv[2], "rb")
for e in json.load(open(sys.argv[1])):
    if e["data"]:
        continue
    ref.seek(e["start"])
    if ref.read(e["length"]).count(0) != e["length"]:
        sys.exit(1)
PY
    if [ $have_vhdi = 1 ]; then
      check "$img: vhdimount reads the same" bash -c "$(declare -f vhdi_raw); SCRATCH=$SCRATCH vhdi_raw '$img' vhdi.raw && cmp -s vhdi.raw ours.raw"
    fi
  done
done
check "info: a fixed VHDX says so" bash -c "'$VDKIT' info fixed-8M.vhdx | grep -q 'subformat: fixed'"
$VHDXGEN own.vhdx --size $((3 << 20)) --block-size $((1 << 20)) --write 4096:4096:1 --write $((2 << 20)):512:2 \
  --expect own.raw
rm -f ours.raw q.raw
check "a dynamic VHDX from the spec writer: vdkit and qemu-img both read the raw disk it was made from" \
  bash -c "'$VDKIT' convert own.vhdx ours.raw && qemu-img convert -O raw own.vhdx q.raw && cmp -s own.raw ours.raw &&
           cmp -s own.raw q.raw"

# A differencing disk: partial sectors, a whole block, and a block of its own past what the parent stored.
mkdir chain
qemu-img convert -O vhdx -o subformat=dynamic,block_size=2M src.raw chain/base.vhdx
qemu-img convert -O raw chain/base.vhdx chain/base.raw
$VHDXGEN chain/child.vhdx --parent chain/base.vhdx --relative-path '.\base.vhdx' --write 0:4096:1 \
  --write $((3 << 20)):512:2 --write $((9 << 20)):8192:3 --full-block 12 --expect chain/child.raw \
  --parent-raw chain/base.raw
rm -f ours.raw
check "differencing: vdkit reads the raw disk it was made from" \
  bash -c "'$VDKIT' convert -O raw chain/child.vhdx ours.raw && cmp -s chain/child.raw ours.raw"
if [ $have_vhdi = 1 ]; then
  check "differencing: vhdimount reads the same" bash -c "$(declare -f vhdi_raw); SCRATCH=$SCRATCH vhdi_raw chain/child.vhdx vhdi.raw && cmp -s vhdi.raw chain/child.raw"
fi
"$VDKIT" map --output=json chain/child.vhdx >ours.json
check "differencing map: the child's sectors, the whole block and the parent's data are data" python3 - ours.json <<'PY'
import json, sys
data = [(e["start"], e["length"]) for e in json.load(open(sys.argv[1])) if e["data"]]
# The parent (2 MiB blocks) stores blocks 0, 1, 2 (data in 0-3 MiB and 5-6 MiB); the child adds block 4 and 12.
want = [(0, 6 << 20), ((9 << 20), 8192), (24 << 20, 2 << 20)]
sys.exit(data != want and print(data))
PY
$VHDXGEN chain/wrong.vhdx --parent chain/base.vhdx --relative-path 'base.vhdx' \
  --linkage 01234567-89ab-cdef-0123-456789abcdef --write 0:512:1 --parent-raw chain/base.raw
out=$("$VDKIT" info chain/wrong.vhdx 2>&1) && fail "a parent with another DataWriteGuid accepted" ||
  { echo "$out" | grep -q "parent_linkage" && pass "parent linkage mismatch refused: $out" || fail "wrong message: $out"; }
mkdir -p sub
$VHDXGEN sub/ext.vhdx --parent chain/base.vhdx --relative-path '..\chain\base.vhdx' --write 0:512:1 \
  --parent-raw chain/base.raw
out=$("$VDKIT" info sub/ext.vhdx 2>&1) && fail "parent outside the folder followed" ||
  { echo "$out" | grep -q "allow-external-paths" && pass "parent outside the folder refused: $out" || fail "wrong message: $out"; }
check "parent outside the folder opens with --allow-external-paths" "$VDKIT" info --allow-external-paths sub/ext.vhdx

# Headers and region tables: poke with python, resealing CRC-32C where the point is not the CRC.
poke() {  # IMAGE what
  python3 - "$@" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[0] and "")
path, what = sys.argv[1], sys.argv[2]
POLY = 0x82F63B78
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    T.append(c)
def crc(b):
    c = 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
f = open(path, "r+b")
def hdr(at):
    f.seek(at); return bytearray(f.read(4096))
h1, h2 = hdr(64 << 10), hdr(128 << 10)
cur = (64 << 10) if struct.unpack_from("<Q", h1, 8)[0] > struct.unpack_from("<Q", h2, 8)[0] else (128 << 10)
h = hdr(cur)
if what == "break-current-header":
    h[100] ^= 1
elif what == "log-guid":
    h[48:64] = bytes(range(1, 17))
    struct.pack_into("<I", h, 4, 0); struct.pack_into("<I", h, 4, crc(bytes(h)))
elif what == "break-region-1":
    f.seek((192 << 10) + 40); f.write(b"\xff")
    h = None
elif what == "bat-past-end":
    f.seek(192 << 10); r = f.read(64 << 10)
    for i in range(struct.unpack_from("<I", r, 8)[0]):
        e = 16 + 32 * i
        if r[e:e + 4] == bytes.fromhex("6677c22d"):
            bat = struct.unpack_from("<Q", r, e + 16)[0]
    f.seek(bat); f.write(struct.pack("<Q", (1 << 40) << 20 | 6))
    h = None
if h is not None:
    f.seek(cur); f.write(h)
PY
}
qemu-img convert -O raw dynamic-8M.vhdx ref.raw
cp dynamic-8M.vhdx h.vhdx && poke h.vhdx break-current-header
rm -f ours.raw
check "the current header damaged: the other one is used" \
  bash -c "'$VDKIT' convert -O raw h.vhdx ours.raw && cmp -s ref.raw ours.raw"
cp dynamic-8M.vhdx r.vhdx && poke r.vhdx break-region-1
rm -f ours.raw
check "the first region table damaged: the copy is used" \
  bash -c "'$VDKIT' convert -O raw r.vhdx ours.raw && cmp -s ref.raw ours.raw"
cp dynamic-8M.vhdx log.vhdx && poke log.vhdx log-guid
rm -f ours.raw
check "a LogGuid whose log holds no entry with it: nothing to replay, the disk reads as qemu-img reads it" \
  bash -c "'$VDKIT' convert -O raw log.vhdx ours.raw 2>warn.txt && cmp -s ref.raw ours.raw && grep -q 'nothing was committed' warn.txt"
cp dynamic-8M.vhdx bat.vhdx && poke bat.vhdx bat-past-end
out=$("$VDKIT" info bat.vhdx 2>&1) && fail "a BAT entry past the end accepted" ||
  { echo "$out" | grep -q "BAT entry 0" && pass "a BAT entry past the end is refused: $out" || fail "wrong message: $out"; }
# A pending log made by qemu: blkdebug fails qemu's write of the BAT (the log entry is already written and
# flushed), so the header keeps its LogGuid and the entry waits for replay, as after a crash.
pending_log() {  # IMAGE SIZE OFFSET LENGTH PATTERN [BLOCK]
  qemu-img create -q -f vhdx -o subformat=dynamic,block_size=${6:-1M} "$1" "$2"
  local bat
  bat=$(python3 - "$1" <<'PY2'
import struct, sys
f = open(sys.argv[1], "rb"); f.seek(192 << 10); r = f.read(64 << 10)
for i in range(struct.unpack_from("<I", r, 8)[0]):
    e = 16 + 32 * i
    if r[e:e + 4] == bytes.fromhex("6677c22d"):
        print(struct.unpack_from("<Q", r, e + 16)[0] // 512)
PY2
)
  qemu-io -c "write -P $5 $3 $4" "json:{\"driver\":\"vhdx\",\"file\":{\"driver\":\"blkdebug\",
    \"inject-error\":[{\"event\":\"pwritev\",\"sector\":$bat}],
    \"image\":{\"driver\":\"file\",\"filename\":\"$1\"}}}" >/dev/null 2>&1 || true
  local out
  out=$(qemu-img info "$1" 2>&1 || true)
  [[ $out == *"log that needs to be replayed"* ]]
}
replayed_by_qemu() {  # IMAGE OUT: the disk after qemu replays the log of a copy
  cp "$1" qcopy.vhdx && qemu-img check -q -r all qcopy.vhdx >/dev/null 2>&1; qemu-img convert -O raw qcopy.vhdx "$2"
}
if command -v qemu-io >/dev/null && pending_log plog.vhdx 8M 4096 64k 0xab; then
  pass "qemu left a log that needs replaying (qemu-img will not open it read-only)"
  before=$(sha256sum plog.vhdx)
  rm -f ours.raw
  "$VDKIT" convert -O raw plog.vhdx ours.raw 2>warn.txt || fail "vdkit convert of a VHDX with a pending log"
  replayed_by_qemu plog.vhdx plog-ref.raw
  check "pending log: vdkit reads what qemu-img reads after replaying a copy" cmp -s plog-ref.raw ours.raw
  check "pending log: the write that was only in the log is there" \
    bash -c "[ \"\$(od -An -tx1 -j 4096 -N 4 ours.raw | tr -d ' ')\" = abababab ]"
  check "pending log: convert warns on stderr that the log was replayed in memory" grep -q "replayed in memory" warn.txt
  "$VDKIT" info --output=json plog.vhdx >info.json 2>/dev/null
  check "pending log: info JSON has the warning and the log's state" python3 - info.json <<'PY2'
import json, sys
j = json.load(open(sys.argv[1]))
ok = any("replayed in memory" in w for w in j.get("warnings", []))
ok = ok and j["format-specific"]["log"].startswith("replayed in memory: 1 entry (sequence 1), 1 sectors written")
sys.exit(not ok)
PY2
  check "pending log: the source file is unchanged" bash -c "[ \"\$(sha256sum plog.vhdx)\" = '$before' ]"
  if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null; then
    rm -f nbd.raw
    nbdkit -U - "$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so" file="$SCRATCH/plog.vhdx" \
      --run 'nbdcopy "$uri" nbd.raw' 2>/dev/null
    check "pending log: the NBD plugin serves the replayed disk" cmp -s plog-ref.raw nbd.raw
  fi
  # Writing a block past the first, qemu sets the LogGuid, then fails before its log entry is written: nothing
  # was committed, qemu opens the file as it is, and so does vdkit (with a warning).
  pending_log guid-only.vhdx 64M $((20 << 20)) 1M 0x5a 2M || true
  if python3 -c 'import sys; f = open(sys.argv[1], "rb"); f.seek(1 << 20); sys.exit(f.read(4) == b"loge")' guid-only.vhdx; then
    rm -f ours.raw
    "$VDKIT" convert -O raw guid-only.vhdx ours.raw 2>warn.txt && qemu-img convert -O raw guid-only.vhdx gref.raw
    check "LogGuid set by qemu with no log entry: vdkit reads what qemu-img reads" cmp -s gref.raw ours.raw
    check "LogGuid set by qemu with no log entry: a warning says nothing was replayed" grep -q "no valid entry" warn.txt
  fi
  # A torn entry (its CRC fails): it was never committed, so nothing is replayed and the disk reads as qemu reads it.
  cp plog.vhdx torn.vhdx
  python3 - torn.vhdx <<'PY2'
import sys
f = open(sys.argv[1], "r+b"); f.seek((1 << 20) + 4096 + 100); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 1]))
PY2
  rm -f ours.raw
  "$VDKIT" convert -O raw torn.vhdx ours.raw 2>warn.txt && qemu-img convert -O raw torn.vhdx tref.raw
  check "a torn log entry: nothing replayed, vdkit reads what qemu-img reads" cmp -s tref.raw ours.raw
  check "a torn log entry: the warning names the CRC-32C" grep -q "CRC-32C" warn.txt
  cp plog.vhdx short.vhdx && truncate -s 8M short.vhdx
  out=$("$VDKIT" info short.vhdx 2>&1) && fail "a file shorter than FlushedFileOffset was read" ||
    { echo "$out" | grep -q "truncated" && pass "a file shorter than its log's FlushedFileOffset is refused: $out" ||
      fail "wrong message: $out"; }
else
  fail "qemu-io with blkdebug left no pending log (or qemu-io is missing)"
fi
# Logs written from the specification (tests/tools/vhdxlog.py): the BAT, metadata and payload sectors are moved
# into log entries and overwritten with garbage in the file, so only a correct replay reads the disk it was made
# from. A block whose second half is zeros takes a zero descriptor.
head -c 1536K /dev/urandom >lsrc.raw
head -c 512K /dev/zero >>lsrc.raw
head -c 1M /dev/urandom >>lsrc.raw
truncate -s 8M lsrc.raw
qemu-img convert -O vhdx -o subformat=dynamic,block_size=1M lsrc.raw lbase.vhdx
# The layout qemu-img 7.2 writes: metadata at 3 MiB, BAT at 2 MiB, blocks 0 and 1 at 8 and 9 MiB.
moves="--move 0x200000:4096 --move 0x300000:8192 --move 0x800000:8192 --zero 0x980000:0x80000"
spec_log() {  # NAME ARGS...: vdkit reads lsrc.raw through NAME.vhdx's log; the file stays as it is
  local name=$1; shift
  cp lbase.vhdx "$name.vhdx" && python3 "$VDKIT_SRC/tests/tools/vhdxlog.py" "$name.vhdx" "$@"
  local before; before=$(sha256sum "$name.vhdx")
  rm -f ours.raw
  "$VDKIT" convert -O raw "$name.vhdx" ours.raw 2>/dev/null && cmp -s lsrc.raw ours.raw &&
    [ "$(sha256sum "$name.vhdx")" = "$before" ]
}
qemu_agrees() {  # NAME: qemu-img's replay of a copy reads lsrc.raw too
  cp "$1.vhdx" qcopy.vhdx && qemu-img check -q -r all qcopy.vhdx >/dev/null 2>&1
  qemu-img convert -O raw qcopy.vhdx q.raw && cmp -s lsrc.raw q.raw
}
check "spec log, 3 entries with data and zero descriptors: vdkit reads the disk it was made from" \
  spec_log three $moves --entries 3
check "spec log, 3 entries: qemu-img's replay reads the same" qemu_agrees three
check "spec log, an entry that wraps past the end of the log: vdkit reads the disk it was made from" \
  spec_log wrap $moves --start 255
check "spec log, an entry that wraps: qemu-img's replay reads the same" qemu_agrees wrap
# Where qemu 7.2 is not the judge: it takes the part of a wrapped sequence found at sector 0 as a sequence of its
# own (it does not check the head's Tail), and joins a following entry with any sequence number to a sequence.
check "spec log, a sequence of 3 entries wrapping past the end: replayed from its tail" \
  spec_log wrapseq $moves --entries 3 --start 250
check "spec log, an older complete entry after the sequence's head: the highest sequence wins" \
  spec_log stale $moves --entries 2 --stale
out=$("$VDKIT" info --output=json three.vhdx 2>/dev/null)
check "spec log: info says 3 entries were replayed" \
  bash -c "echo '$out' | grep -q 'replayed in memory: 3 entries (sequence 100 to 102), 5 sectors written, 524288 bytes zeroed'"
check "vdkit compare: the VHDX and the raw it came from read the same" "$VDKIT" compare dynamic-8M.vhdx ref.raw
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null; then
  rm -f nbd.raw
  nbdkit -U - "$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so" file="$SCRATCH/chain/child.vhdx" \
    --run 'nbdcopy "$uri" nbd.raw'
  check "nbdkit + vdkit plugin serves the differencing VHDX byte for byte" cmp -s chain/child.raw nbd.raw
fi
if [ -e /dev/fuse ]; then
  mkdir -p mnt
  if "$VDKIT" mount --raw chain/child.vhdx mnt; then
    check "vdkit mount --raw shows the differencing VHDX's disk" cmp -s mnt/disk chain/child.raw
    "$VDKIT" umount mnt
  else
    fail "vdkit mount --raw of a differencing VHDX"
  fi
fi

finish
