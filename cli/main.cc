// The `vdkit` command: parses the command line and dispatches to the registered subcommands.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

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
      ->check(CLI::IsMember(known_formats()));
  sub.add_option("--xva-disk", xva_disk,
                 "For an XVA export (several disks in one file): read disk N instead of disk 0, N counted from 0 in "
                 "the VM's device order as `vdkit info` lists them")
      ->check(CLI::Range(0, 4095));
}

OpenOptions ImageOptions::open_options() const {
  OpenOptions o;
  o.allow_external_paths = allow_external_paths;
  o.format = format;
  o.xva_disk = xva_disk < 0 ? 0 : static_cast<size_t>(xva_disk);
  return o;
}

void warn(const std::string& cmd, const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "vdkit %s: warning: %s\n", cmd.c_str(), w.c_str());
}

int fail(const std::string& cmd, const Status& st) {
  std::fprintf(stderr, "vdkit %s: %s\n", cmd.c_str(), st.message().c_str());
  return kExitFailure;
}

}  // namespace vdkit::cli

namespace {

using vdkit::cli::CommandSpec;

constexpr const char* kVersion = "vdkit " VDKIT_VERSION;
constexpr const char* kAbout =
    "vdkit moves Linux virtual machines from Xen and VMware onto KVM, on the host, with no helper VM: it reads\n"
    "VMDK, QCOW2 and raw disks, exports them over NBD, mounts guest file systems with FUSE, inspects guests and\n"
    "applies the KVM fixups, and converts to sparse raw or qcow2 in one streaming pass.";

// The short usage of `vdkit`, `vdkit --help` and `vdkit help`: one line per subcommand, never their manuals.
std::string short_usage(const std::vector<CommandSpec>& reg) {
  size_t width = 0;
  for (const auto& spec : reg) width = std::max(width, spec.name.size());
  std::string out = "usage: vdkit [--version] [--help] SUBCOMMAND [ARGS]\n\n";
  out += kAbout;
  out += "\n\nSubcommands:\n";
  for (const auto& spec : reg) {
    out += "   " + spec.name + std::string(width - spec.name.size() + 3, ' ') + spec.summary + "\n";
  }
  out += "\nSee 'vdkit SUBCOMMAND --help' for the manual of each.\n";
  return out;
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1 each.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// "vdkit: unknown subcommand 'X'", the closest names when one is near (at most 2 edits, and fewer edits than X
// has letters), and the pointer to the list. Exit status 2.
int unknown_subcommand(const std::string& name, const std::vector<CommandSpec>& reg) {
  std::fprintf(stderr, "vdkit: unknown subcommand '%s'\n", name.c_str());
  size_t best = std::min<size_t>(2, name.size() > 0 ? name.size() - 1 : 0);
  std::vector<std::string> near;
  for (const auto& spec : reg) {
    size_t d = edit_distance(name, spec.name);
    if (d > best) continue;
    if (d < best) near.clear();
    best = d;
    near.push_back(spec.name);
  }
  if (near.size() == 1) {
    std::fprintf(stderr, "Did you mean '%s'?\n", near[0].c_str());
  } else if (!near.empty()) {
    std::string list;
    for (const auto& n : near) list += (list.empty() ? "'" : ", '") + n + "'";
    std::fprintf(stderr, "Did you mean one of %s?\n", list.c_str());
  }
  std::fprintf(stderr, "See 'vdkit --help'.\n");
  return vdkit::cli::kExitUsage;
}

bool is_subcommand(const std::string& name, const std::vector<CommandSpec>& reg) {
  return std::any_of(reg.begin(), reg.end(), [&](const CommandSpec& s) { return s.name == name; });
}

// A subcommand's manual in the order of a man page: usage, what it does, its arguments, its options.
class ManualFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    std::string out = make_usage(app, name) + "\n" + make_description(app) + make_positionals(app) +
                      make_groups(app, mode) + make_subcommands(app, mode);
    std::string footer = make_footer(app);
    if (!footer.empty()) out += "\n" + footer;
    return out;
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace vdkit::cli;
  auto& reg = command_registry();
  std::sort(reg.begin(), reg.end(), [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });

  // What comes before a subcommand is handled here, git style; CLI11 parses the subcommand's own arguments.
  std::vector<std::string> args(argv, argv + argc);
  if (args.size() == 1) {
    std::fputs(short_usage(reg).c_str(), stderr);
    return kExitUsage;
  }
  const std::string& first = args[1];
  if (first == "-h" || first == "--help" || first == "help") {
    if (args.size() == 2 || args[2] == "help") {
      std::fputs(short_usage(reg).c_str(), stdout);
      return kExitOk;
    }
    // `vdkit help SUBCOMMAND` (and `vdkit --help SUBCOMMAND`) is `vdkit SUBCOMMAND --help`.
    if (!is_subcommand(args[2], reg)) return unknown_subcommand(args[2], reg);
    args = {args[0], args[2], "--help"};
  } else if (first == "--version") {
    std::printf("%s\n", kVersion);
    return kExitOk;
  } else if (!first.empty() && first[0] == '-') {
    std::fprintf(stderr, "vdkit: unknown option '%s'\nSee 'vdkit --help'.\n", first.c_str());
    return kExitUsage;
  } else if (!is_subcommand(first, reg)) {
    return unknown_subcommand(first, reg);
  }

  CLI::App app{kAbout, "vdkit"};
  auto formatter = std::make_shared<ManualFormatter>();
  formatter->label("Usage", "usage");
  formatter->column_width(32);
  app.formatter(formatter);
  app.require_subcommand(1);
  app.fallthrough(false);
  std::function<int()> run;
  for (auto& spec : reg) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.summary);
    auto runner = std::make_shared<std::function<int()>>(spec.setup(*sub));
    sub->callback([&run, runner] { run = *runner; });
  }
  try {
    std::vector<std::string> rest(args.rbegin(), args.rend() - 1);  // CLI11 takes the arguments reversed
    app.parse(rest);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
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
