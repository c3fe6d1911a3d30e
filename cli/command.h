// How `vdkit` subcommands plug in: each cmd_*.cc registers itself with a CommandRegistrar.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "blockcore/convert/convert.h"
#include "blockcore/sources/image.h"
#include "blockcore/base/units.h"

namespace vdkit::cli {

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // bad image, failed operation (compare: images differ)
inline constexpr int kExitUsage = 2;    // bad command line

// setup() adds the subcommand's options to `sub` and returns the function
// that runs it once the command line is parsed.
struct CommandSpec {
  std::string name;
  std::string summary;
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<CommandSpec>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(CommandSpec spec) { command_registry().push_back(std::move(spec)); }
};

// Options every image-reading subcommand shares.
struct ImageOptions {
  bool allow_external_paths = false;
  std::string format;
  long xva_disk = -1;  // --xva-disk N; -1 when not given (disk 0, or every disk where a guest is read)
  void add_to(CLI::App& sub);
  OpenOptions open_options() const;
};

// How convert writes file targets, from the environment read once in main().
const TargetIo& target_io();

// Prints "vdkit <cmd>: warning: <w>" to stderr for each of `warnings` (chain_warnings of an opened image).
void warn(const std::string& cmd, const std::vector<std::string>& warnings);

// Prints "vdkit <cmd>: <message>" to stderr and returns kExitFailure.
int fail(const std::string& cmd, const Status& st);

using vdkit::human_size;

}  // namespace vdkit::cli
