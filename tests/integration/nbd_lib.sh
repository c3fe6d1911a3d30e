# Shared by the NBD tests (source after lib.sh): the plugin's path and one nbdkit on a Unix socket at a time.
PLUGIN=$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so
SOCK=$SCRATCH/nbd.sock
URI="nbd+unix:///?socket=$SOCK"
SERVER_PID=
# start_server LOG PARAM...: serves the plugin on $SOCK; returns 1 (log kept) when nbdkit stops instead.
start_server() {
  local log=$1; shift
  rm -f "$SOCK" "$SOCK.pid"
  nbdkit --foreground --exit-with-parent --unix "$SOCK" --pidfile "$SOCK.pid" "$PLUGIN" "$@" 2>"$log" &
  SERVER_PID=$!
  # nbdkit writes the pid file once it accepts connections.
  while [ ! -s "$SOCK.pid" ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" || true; SERVER_PID=; return 1; }
    sleep 0.05
  done
}
# Stops nbdkit the way a user does (SIGTERM) and returns its exit status.
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  local rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=
  return $rc
}
