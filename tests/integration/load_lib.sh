# The NBD load run shared by the short test (tests/integration/test_nbd_load.sh) and the long one (bench/nbd-load):
# 16 clients on a Unix socket and 16 on TCP 127.0.0.1 against one export of a streamOptimized VMDK and one of a
# qcow2 with an overlay taking writes; every read checked; nbdkit's peak RSS reported and bounded.
# Needs lib.sh sourced first. Usage: run_load SECONDS (sets LOAD_OK, prints lines).

PLUGIN=${PLUGIN:-$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so}
NBDLOAD=$VDKIT_BUILD/tests/nbdload
SERVE_BOTH=$VDKIT_SRC/tests/tools/serve-both
LOAD_CACHE_MIB=${LOAD_CACHE_MIB:-32}
# nbdkit (not the plugin) keeps one request buffer of up to the largest request per worker thread, and runs
# --threads workers per connection: with its default of 16 threads, nbdkit's own `file` plugin peaks at ~520 MiB
# under this load. So the servers run with 4 threads per connection, and the stated bound is
#   cache + connections x threads x largest request + 96 MiB (code, stacks, allocator slack, L2/grain tables,
#   and the overlay's written blocks, at most the 16 MiB write region).
LOAD_THREADS=${LOAD_THREADS:-4}
LOAD_CONNECTIONS=32
LOAD_MAX_READ_MIB=1
LOAD_RSS_CONSTANT_MIB=$((LOAD_CONNECTIONS * LOAD_THREADS * LOAD_MAX_READ_MIB + 96))

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# make_load_images DIR: a 96 MiB reference disk (random, text, zeros, holes) as raw, streamOptimized VMDK and qcow2.
make_load_images() {
  local d=$1
  python3 - "$d/ref.raw" <<'PY'
import random, sys
r = random.Random(99)
with open(sys.argv[1], "wb") as f:
    f.truncate(96 << 20)
    for mib in range(0, 96, 3):
        f.seek(mib << 20)
        if mib % 2:
            f.write(b"".join(b"guest log line %09d\n" % (mib * 100000 + i) for i in range(45000))[: 1 << 20])
        else:
            f.write(r.randbytes(1 << 20))
PY
  qemu-img convert -q -O vmdk -o subformat=streamOptimized "$d/ref.raw" "$d/load.vmdk"
  qemu-img convert -q -O qcow2 "$d/ref.raw" "$d/load.qcow2"
}

# start_server NAME ARGS...: nbdkit on $SCRATCH/NAME.sock and a free TCP port; sets PID_NAME, PORT_NAME.
start_server() {
  local name=$1; shift
  local port; port=$(free_port)
  "$SERVE_BOTH" "$SCRATCH/$name.sock" "$port" -- nbdkit -f --exit-with-parent --threads "$LOAD_THREADS" "$PLUGIN" "$@" &
  local pid=$!
  for _ in $(seq 100); do
    nbdinfo --size "nbd+unix:///?socket=$SCRATCH/$name.sock" >/dev/null 2>&1 && break
    sleep 0.1
  done
  printf -v "PID_$name" '%s' "$pid"
  printf -v "PORT_$name" '%s' "$port"
}

peak_rss_mib() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }

run_load() {
  local seconds=$1 d=$SCRATCH
  LOAD_OK=1
  make_load_images "$d"
  local before; before=$(sum_of "$d/load.vmdk" "$d/load.qcow2")
  start_server vmdk file="$d/load.vmdk" cache="${LOAD_CACHE_MIB}M"
  start_server qcow2 file="$d/load.qcow2" writable=overlay overlay="$d/overlay.qcow2" cache="${LOAD_CACHE_MIB}M"
  local out status=0
  for name in vmdk qcow2; do
    local port_var=PORT_$name pid_var=PID_$name
    local extra=()
    [ "$name" = qcow2 ] && extra=(--write-region $((16 << 20)))
    out=$("$NBDLOAD" --ref "$d/ref.raw" --seconds "$seconds" --min-read 4096 --max-read $((LOAD_MAX_READ_MIB << 20)) "${extra[@]}" \
      --uri "nbd+unix:///?socket=$d/$name.sock" --clients 16 \
      --uri "nbd://127.0.0.1:${!port_var}" --clients 16) || status=1
    echo "$name: $out"
    if [ $status -ne 0 ]; then fail "load on the $name export: a request failed or read wrong bytes"; LOAD_OK=0; fi
    if ! kill -0 "${!pid_var}" 2>/dev/null; then fail "nbdkit for $name died under load"; LOAD_OK=0; continue; fi
    local rss; rss=$(peak_rss_mib "${!pid_var}")
    local bound=$((LOAD_CACHE_MIB + LOAD_RSS_CONSTANT_MIB))
    echo "$name: nbdkit peak RSS ${rss} MiB (bound: cache ${LOAD_CACHE_MIB} MiB + ${LOAD_RSS_CONSTANT_MIB} MiB)"
    if [ "$rss" -le "$bound" ]; then pass "$name export: peak RSS $rss MiB within $bound MiB"
    else fail "$name export: peak RSS $rss MiB over $bound MiB"; LOAD_OK=0; fi
    [ $status -eq 0 ] && pass "$name export: 32 clients (16 unix, 16 tcp) read the right bytes for ${seconds}s"
  done
  kill "$PID_vmdk" "$PID_qcow2" 2>/dev/null || true
  wait "$PID_vmdk" "$PID_qcow2" 2>/dev/null || true
  check "overlay written under load passes qemu-img check" qemu-img check -q "$d/overlay.qcow2"
  check "sources unchanged by the load" [ "$(sum_of "$d/load.vmdk" "$d/load.qcow2")" = "$before" ]
}
