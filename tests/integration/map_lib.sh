# Comparing `vdkit map` with `qemu-img map` (source after lib.sh): shared by the format tests.

# compare_maps VDKIT_JSON QEMU_JSON REF_RAW: data flags agree byte for byte; zero/hole ranges are zeros in REF_RAW.
compare_maps() {
  python3 - "$@" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
theirs = json.load(open(sys.argv[2]))
ref = open(sys.argv[3], "rb")
def runs(m):
    return [(e["start"], e["start"] + e["length"], bool(e["data"])) for e in m]
a, b = runs(ours), runs(theirs)
if not a or a[0][0] != 0 or any(x[1] != y[0] for x, y in zip(a, a[1:])):
    sys.exit("vdkit map does not tile the disk")
if a[-1][1] != b[-1][1]:
    sys.exit("vdkit map ends at %d, qemu-img map at %d" % (a[-1][1], b[-1][1]))
i = j = 0
pos = 0
while pos < a[-1][1]:
    while a[i][1] <= pos: i += 1
    while b[j][1] <= pos: j += 1
    end = min(a[i][1], b[j][1])
    if a[i][2] != b[j][2]:
        sys.exit("at %d+%d vdkit says data=%s, qemu-img says data=%s" % (pos, end - pos, a[i][2], b[j][2]))
    pos = end
for s, e, data in a:
    if data: continue
    ref.seek(s)
    left = e - s
    while left:
        chunk = ref.read(min(left, 1 << 20))
        if not chunk or chunk.count(0) != len(chunk):
            sys.exit("range %d+%d is %s in vdkit map but not zeros in qemu-img's raw" % (s, e - s, "zero/hole"))
        left -= len(chunk)
PY
}
