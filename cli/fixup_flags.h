// The fixup options as command-line flags, made from fixups' one option table (for `fixup` and `convert --fixup`).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "fixups/options.h"

namespace vdkit::cli {

// Add to a subcommand's arguments; options() after parsing turns what was given into FixupOptions through
// fixups::set_fixup_option, so a flag and a plan-file column mean the same.
struct FixupFlags {
  FixupFlags() = default;
  // The flags' callbacks hold this object's address: a copy would leave them filling the original.
  FixupFlags(const FixupFlags&) = delete;
  FixupFlags& operator=(const FixupFlags&) = delete;

  // help_prefix goes before each help line ("With --fixup: ").
  void add_to(CLI::App& sub, const std::string& help_prefix = "");
  Result<fixups::FixupOptions> options() const;
  bool any_given() const { return !given_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> given_;  // name, value, in command-line order
};

}  // namespace vdkit::cli
