// ova.xml: the manifest from XML-RPC objects (VM, VBDs in device order, VDIs), entities, empty values, and refusals.
#include "blockcore/xva/ova_xml.h"

#include <gtest/gtest.h>

namespace vdkit::xva {
namespace {

std::string member(const std::string& n, const std::string& v) {
  return "<member><name>" + n + "</name><value>" + v + "</value></member>";
}
std::string obj(const std::string& cls, const std::string& id, const std::string& snap) {
  return "<value><struct>" + member("class", cls) + member("id", id) + member("snapshot", "<struct>" + snap + "</struct>") +
         "</struct></value>";
}
std::string doc(const std::string& objects) {
  return "<?xml version=\"1.0\"?>\n<!-- export -->\n<value><struct>" + member("version", "<struct/>") +
         member("objects", "<array><data>" + objects + "</data></array>") + "</struct></value>";
}

TEST(OvaXml, DisksInDeviceOrderWithNamesAndSizes) {
  std::string x = doc(
      obj("VM", "Ref:1",
          member("name_label", "<string>db &amp; web</string>") + member("is_a_snapshot", "<boolean>0</boolean>") +
              member("VBDs", "<array><data><value>Ref:3</value><value>Ref:2</value><value>Ref:9</value></data></array>")) +
      obj("VBD", "Ref:2", member("VDI", "Ref:5") + member("type", "Disk") + member("userdevice", "1")) +
      obj("VBD", "Ref:3", member("VDI", "Ref:4") + member("type", "Disk") + member("userdevice", "0")) +
      obj("VBD", "Ref:9", member("VDI", "OpaqueRef:NULL") + member("type", "CD") + member("userdevice", "3")) +
      obj("VDI", "Ref:4", member("name_label", "root") + member("virtual_size", "10737418240")) +
      obj("VDI", "Ref:5", member("name_label", "<value/>") + member("virtual_size", "1048576")));
  auto m = parse_ova_xml(x, "t");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->vm_name, "db & web");
  ASSERT_EQ(m->disks.size(), 2u);
  EXPECT_EQ(m->disks[0].ref, "Ref:4");
  EXPECT_EQ(m->disks[0].name, "root");
  EXPECT_EQ(m->disks[0].size, 10737418240u);
  EXPECT_EQ(m->disks[1].ref, "Ref:5");
  EXPECT_EQ(m->disks[1].userdevice, "1");
}

TEST(OvaXml, Refusals) {
  EXPECT_FALSE(parse_ova_xml("<value><struct>", "t").ok());
  EXPECT_FALSE(parse_ova_xml("not xml", "t").ok());
  EXPECT_FALSE(parse_ova_xml(doc(""), "t").ok());  // no disks
  std::string deep = "<value>";
  for (int i = 0; i < 200; ++i) deep += "<array><data><value>";
  auto r = parse_ova_xml(deep, "t");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nest deeper"), std::string::npos) << r.status().message();
  std::string bad_size = doc(obj("VDI", "Ref:4", member("virtual_size", "12x")));
  r = parse_ova_xml(bad_size, "t");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("virtual_size '12x'"), std::string::npos) << r.status().message();
  std::string slash = doc(obj("VDI", "Ref:4/..", member("virtual_size", "1")));
  EXPECT_FALSE(parse_ova_xml(slash, "t").ok());
}

}  // namespace
}  // namespace vdkit::xva
