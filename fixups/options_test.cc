// Unit tests for the one fixup option parser: values, the --no-network alias, flags as plan-file columns, errors.
#include "fixups/options.h"

#include <gtest/gtest.h>

namespace vdkit::fixups {
namespace {

TEST(FixupOptions, DefaultsAreUuidDhcpNoBackup) {
  FixupOptions o;
  EXPECT_EQ(o.naming, DeviceNaming::kUuid);
  EXPECT_EQ(o.network, NetworkMode::kDhcp);
  EXPECT_FALSE(o.backup);
  EXPECT_TRUE(o.network_edits());
  EXPECT_EQ(o.addressing(), Addressing::kToDhcp);
}

TEST(FixupOptions, EveryValueParses) {
  FixupOptions o;
  for (auto [v, want] : {std::pair{"uuid", DeviceNaming::kUuid}, {"label", DeviceNaming::kLabel},
                         {"vd", DeviceNaming::kVd}}) {
    ASSERT_TRUE(set_fixup_option(o, "device-names", v).ok());
    EXPECT_EQ(o.naming, want);
    EXPECT_STREQ(to_string(o.naming), v);
  }
  for (auto [v, want] : {std::pair{"dhcp", NetworkMode::kDhcp}, {"keep", NetworkMode::kKeep},
                         {"none", NetworkMode::kNone}}) {
    ASSERT_TRUE(set_fixup_option(o, "network", v).ok());
    EXPECT_EQ(o.network, want);
    EXPECT_STREQ(to_string(o.network), v);
  }
  ASSERT_TRUE(set_fixup_option(o, "network", "keep").ok());
  EXPECT_TRUE(o.network_edits());
  EXPECT_EQ(o.addressing(), Addressing::kKeep);
}

TEST(FixupOptions, NoNetworkIsNetworkNone) {
  FixupOptions o;
  ASSERT_TRUE(set_fixup_option(o, "no-network", "").ok());
  EXPECT_EQ(o.network, NetworkMode::kNone);
  EXPECT_FALSE(o.network_edits());
  FixupOptions p;
  ASSERT_TRUE(set_fixup_option(p, "no-network", "false").ok());  // a plan-file column saying no
  EXPECT_EQ(p.network, NetworkMode::kDhcp);
}

TEST(FixupOptions, FlagsTakePlanFileBooleans) {
  FixupOptions o;
  for (const char* yes : {"", "true", "yes", "1"}) {
    o.backup = false;
    ASSERT_TRUE(set_fixup_option(o, "backup", yes).ok()) << yes;
    EXPECT_TRUE(o.backup) << yes;
  }
  for (const char* no : {"false", "no", "0"}) {
    o.backup = true;
    ASSERT_TRUE(set_fixup_option(o, "backup", no).ok()) << no;
    EXPECT_FALSE(o.backup) << no;
  }
}

TEST(FixupOptions, SecondRoundFlags) {
  FixupOptions o;
  EXPECT_FALSE(o.kernel);
  EXPECT_FALSE(o.replay_journal);
  EXPECT_FALSE(o.force);
  EXPECT_TRUE(o.initramfs);
  ASSERT_TRUE(set_fixup_option(o, "kernel", "").ok());
  ASSERT_TRUE(set_fixup_option(o, "replay-journal", "yes").ok());
  ASSERT_TRUE(set_fixup_option(o, "force", "1").ok());
  ASSERT_TRUE(set_fixup_option(o, "no-initramfs", "").ok());
  EXPECT_TRUE(o.kernel);
  EXPECT_TRUE(o.replay_journal);
  EXPECT_TRUE(o.force);
  EXPECT_FALSE(o.initramfs);
}

TEST(FixupOptions, ErrorsNameTheOptionAndWhatItTakes) {
  FixupOptions o;
  Status st = set_fixup_option(o, "network", "static");
  EXPECT_EQ(st.code(), EINVAL);
  EXPECT_EQ(st.message(), "network=static: expected dhcp, keep or none");
  st = set_fixup_option(o, "device-names", "path");
  EXPECT_EQ(st.message(), "device-names=path: expected uuid, label or vd");
  st = set_fixup_option(o, "backup", "maybe");
  EXPECT_EQ(st.message(), "backup=maybe: expected true or false");
  st = set_fixup_option(o, "colour", "blue");
  EXPECT_EQ(st.message(), "unknown fixup option 'colour' (known: device-names, network, no-network, backup, kernel, replay-journal, force, no-initramfs)");
  EXPECT_EQ(o.network, NetworkMode::kDhcp) << "a refused value changes nothing";
}

TEST(FixupOptions, TheTableListsEveryOptionTheParserTakes) {
  for (const auto& spec : fixup_option_specs()) {
    FixupOptions o;
    std::string value = spec.values.empty() ? "" : spec.values.front();
    EXPECT_TRUE(set_fixup_option(o, spec.name, value).ok()) << spec.name;
    EXPECT_FALSE(spec.help.empty()) << spec.name;
  }
}

}  // namespace
}  // namespace vdkit::fixups
