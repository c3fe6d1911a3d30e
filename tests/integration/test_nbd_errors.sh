#!/usr/bin/env bash
# The plugin's failure paths: bad parameters, missing and corrupt images stop nbdkit at start-up with a message naming
# the problem; a read that fails on corrupt metadata reaches the client as EIO while the server keeps serving.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"
for tool in nbdkit qemu-img qemu-io; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ -f "$PLUGIN" ] || skip "the plugin is not built ($PLUGIN)"
# libnbd's Python module lives in the system Python; a pyenv python3 first on PATH lacks it.
PY=/usr/bin/python3
"$PY" -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"


good=$SCRATCH/good.raw
truncate -s 4M "$good"

# refused WHAT PATTERN PARAM...: nbdkit must exit non-zero at start-up, with PATTERN (grep -E) in its message.
refused() {
  local what=$1 pattern=$2; shift 2
  local log=$SCRATCH/refused.log
  if timeout 60 nbdkit --foreground --unix "$SCRATCH/never.sock" "$PLUGIN" "$@" --run 'exit 0' >"$log" 2>&1; then
    fail "$what: nbdkit served instead of stopping"
  elif grep -Eq "$pattern" "$log"; then
    pass "$what: stopped with \"$(grep -E "$pattern" "$log" | head -1 | cut -c1-150)\""
  else
    fail "$what: the message does not match /$pattern/: $(head -c 300 "$log")"
  fi
}

refused "no file=" "file=<image> is required" writable=false
refused "unknown parameter" "unknown parameter 'colour'" file="$good" colour=blue
refused "bad writable=" "writable=maybe: expected false, overlay or in-place" file="$good" writable=maybe
refused "partition=0" "partition=0: expected a partition number" file="$good" partition=0
refused "partition=abc" "partition=abc: expected a partition number" file="$good" partition=abc
refused "bad cache=" "cache=lots: expected a size" file="$good" cache=lots
refused "huge cache=" "cache=.*more than this machine's memory" file="$good" cache=1E
refused "unknown format=" "format=vdi: unknown format" file="$good" format=vdi
refused "file= twice" "file= given twice" file="$good" file="$good"
refused "missing file" "missing\.raw.*No such file or directory" file="$SCRATCH/missing.raw"
refused "a folder as the file" "Is a directory|not a regular|folder|directory" file="$SCRATCH"
touch "$SCRATCH/exists.qcow2"
refused "overlay= that exists" "exists.qcow2 already exists" file="$good" overlay="$SCRATCH/exists.qcow2"
refused "overlay= with writable=in-place" "overlay=.* needs writable=overlay" file="$good" writable=in-place \
  overlay="$SCRATCH/new.qcow2"
check "a refused overlay= leaves no file behind" [ ! -e "$SCRATCH/new.qcow2" ]
refused "partition= of a disk without a table" "partition=1: .*has no MBR or GPT partition table" file="$good" \
  partition=1

# Images that cannot be opened.
qemu-img create -q -f vmdk "$SCRATCH/so.vmdk" -o subformat=streamOptimized 4M
refused "writable=in-place on streamOptimized VMDK" "in-place: vdkit cannot write vmdk" file="$SCRATCH/so.vmdk" \
  writable=in-place
if [ -f "$VDKIT_SAMPLES/govmdk-vmdk-invalid.img" ]; then
  refused "a truncated VMDK (sample)" "govmdk-vmdk-invalid.img" file="$VDKIT_SAMPLES/govmdk-vmdk-invalid.img"
fi
# A sparse VMDK whose header claims an absurd grain size.
qemu-img create -q -f vmdk "$SCRATCH/badgrain.vmdk" 4M
"$PY" - "$SCRATCH/badgrain.vmdk" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(20); f.write(struct.pack("<Q", 3))  # grainSize in sectors: not a power of two
PY
refused "a VMDK with a bad grain size" "badgrain.vmdk.*[Gg]rain" file="$SCRATCH/badgrain.vmdk"
# A qcow2 whose header says cluster_bits = 40.
qemu-img create -q -f qcow2 "$SCRATCH/badcluster.qcow2" 4M
"$PY" - "$SCRATCH/badcluster.qcow2" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(20); f.write(struct.pack(">I", 40))
PY
refused "a qcow2 with cluster_bits 40" "badcluster.qcow2.*cluster" file="$SCRATCH/badcluster.qcow2"
# A qcow2 whose backing chain loops onto itself.
qemu-img create -q -f qcow2 "$SCRATCH/loop-a.qcow2" 4M
qemu-img create -q -f qcow2 -F qcow2 -b loop-a.qcow2 "$SCRATCH/loop-b.qcow2"
qemu-img rebase -u -f qcow2 -F qcow2 -b loop-b.qcow2 "$SCRATCH/loop-a.qcow2"
refused "a qcow2 backing chain that loops" "loop" file="$SCRATCH/loop-a.qcow2"

# read_error_survives NAME IMAGE OFFSET: reading OFFSET fails with EIO, other reads still work, the server stays up.
read_error_survives() {
  local name=$1 image=$2 bad=$3
  if ! start_server "$SCRATCH/eio.log" file="$image"; then
    fail "$name: nbdkit did not start: $(cat "$SCRATCH/eio.log")"
    return
  fi
  local out
  out=$("$PY" - "$URI" "$bad" <<'PY'
import errno, sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
bad = int(sys.argv[2])
try:
    h.pread(4096, bad)
    print("read-succeeded")
except nbd.Error as e:
    print("errno=%s" % e.errno)
# The same connection and a new one still serve good reads.
good = h.pread(4096, 0)
h2 = nbd.NBD()
h2.connect_uri(sys.argv[1])
print("good=%d size=%d" % (len(good) + len(h2.pread(4096, 0)), h2.get_size()))
PY
  ) || true
  check "$name: the bad read reaches the client as EIO (${out//$'\n'/, })" grep -q "errno=EIO" <<<"$out"
  check "$name: the server keeps serving after it" grep -q "good=8192" <<<"$out"
  check "$name: the server log names the problem" grep -q "error: read:" "$SCRATCH/eio.log"
  check "$name: nbdkit is still running" kill -0 "$SERVER_PID"
  stop_server || true
}

# A sparse VMDK whose grain table entry for grain 2 points far past the end of the file.
qemu-img create -q -f vmdk "$SCRATCH/eio.vmdk" 4M
qemu-io -f vmdk -c "write -P 0x11 0 1M" "$SCRATCH/eio.vmdk" >/dev/null
"$PY" - "$SCRATCH/eio.vmdk" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = f.read(512)
    gd = struct.unpack_from("<Q", h, 56)[0]
    f.seek(gd * 512); gt = struct.unpack("<I", f.read(4))[0]
    f.seek(gt * 512 + 4 * 2); f.write(struct.pack("<I", 0x00ffffff))
PY
read_error_survives "VMDK grain table entry past EOF" "$SCRATCH/eio.vmdk" $((2 * 65536))

# A qcow2 whose L2 entry for cluster 3 points far past the end of the file.
qemu-img create -q -f qcow2 "$SCRATCH/eio.qcow2" 4M
qemu-io -f qcow2 -c "write -P 0x22 0 1M" "$SCRATCH/eio.qcow2" >/dev/null
"$PY" - "$SCRATCH/eio.qcow2" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = f.read(104)
    l1_off = struct.unpack_from(">Q", h, 40)[0]
    f.seek(l1_off); l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2 + 8 * 3); e = struct.unpack(">Q", f.read(8))[0]
    f.seek(l2 + 8 * 3); f.write(struct.pack(">Q", (e & ~0x00fffffffffffe00) | (1 << 40)))
PY
read_error_survives "qcow2 L2 entry past EOF" "$SCRATCH/eio.qcow2" $((3 * 65536))

finish
