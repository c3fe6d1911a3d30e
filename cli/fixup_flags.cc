// FixupFlags: one CLI flag per entry of fixups::fixup_option_specs(), parsed by fixups::set_fixup_option.
#include "cli/fixup_flags.h"

namespace vdkit::cli {

void FixupFlags::add_to(CLI::App& sub, const std::string& help_prefix) {
  CLI::Option* network = nullptr;
  CLI::Option* no_network = nullptr;
  for (const auto& spec : fixups::fixup_option_specs()) {
    const std::string name = spec.name;
    CLI::Option* opt;
    if (spec.values.empty()) {
      opt = sub.add_flag_callback("--" + name, [this, name] { given_.emplace_back(name, ""); },
                                  help_prefix + spec.help);
    } else {
      opt = sub.add_option_function<std::string>(
                   "--" + name, [this, name](const std::string& v) { given_.emplace_back(name, v); },
                   help_prefix + spec.help)
                ->check(CLI::IsMember(spec.values))
                ->type_name(CLI::detail::join(spec.values, "|"));
    }
    if (name == "network") network = opt;
    if (name == "no-network") no_network = opt;
  }
  if (network && no_network) network->excludes(no_network);
}

Result<fixups::FixupOptions> FixupFlags::options() const {
  fixups::FixupOptions o;
  for (const auto& [name, value] : given_) VDKIT_RETURN_IF_ERROR(fixups::set_fixup_option(o, name, value));
  return o;
}

}  // namespace vdkit::cli
