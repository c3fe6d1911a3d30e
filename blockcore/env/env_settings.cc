// Turns the VDKIT_* variables into engines and convert target options, once per process.
#include "blockcore/env/env_settings.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "blockcore/io/io_engine.h"
#include "blockcore/testing/fault_io.h"

namespace vdkit {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Each wrapped engine keeps its own rule counters, as each engine is a separate path to the disk.
Result<IoEngine*> with_faults(IoEngine* real, const std::string& spec) {
  if (spec.empty()) return real;
  auto rules = FaultInjectingEngine::ParseRules(spec);
  if (!rules.ok()) return Status::Invalid("VDKIT_FAULT: " + rules.status().message());
  auto* fault = new FaultInjectingEngine(*real);  // lives as long as the process, like the engines
  for (const auto& r : *rules) fault->add_rule(r);
  return static_cast<IoEngine*>(fault);
}

}  // namespace

EnvSettings read_env_settings() {
  EnvSettings s;
  s.io_sync = env("VDKIT_IO") == "sync";
  s.target_uring = env("VDKIT_TARGET_IO") == "uring";
  s.target_sync = env("VDKIT_TARGET_IO") == "sync";
  s.target_direct = env("VDKIT_TARGET_DIRECT") != "0";
  s.fault = env("VDKIT_FAULT");
  return s;
}

Result<TargetIo> apply_env_settings(const EnvSettings& settings) {
  IoEngine* io = nullptr;
  if (!settings.io_sync) {
    if (auto e = make_uring_engine()) io = e.release();
  }
  if (!io) io = make_sync_engine().release();
  VDKIT_ASSIGN_OR_RETURN(IoEngine * main, with_faults(io, settings.fault));
  VDKIT_ASSIGN_OR_RETURN(IoEngine * sync, with_faults(make_sync_engine().release(), settings.fault));
  set_default_io_engine(main);
  set_default_sync_engine(sync);
  TargetIo t;
  t.engine = settings.target_uring ? main : sync;
  t.direct_engine = settings.target_sync ? sync : main;
  t.direct = settings.target_direct;
  return t;
}

std::string default_state_dir() {
  std::string xdg = env("XDG_STATE_HOME");
  if (!xdg.empty()) return xdg + "/vdkit";
  if (::geteuid() == 0) return "/var/lib/vdkit";
  std::string home = env("HOME");
  return (home.empty() ? std::string("/tmp") : home) + "/.local/state/vdkit";
}

}  // namespace vdkit
