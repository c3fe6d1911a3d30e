// The `vdkit` command: parses the command line and dispatches to the registered subcommands.
#include <cstdio>
#include <iostream>

#include "blockcore/env/env_settings.h"
#include "cli/command.h"

namespace vdkit::cli {

namespace {
TargetIo g_target_io;
}  // namespace

const TargetIo& target_io() { return g_target_io; }
static void set_target_io(const TargetIo& io) { g_target_io = io; }

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> reg;
  return reg;
}

void ImageOptions::add_to(CLI::App& sub) {
  sub.add_flag("--allow-external-paths", allow_external_paths,
               "Follow backing, extent and data-file names that are absolute or leave the image's folder");
  sub.add_option("-f,--format", format, "Source format instead of probing the content")
      ->check(CLI::IsMember({"raw", "qcow2", "vmdk"}));
}

OpenOptions ImageOptions::open_options() const {
  OpenOptions o;
  o.allow_external_paths = allow_external_paths;
  o.format = format;
  return o;
}

int fail(const std::string& cmd, const Status& st) {
  std::fprintf(stderr, "vdkit %s: %s\n", cmd.c_str(), st.message().c_str());
  return kExitFailure;
}

}  // namespace vdkit::cli

int main(int argc, char** argv) {
  using namespace vdkit::cli;
  CLI::App app{
      "vdkit moves Linux virtual machines from Xen and VMware onto KVM: it reads VMDK, QCOW2 and raw disks,\n"
      "exports them over NBD, mounts guest file systems, applies KVM fixups and converts to raw or qcow2.",
      "vdkit"};
  app.set_version_flag("--version", "vdkit 0.1.0");
  app.require_subcommand(1);
  app.fallthrough(false);
  std::function<int()> run;
  auto& reg = command_registry();
  std::sort(reg.begin(), reg.end(), [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  for (auto& spec : reg) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.summary);
    auto runner = std::make_shared<std::function<int()>>(spec.setup(*sub));
    sub->callback([&run, runner] { run = *runner; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (!run) return kExitUsage;
  auto io = vdkit::apply_env_settings(vdkit::read_env_settings());
  if (!io.ok()) {
    std::fprintf(stderr, "vdkit: %s\n", io.status().message().c_str());
    return kExitUsage;
  }
  set_target_io(*io);
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vdkit: internal error: %s\n", e.what());
    return kExitFailure;
  }
}
