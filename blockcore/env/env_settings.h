// The VDKIT_* environment settings: read once by a front end (the CLI, the nbdkit plugin), never by the library.
#pragma once

#include <string>

#include "blockcore/base/status.h"
#include "blockcore/convert/convert.h"

namespace vdkit {

// What the environment asks for. Every field has the value an unset variable means.
struct EnvSettings {
  bool io_sync = false;        // VDKIT_IO=sync: pread/pwrite instead of io_uring
  // VDKIT_TARGET_IO=uring: all of convert's file-target writes through io_uring (by default only the O_DIRECT
  // ones are); VDKIT_TARGET_IO=sync: all through pwrite.
  bool target_uring = false;
  bool target_sync = false;
  bool target_direct = true;   // VDKIT_TARGET_DIRECT=0: no O_DIRECT for convert's file targets
  std::string fault;           // VDKIT_FAULT (tests): fault_io.h's rule syntax
};

// Reads the variables: the only getenv of the I/O settings in the project.
EnvSettings read_env_settings();

// Makes the engines the settings ask for (wrapped in a FaultInjectingEngine
// when `fault` is set, so injected faults reach a real nbdkit or FUSE process)
// and installs them as the process-wide defaults. Returns how convert should
// write file targets. A malformed `fault` is an error naming the variable.
// Call once, before any image is opened with the default engines. The nbdkit
// plugin calls it in after_fork: choosing the engine probes an io_uring ring,
// and none may exist before nbdkit forks (until then the plugin's files use
// its own fork-safe pread/pwrite engine).
Result<TargetIo> apply_env_settings(const EnvSettings& settings);

// Where vdkit keeps state between runs (convert's resume records):
// $XDG_STATE_HOME/vdkit, else /var/lib/vdkit for root, else
// $HOME/.local/state/vdkit (the XDG default).
std::string default_state_dir();

}  // namespace vdkit
