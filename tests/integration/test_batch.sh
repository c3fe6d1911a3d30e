#!/usr/bin/env bash
# vdkit batch on a plan of 8 guests (several disks each, fixups, qcow2 and raw, one NBD source, one missing disk,
# one corrupt image): results against the sources (qemu-img compare; fixups converged: a dry run on the target plans
# nothing), the failures in the report and events, --dry-run, --index and JOB_COMPLETION_INDEX, SIGTERM, ten
# random SIGKILL/SIGTERM interruptions resumed to the same end state as one uninterrupted run, no temporary file
# left, and the --emit-kubernetes manifests loaded into python3-kubernetes' object models. About 60-120 s.
source "$(dirname "$0")/lib.sh"
for t in qemu-img nbdkit python3 sfdisk mkfs.ext4 debugfs; do
  command -v "$t" >/dev/null || PATH=$PATH:/sbin:/usr/sbin command -v "$t" >/dev/null || skip "$t is not installed"
done
export PATH=$PATH:/sbin:/usr/sbin
# Debian's own python (a pyenv python3 earlier on PATH does not see Debian's python3-* modules).
PYK=/usr/bin/python3
"$PYK" -c 'import kubernetes, yaml' 2>/dev/null || skip "python3-kubernetes is not installed"

G=$SCRATCH/guests
mkdir -p "$G"
for g in ubuntu2004 rhel8 canfar sl5 ubuntu1404; do "$VDKIT_SRC/scripts/make-guest" "$g" "$G/$g" >/dev/null; done
# Data disks: random bytes with holes, so every conversion has something to copy.
data_disk() {
  qemu-img create -q -f "$2" "$1" 96M
  qemu-io -f "$2" -c "write -P 0x5a 1M 8M" -c "write -P 0xa5 40M 4M" "$1" >/dev/null
  head -c 16M /dev/urandom >"$SCRATCH/rand"
  qemu-img dd -f raw -O "$2" if="$SCRATCH/rand" of="$1" bs=1M count=16 seek=60 2>/dev/null ||
    qemu-io -f "$2" -c "write -P 0x11 60M 16M" "$1" >/dev/null
}
data_disk "$G/web1-data.qcow2" qcow2
data_disk "$G/db1-data.qcow2" qcow2
data_disk "$G/files-disk0.raw" raw
data_disk "$G/nbd-export.raw" raw
head -c 1048576 /dev/urandom >"$G/corrupt.qcow2"
printf 'QFI\xfb\x00\x00\x00\x03' | dd of="$G/corrupt.qcow2" conv=notrunc status=none

# The NBD source: nbdkit serving a raw file on a Unix socket.
SOCK=$SCRATCH/nbd.sock
nbdkit --exit-with-parent -U "$SOCK" -f file "$G/nbd-export.raw" --readonly &
NBDKIT=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
# An NBD export as a target (nbdkit memory, kept for the whole test so interrupted runs can be resumed).
TSOCK=$SCRATCH/target.sock
nbdkit --exit-with-parent -U "$TSOCK" -f memory 96M &
TNBDKIT=$!
for _ in $(seq 50); do [ -S "$TSOCK" ] && break; sleep 0.1; done
trap 'kill $NBDKIT $TNBDKIT 2>/dev/null; cleanup_scratch' EXIT

OUT=$SCRATCH/out
cat >"$SCRATCH/plan.csv" <<CSV
name,disks,output,format,fixup,compression,network,sparsify,targets
web1,guests/ubuntu2004/ubuntu2004.vmdk;guests/web1-data.qcow2,out/web1,qcow2,yes,zstd,keep,,
db1,guests/rhel8/rhel8.qcow2;guests/db1-data.qcow2,out/db1,raw,yes,,,,
canfar,guests/canfar/canfar.vmdk,out/canfar,qcow2,yes,zlib,,,
sl5,guests/sl5/sl5.raw,out/sl5,raw,yes,,,,
old,guests/ubuntu1404/ubuntu1404.qcow2,out/old,raw,yes,,none,yes,
files,guests/files-disk0.raw,out/files,qcow2,no,,,yes,
remote,nbd+unix:///?socket=$SOCK,out/remote,raw,no,,,,
lost,guests/files-disk0.raw;guests/missing.vmdk,out/lost,raw,no,,,,
broken,guests/corrupt.qcow2,out/broken,raw,no,,,,
tonbd,guests/db1-data.qcow2,,raw,no,,,,nbd+unix:///?socket=$TSOCK
CSV
# 10 rows: 8 good (one read over NBD, one written to an NBD export), one with a missing disk, one corrupt image.
PLAN=$SCRATCH/plan.csv
GOOD="web1 db1 canfar sl5 old files remote tonbd"

# --- dry run: opens and inspects, writes nothing, names the bad rows ---
set +e
"$VDKIT" batch "$PLAN" --dry-run --output-json >"$SCRATCH/dry.json" 2>"$SCRATCH/dry.err"
rc=$?
set -e
check "dry run exits 1 for the bad rows" test "$rc" = 1
check "dry run wrote nothing" test ! -e "$OUT"
check "dry run lists fixups and problems" python3 - "$SCRATCH/dry.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
g = {x["name"]: x for x in d["guests"]}
assert g["web1"]["fixups"], "web1 has fixups to list"
assert g["web1"]["os"], "the dry run inspected web1 over its disks"
assert not g["web1"]["problems"] and not g["files"]["problems"]
assert any("missing.vmdk" in p for p in g["lost"]["problems"]), g["lost"]["problems"]
assert g["broken"]["problems"]
assert all(f["enough-space"] for f in d["folders"])
assert g["files"]["disks"][0]["estimated-bytes"] >= 28 << 20
PY

# --- one uninterrupted run ---
set +e
"$VDKIT" batch "$PLAN" --jobs 2 --events "$SCRATCH/events.jsonl" --output-json >"$SCRATCH/sum.json" 2>"$SCRATCH/run.err"
rc=$?
set -e
check "a run with failed guests exits 1" test "$rc" = 1
check "the failed guests are listed" grep -q "2 guests failed: lost, broken" "$SCRATCH/run.err"
check "summary and events agree" python3 - "$SCRATCH/sum.json" "$SCRATCH/events.jsonl" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
r = {g["name"]: g for g in s["guests"]}
assert sorted(s["failed"]) == ["broken", "lost"], s["failed"]
assert "missing.vmdk" in r["lost"]["error"], r["lost"]["error"]
for n in "web1 db1 canfar sl5 old files remote tonbd".split():
    assert r[n]["result"] == "done", (n, r[n])
assert r["web1"]["disks"] == 2 and r["web1"]["bytes-written"] > 0
ev = [json.loads(l) for l in open(sys.argv[2])]
kinds = {}
for e in ev:
    kinds.setdefault(e["guest"], []).append(e["event"])
for n in r:
    assert kinds[n][0] == "start", (n, kinds[n])
    assert kinds[n][-1] == ("failed" if n in ("lost", "broken") else "done"), (n, kinds[n])
assert any(e["event"] == "progress" for e in ev)
assert any(e["event"] == "warning" for e in ev), "the fixups' warnings become events"
PY
check "no partial target of the failed guests (lost's first disk converted, then removed)" \
  test -z "$(find "$OUT/lost" "$OUT/broken" -type f 2>/dev/null)"
check "lost's first disk was converted before its second failed" python3 - "$SCRATCH/events.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '"lost"' in l]
assert any(e["event"] == "phase" and e["phase"].startswith("disk 2/2") for e in ev), ev
PY

# The good guests against their sources.
cmp_ok() { qemu-img compare -q "$1" "$2"; }
check "web1 data disk" cmp_ok "$G/web1-data.qcow2" "$OUT/web1/web1-data.qcow2"
check "db1 data disk" cmp_ok "$G/db1-data.qcow2" "$OUT/db1/db1-data.raw"
check "files disk" cmp_ok "$G/files-disk0.raw" "$OUT/files/files-disk0.qcow2"
check "NBD source named NAME-diskN" cmp_ok "$G/nbd-export.raw" "$OUT/remote/remote-disk0.raw"
nbd_target_ok() { qemu-img compare -q "$G/db1-data.qcow2" "nbd+unix:///?socket=$TSOCK"; }
check "a targets column writes onto an NBD export" nbd_target_ok
converged() {
  local f=$1
  shift
  "$VDKIT" fixup --dry-run --output-json "$@" "$f" >"$SCRATCH/conv.json" 2>/dev/null || return 1
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(1 if d["changes"] else 0)' \
    "$SCRATCH/conv.json"
}
# same_trees A B PARTS: every ext partition of A and B shows the same tree through `vdkit mount` (names, types,
# modes, owners, sizes, contents, symlinks, user.* xattrs).
same_trees() {
  local rc=0 num off size type popt
  while read -r num off size type; do
    case $type in ext*) ;; *) continue ;; esac
    popt=()
    [ "$num" = 0 ] || popt=(--partition "$num")
    mkdir -p "$SCRATCH/ma" "$SCRATCH/mb"
    "$VDKIT" mount "${popt[@]}" "$1" "$SCRATCH/ma" || return 1
    if ! "$VDKIT" mount "${popt[@]}" "$2" "$SCRATCH/mb"; then "$VDKIT" umount "$SCRATCH/ma"; return 1; fi
    python3 "$VDKIT_SRC/tests/integration/fuse_compare_tree.py" "$SCRATCH/ma" "$SCRATCH/mb" >&2 || rc=1
    "$VDKIT" umount "$SCRATCH/ma"
    "$VDKIT" umount "$SCRATCH/mb"
  done <"$3"
  return $rc
}
# e2fsck -fn on every ext partition of a raw image.
fsck_clean() {
  local num off size type rc=0
  while read -r num off size type; do
    case $type in ext*) ;; *) continue ;; esac
    dd if="$1" of="$SCRATCH/fsck.img" bs=1M skip=$((off / 1048576)) count=$((size / 1048576)) status=none
    e2fsck -fn "$SCRATCH/fsck.img" >"$SCRATCH/fsck.out" 2>&1 || { cat "$SCRATCH/fsck.out" >&2; rc=1; }
  done <"$2"
  rm -f "$SCRATCH/fsck.img"
  return $rc
}
"$VDKIT" convert --fixup --network none --output-json "$G/ubuntu1404/ubuntu1404.qcow2" "$SCRATCH/old-plain.raw" \
  >"$SCRATCH/old-plain.json"
check "sparsified old has the same tree as a plain fixup conversion" \
  same_trees "$SCRATCH/old-plain.raw" "$OUT/old/ubuntu1404.raw" "$G/ubuntu1404/ubuntu1404.parts"
check "sparsified old is clean for e2fsck -fn" fsck_clean "$OUT/old/ubuntu1404.raw" "$G/ubuntu1404/ubuntu1404.parts"
check "sparsify left something out of old (it read less than a plain conversion)" \
  python3 - "$SCRATCH/sum.json" "$SCRATCH/old-plain.json" <<'PY'
import json, sys
r = {g["name"]: g for g in json.load(open(sys.argv[1]))["guests"]}
plain = json.load(open(sys.argv[2]))
assert r["old"]["bytes-read"] < plain["bytes-read"], (r["old"], plain["bytes-read"])
PY
check "web1 fixed (network keep)" converged "$OUT/web1/ubuntu2004.qcow2" --network keep
check "db1 fixed" converged "$OUT/db1/rhel8.raw"
check "canfar fixed" converged "$OUT/canfar/canfar.qcow2"
check "sl5 fixed" converged "$OUT/sl5/sl5.raw"
check "old fixed (network none)" converged "$OUT/old/ubuntu1404.raw" --network none
has_changes() {
  "$VDKIT" fixup --dry-run --output-json "$1" >"$SCRATCH/src.json" || return 2
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["changes"] else 1)' "$SCRATCH/src.json"
}
check "the sources were not fixed (a dry run on them still plans changes)" has_changes "$G/rhel8/rhel8.qcow2"
set +e
"$VDKIT" batch "$PLAN" >/dev/null 2>"$SCRATCH/again.err"; rc=$?
set -e
check "a second run without --resume is refused, naming --resume" bash -c "test $rc = 2 && grep -q -- --resume $SCRATCH/again.err"
set +e
"$VDKIT" batch "$PLAN" --resume --output-json >"$SCRATCH/again.json" 2>/dev/null
set -e
check "resume of a finished run skips the done guests" python3 - "$SCRATCH/again.json" <<'PY'
import json, sys
r = {g["name"]: g["result"] for g in json.load(open(sys.argv[1]))["guests"]}
assert all(r[n] == "skipped" for n in "web1 db1 canfar sl5 old files remote tonbd".split()), r
assert r["lost"] == "failed" and r["broken"] == "failed", r
PY
# Fingerprints of the reference run: raw and qcow2 contents as qemu reads them, per target.
fingerprint() {
  for f in $(cd "$OUT" && find . -type f | sort); do
    case $f in
      *.state.json) ;;
      */web1/ubuntu2004.qcow2 | */db1/rhel8.raw | */canfar/* | */sl5/* | */old/*) echo "$f fixed" ;;  # fixed files carry times
      *) echo "$f $(qemu-img convert -O raw "$OUT/$f" /dev/stdout 2>/dev/null | sha256sum | cut -c1-16)" ;;
    esac
  done
}
fingerprint >"$SCRATCH/ref.txt"
REF_STATE=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sorted((k,v["status"]) for k,v in d["guests"].items()))' "$PLAN.state.json")

# --- ten interruptions at random points over the whole length of a run, each resumed ---
mv "$OUT" "$SCRATCH/ref-out"
rm -f "$PLAN.state.json"
# Zero the export target, so what it holds at the end comes from the interrupted and resumed runs.
qemu-io -f raw -c "write -z 0 96M" "nbd+unix:///?socket=$TSOCK" >/dev/null
t0=$(date +%s.%N)
"$VDKIT" batch "$PLAN" --jobs 2 >/dev/null 2>&1 || true
qemu-io -f raw -c "write -z 0 96M" "nbd+unix:///?socket=$TSOCK" >/dev/null
RUN_SECONDS=$(python3 -c "import time; print(max(0.5, $(date +%s.%N) - $t0))")
rm -rf "$OUT" "$PLAN.state.json"
leftovers() { find "$OUT" "$SCRATCH" -maxdepth 3 \( -name '*.vdkit-tmp.*' -o -name '*.state.json.tmp.*' \) 2>/dev/null; }
first=1
for i in $(seq 10); do
  args=(--jobs 2)
  [ $first = 1 ] || args+=(--resume)
  "$VDKIT" batch "$PLAN" "${args[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$(python3 -c "import random; print(round(random.uniform(0.05, $RUN_SECONDS), 2))")"
  sig=KILL
  [ $((i % 2)) = 0 ] && sig=TERM
  kill -$sig $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  [ -e "$PLAN.state.json" ] && first=0
  if [ $sig = TERM ]; then
    check "SIGTERM $i leaves no temporary file" test -z "$(leftovers)"
  fi
done
set +e
"$VDKIT" batch "$PLAN" --jobs 2 $([ $first = 1 ] || echo --resume) >/dev/null 2>&1
set -e
check "after ten interruptions the resumed run leaves no temporary file" test -z "$(leftovers)"
check "the NBD export target holds the source after the interruptions" nbd_target_ok
fingerprint >"$SCRATCH/resumed.txt"
check "resumed targets equal the uninterrupted run's" diff "$SCRATCH/ref.txt" "$SCRATCH/resumed.txt"
GOT_STATE=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sorted((k,v["status"]) for k,v in d["guests"].items()))' "$PLAN.state.json")
check "resumed state equals the uninterrupted run's" test "$GOT_STATE" = "$REF_STATE"
for pair in web1:ubuntu2004 db1:rhel8 canfar:canfar sl5:sl5 old:ubuntu1404; do
  n=${pair%%:*} g=${pair#*:}
  t=$(cd "$OUT/$n" && ls | grep -v -- -data | head -1)
  check "resumed $n has the uninterrupted run's file trees" \
    same_trees "$SCRATCH/ref-out/$n/$t" "$OUT/$n/$t" "$G/$g/$g.parts"
done

# --- one row: --index and JOB_COMPLETION_INDEX, states in a folder ---
rm -rf "$OUT"
"$VDKIT" batch "$PLAN" --index 5 --state "$SCRATCH/states/" >/dev/null
check "--index 5 ran row 5 only" test "$(ls "$OUT")" = files
check "--index keeps one state per row" test -f "$SCRATCH/states/files.state.json"
JOB_COMPLETION_INDEX=6 "$VDKIT" batch "$PLAN" --state "$SCRATCH/states/" >/dev/null
check "JOB_COMPLETION_INDEX=6 ran row 6" cmp_ok "$G/nbd-export.raw" "$OUT/remote/remote-disk0.raw"
set +e
"$VDKIT" batch "$PLAN" --index 10 >/dev/null 2>"$SCRATCH/idx.err"; rc=$?
set -e
check "an index past the end exits 2 naming it" bash -c "test $rc = 2 && grep -q 'index 10 does not exist' $SCRATCH/idx.err"

# --- plan errors name the row and column ---
printf 'name,disks,output,format,fixup\nx,a.vmdk,o,vhd,no\n' >"$SCRATCH/bad.csv"
set +e
"$VDKIT" batch "$SCRATCH/bad.csv" 2>"$SCRATCH/bad.err"; rc=$?
set -e
check "a bad plan is refused (exit 2) naming row and column" \
  bash -c "test $rc = 2 && grep -q \"row 1 (line 2) 'x', column 'format'\" $SCRATCH/bad.err"

mkdir -p "$SCRATCH/sub"
printf 'name,disks,output,format,fixup\nx,../guests/files-disk0.raw,../guests,raw,no\n' >"$SCRATCH/sub/self.csv"
SELF_SUM=$(sum_of "$G/files-disk0.raw")
set +e
"$VDKIT" batch "$SCRATCH/sub/self.csv" --overwrite 2>"$SCRATCH/self.err"; rc=$?
set -e
check "a target that is a source is refused, even with --overwrite" \
  bash -c "test $rc = 2 && grep -q 'would be written over' $SCRATCH/self.err && test \"$(sum_of "$G/files-disk0.raw")\" = $SELF_SUM"
printf 'name,disks,output,format,fixup\na,guests/files-disk0.raw,out/x,raw,no\nb,guests/sub/../files-disk0.raw,./out/x/,raw,no\n' \
  >"$SCRATCH/dup.csv"
set +e
"$VDKIT" batch "$SCRATCH/dup.csv" 2>"$SCRATCH/dup.err"; rc=$?
set -e
check "one target spelled two ways is refused" bash -c "test $rc = 2 && grep -q 'as disk 0 of row 1' $SCRATCH/dup.err"
rm -f "$PLAN.state.json"
flock "$PLAN.state.json.lock" sleep 3 &
LOCKER=$!
sleep 0.5
set +e
"$VDKIT" batch "$PLAN" 2>"$SCRATCH/lock.err"; rc=$?
set -e
wait $LOCKER
check "a second run on the same state file is refused while the first holds it" \
  bash -c "test $rc = 1 && grep -q 'another vdkit batch is running' $SCRATCH/lock.err"

# --- Kubernetes manifests, loaded into the object models offline ---
"$VDKIT" batch "$PLAN" --jobs 3 --emit-kubernetes "$SCRATCH/k8s" --image registry.example/vdkit:1 >/dev/null 2>&1
check "emitted manifests load into python3-kubernetes" "$PYK" - "$SCRATCH/k8s" "$PLAN" <<'PY'
import sys, yaml
from kubernetes import client
d, plan = sys.argv[1], sys.argv[2]
api = client.ApiClient()
class R:  # the client deserialises from a response object
    def __init__(self, obj): import json; self.data = json.dumps(obj)
cm = api.deserialize(R(yaml.safe_load(open(d + "/configmap.yaml"))), "V1ConfigMap")
job = api.deserialize(R(yaml.safe_load(open(d + "/job.yaml"))), "V1Job")
assert cm.data["plan.csv"] == open(plan).read()
assert job.spec.completion_mode == "Indexed" and job.spec.completions == 10 and job.spec.parallelism == 3
raw = yaml.safe_load(open(d + "/job.yaml"))["spec"]  # fields newer than this client's models
assert raw["backoffLimitPerIndex"] == 2 and raw["maxFailedIndexes"] == 10
c = job.spec.template.spec.containers[0]
assert c.image == "registry.example/vdkit:1"
assert c.args[:2] == ["batch", "/plan/plan.csv"] and "--resume" in c.args
vols = {v.name: v for v in job.spec.template.spec.volumes}
assert vols["plan"].config_map.name == cm.metadata.name
assert vols["targets"].persistent_volume_claim.claim_name == "vdkit-targets"
assert "FROM debian:12" in open(d + "/Containerfile").read()
PY

finish
