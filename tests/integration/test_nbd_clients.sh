#!/usr/bin/env bash
# Many clients at once (nbdcopy over several connections plus parallel libnbd readers) all read the right bytes;
# partition=N exports one MBR or GPT partition, read-only and through an overlay that writes at the right place.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"
for tool in nbdkit nbdcopy nbdinfo qemu-img qemu-io sfdisk; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ -f "$PLUGIN" ] || skip "the plugin is not built ($PLUGIN)"
PY=/usr/bin/python3
"$PY" -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"
make_matrix

pick() { awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$MATRIX/manifest.tsv"; }

# reader SEED REF: 400 random reads of 1 byte to 300 KiB on its own connection, each checked against REF.
reader() {
  "$PY" - "$URI" "$2" "$1" <<'PY'
import random, sys, nbd
uri, ref_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
ref = open(ref_path, "rb").read()
h = nbd.NBD(); h.connect_uri(uri)
assert h.get_size() == len(ref)
assert h.can_multi_conn(), "a read-only export must offer multi-conn"
r = random.Random(seed)
for i in range(400):
    n = r.choice([1, 512, 4096, 65536, 65537, 300000])
    off = r.randrange(0, len(ref) - n)
    if h.pread(n, off) != ref[off:off + n]:
        print("reader %d: %d bytes at %d differ" % (seed, n, off)); sys.exit(1)
PY
}

for name in vmdk-streamOptimized qcow2-zstd qcow2-chain3 vmdk-split-sparse-odd raw; do
  src=$(pick "$name")
  [ -n "$src" ] || continue
  qemu_raw "$src" "$SCRATCH/ref.raw"
  if ! start_server "$SCRATCH/server.log" file="$src" cache=1M; then
    fail "$name: nbdkit did not start: $(cat "$SCRATCH/server.log")"
    continue
  fi
  rm -f "$SCRATCH/copy.raw"
  nbdcopy --connections=4 --requests=8 "$URI" "$SCRATCH/copy.raw" & c0=$!
  reader 1 "$SCRATCH/ref.raw" & c1=$!
  reader 2 "$SCRATCH/ref.raw" & c2=$!
  reader 3 "$SCRATCH/ref.raw" & c3=$!
  wait "$c0" && ok=0 || ok=$?
  check "$name: nbdcopy --connections=4 alongside three readers copies the right bytes" \
    bash -c "[ $ok = 0 ] && cmp -s '$SCRATCH/copy.raw' '$SCRATCH/ref.raw'"
  for c in "$c1" "$c2" "$c3"; do
    wait "$c" && ok=0 || ok=$?
    check "$name: a parallel libnbd reader got the right bytes" [ "$ok" = 0 ]
  done
  check "$name: the server is still up after the clients left" kill -0 "$SERVER_PID"
  stop_server || true
done

# ---- partitions ----
# part.raw: 24 MiB, MBR with a primary partition, an extended one holding logical partition 5, and a gap.
disk=$SCRATCH/part.raw
truncate -s 24M "$disk"
sfdisk -q "$disk" <<'EOF'
label: dos
start=2048, size=8192, type=83
start=12288, size=10240, type=5
start=14336, size=6144, type=83
EOF
"$PY" - "$disk" <<'PY'
import random, sys
r = random.Random(8)
with open(sys.argv[1], "r+b") as f:
    for off, n in ((2048 * 512, 8192 * 512), (14336 * 512, 6144 * 512)):
        f.seek(off); f.write(r.randbytes(n // 2))  # the second half of each partition stays a hole
PY
gdisk=$SCRATCH/gpt.raw
truncate -s 16M "$gdisk"
sfdisk -q "$gdisk" <<'EOF'
label: gpt
start=2048, size=4096, name=first
start=8192, size=16384, name=second
EOF
"$PY" -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(8192 * 512 + 100); f.write(b'second partition' * 1000)" "$gdisk"
qemu-img convert -O vmdk -o subformat=streamOptimized "$disk" "$SCRATCH/part.vmdk"
qemu-img convert -O qcow2 "$gdisk" "$SCRATCH/gpt.qcow2"

# part_check NAME IMAGE N START_SECTOR SECTORS: partition=N exports exactly those bytes of the raw disk.
part_check() {
  local name=$1 image=$2 n=$3 start=$4 sectors=$5
  qemu_raw "$image" "$SCRATCH/whole.raw"
  dd if="$SCRATCH/whole.raw" of="$SCRATCH/want.raw" bs=512 skip="$start" count="$sectors" status=none
  if ! start_server "$SCRATCH/server.log" file="$image" partition="$n"; then
    fail "$name partition $n: nbdkit did not start: $(cat "$SCRATCH/server.log")"
    return
  fi
  check "$name partition $n: nbdinfo --size is $((sectors * 512))" [ "$(nbdinfo --size "$URI")" = $((sectors * 512)) ]
  rm -f "$SCRATCH/got.raw"
  check "$name partition $n: nbdcopy equals the partition's bytes" \
    bash -c "nbdcopy '$URI' '$SCRATCH/got.raw' && cmp -s '$SCRATCH/got.raw' '$SCRATCH/want.raw'"
  desc=$(nbdinfo --json "$URI" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["exports"][0].get("description",""))')
  check "$name partition $n: the description says which partition ($desc)" grep -q "partition $n" <<<"$desc"
  stop_server || true
}
part_check "MBR vmdk" "$SCRATCH/part.vmdk" 1 2048 8192
part_check "MBR vmdk" "$SCRATCH/part.vmdk" 5 14336 6144
part_check "GPT qcow2" "$SCRATCH/gpt.qcow2" 2 8192 16384

# A write to partition 5 through a qcow2 overlay lands at the partition's offset in the whole-disk overlay.
qemu_raw "$SCRATCH/part.vmdk" "$SCRATCH/expected.raw"
"$PY" -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(14336 * 512 + 4000); f.write(b'\x6b' * 9000)" "$SCRATCH/expected.raw"
rm -f "$SCRATCH/part-ov.qcow2"
if start_server "$SCRATCH/server.log" file="$SCRATCH/part.vmdk" partition=5 overlay="$SCRATCH/part-ov.qcow2"; then
  qemu-io -f raw -c 'write -P 0x6b 4000 9000' "$URI" >/dev/null
  check "partition 5 with an overlay: nbdkit stops cleanly" stop_server
  check "partition 5 with an overlay: the whole-disk overlay compares identical to the expected disk" \
    qemu-img compare -q -f qcow2 -F raw "$SCRATCH/part-ov.qcow2" "$SCRATCH/expected.raw"
else
  fail "partition 5 with an overlay: nbdkit did not start: $(cat "$SCRATCH/server.log")"
fi
if start_server "$SCRATCH/server.log" file="$SCRATCH/part.vmdk" partition=3; then
  fail "partition=3 of a disk without it: nbdkit served"
  stop_server || true
else
  check "partition=3 of a disk without it: the message lists the partitions there are" \
    grep -q "partition=3: .*has no partition 3 (it has 1, 2, 5)" "$SCRATCH/server.log"
fi
# ---- nothing made before nbdkit forks ----
# nbdkit daemonizes after get_ready, where the image is opened: worker threads or io_uring rings made before the fork
# would be left behind in the parent. strace shows which process makes them.
if command -v strace >/dev/null; then
  for name in vmdk-streamOptimized qcow2-zstd; do
    src=$(pick "$name")
    [ -n "$src" ] || continue
    rm -f "$SOCK" "$SCRATCH/daemon.pid" "$SCRATCH/strace.txt"
    # strace follows the daemon, so it runs until the daemon is stopped.
    strace -f -qq -o "$SCRATCH/strace.txt" -e trace=clone,clone3,fork,vfork,io_uring_setup \
      nbdkit --unix "$SOCK" --pidfile "$SCRATCH/daemon.pid" "$PLUGIN" file="$src" 2>"$SCRATCH/server.log" &
    strace_pid=$!
    while [ ! -s "$SCRATCH/daemon.pid" ] && kill -0 "$strace_pid" 2>/dev/null; do sleep 0.05; done
    if [ -s "$SCRATCH/daemon.pid" ]; then
      until nbdcopy "$URI" null: 2>/dev/null; do  # makes the rings and workers, in the daemon
        kill -0 "$(cat "$SCRATCH/daemon.pid")" || break
        sleep 0.05
      done
      kill "$(cat "$SCRATCH/daemon.pid")"
      wait "$strace_pid" || true
      verdict=$("$PY" - "$SCRATCH/strace.txt" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
parent = lines[0].split()[0]
forked = False
threads_after = 0
for l in lines:
    pid, call = l.split(None, 1)
    is_fork = call.startswith(("fork", "vfork")) or (call.startswith("clone") and "CLONE_VM" not in call)
    if pid == parent and is_fork:
        forked = True
    elif not forked and (call.startswith("io_uring_setup") or "CLONE_THREAD" in call):
        print("before the fork: " + l[:120]); sys.exit()
    elif forked and "CLONE_THREAD" in call:
        threads_after += 1
print("ok" if forked and threads_after else "no fork or no threads seen (forked=%s)" % forked)
PY
      )
      check "$name: no thread or io_uring ring exists before nbdkit forks ($verdict)" [ "$verdict" = ok ]
    else
      wait "$strace_pid" || true
      fail "$name: nbdkit did not start under strace: $(cat "$SCRATCH/server.log")"
    fi
  done
else
  echo "note: strace is not installed; the before-fork check was not run"
fi
finish
