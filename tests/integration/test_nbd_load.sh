#!/usr/bin/env bash
# Short NBD load test (bounded, loopback only): 32 clients on Unix and TCP against a streamOptimized VMDK export
# and a qcow2 export with an overlay taking writes, every read checked, nbdkit's peak RSS bounded.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/load_lib.sh"
run_load "${VDKIT_LOAD_SECONDS:-5}"
finish
