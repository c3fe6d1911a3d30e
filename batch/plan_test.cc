// Unit tests for plan files: CSV quoting, JSON rows, target names, and errors that name the row and column.
#include "batch/plan.h"

#include <gtest/gtest.h>

#include <fstream>

#include "batch/runner.h"
#include "batch/state.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit::batch {
namespace {

const char* kHeader = "name,disks,output,format,fixup\n";

TEST(PlanCsv, QuotesCrLfAndBlankLines) {
  auto recs = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\r\nx,\"two\nlines\",z\n");
  ASSERT_TRUE(recs.ok()) << recs.status().message();
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_EQ((*recs)[0].fields, (std::vector<std::string>{"a", "b,c", "say \"hi\""}));
  EXPECT_EQ((*recs)[1].fields, (std::vector<std::string>{"x", "two\nlines", "z"}));
  EXPECT_EQ((*recs)[1].line, 3u);
  EXPECT_FALSE(parse_csv("a,\"open\n").ok());
  EXPECT_FALSE(parse_csv("a,\"x\"y\n").ok());
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("plain"), "plain");
}

TEST(Plan, RowsTargetsAndFixupColumns) {
  std::string text = std::string("name,disks,output,format,fixup,network,compression\n") +
                     "web1,web1-disk0.vmdk;/abs/web1-disk1.qcow2,out,qcow2,yes,keep,zstd\n"
                     "db1,nbd://storage/db1,/t,raw,no,,\n";
  auto plan = parse_plan(text, "plan.csv", "/plans");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->guests.size(), 2u);
  const PlanGuest& w = plan->guests[0];
  EXPECT_EQ(w.disks[0].source, "/plans/web1-disk0.vmdk");
  EXPECT_EQ(w.disks[0].target, "/plans/out/web1-disk0.qcow2");
  EXPECT_EQ(w.disks[1].target, "/plans/out/web1-disk1.qcow2");
  EXPECT_EQ(w.compression, "zstd");
  EXPECT_TRUE(w.fixup);
  EXPECT_EQ(w.fixup_options.network, fixups::NetworkMode::kKeep);
  EXPECT_EQ(w.line, 2u);
  EXPECT_EQ(plan->guests[1].disks[0].source, "nbd://storage/db1");
  EXPECT_EQ(plan->guests[1].disks[0].target, "/t/db1-disk0.raw");
}

TEST(Plan, JsonRows) {
  auto plan = parse_plan(R"({"guests": [{"name": "a", "disks": ["x.vmdk", "y.vmdk"], "output": "/o",
                          "format": "raw", "fixup": true, "device-names": "label"}]})",
                         "p.json", "/d");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->guests[0].disks[1].target, "/o/y.raw");
  EXPECT_EQ(plan->guests[0].fixup_options.naming, fixups::DeviceNaming::kLabel);
}

TEST(Plan, ErrorsNameRowAndColumn) {
  auto msg = [](const std::string& text) { return parse_plan(text, "p.csv", "/d").status().message(); };
  EXPECT_EQ(msg("name,disks,output,format,fixup,colour\n"),
            "p.csv: header (line 1), column 6 'colour': unknown column (known: name, disks, output, format, fixup, "
            "compression, sparsify, targets, device-names, network, no-network, backup, kernel, replay-journal, force, no-initramfs)");
  EXPECT_EQ(msg(std::string(kHeader) + "a,x.vmdk,/o,vhd,no\n"),
            "p.csv: row 1 (line 2) 'a', column 'format': 'vhd' is not raw or qcow2");
  EXPECT_EQ(msg(std::string(kHeader) + "a,,/o,raw,no\n"), "p.csv: row 1 (line 2) 'a', column 'disks': is empty");
  EXPECT_EQ(msg(std::string(kHeader) + "a,x.vmdk,/o,raw,no\na,y.vmdk,/o,raw,no\n"),
            "p.csv: row 2, column 'name': 'a' is also the name of row 1");
  EXPECT_EQ(msg(std::string(kHeader) + "a,x.vmdk,/o,raw,no\nb,/other/x.qcow2,/o,raw,no\n"),
            "p.csv: row 2, column 'disks': disk 0 would be written to /o/x.raw, as disk 0 of row 1");
  EXPECT_EQ(msg("name,disks,output,format\n"), "p.csv: header: the required column 'fixup' is missing");
  EXPECT_EQ(msg(std::string(kHeader) + "a,x.vmdk,/o,raw\n"), "p.csv: row 1 (line 2): 4 fields, the header has 5");
  EXPECT_EQ(msg("name,disks,output,format,fixup,network\na,x.vmdk,/o,raw,yes,static\n"),
            "p.csv: row 1 (line 2) 'a', column 'network': network=static: expected dhcp, keep or none");
}

TEST(BatchState, SavedAtomicallyAndBoundToThePlan) {
  std::string path = test::temp_path("batch", "state.json");
  bool existed = true;
  auto st = StateFile::open(path, "f1", existed);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(existed);
  GuestRecord r;
  r.status = GuestStatus::kDone;
  r.targets = {"/o/a.raw"};
  r.bytes_read = 42;
  ASSERT_TRUE(st->put("a", r).ok());
  auto again = StateFile::open(path, "f1", existed);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(existed);
  EXPECT_EQ(again->get("a").status, GuestStatus::kDone);
  EXPECT_EQ(again->get("a").bytes_read, 42u);
  EXPECT_EQ(again->get("b").status, GuestStatus::kPending);
  EXPECT_FALSE(StateFile::open(path, "f2", existed).ok()) << "a state of another plan is refused";
  std::remove(path.c_str());
}

TEST(BatchState, FieldsOfTheWrongTypeAreRefusedNotThrown) {
  std::string path = test::temp_path("batch", "state.json");
  bool existed = false;
  for (const char* text : {R"({"plan-fingerprint": 5, "guests": {}})",
                           R"({"plan-fingerprint": "f1", "guests": {"a": {"status": 3}}})",
                           R"({"plan-fingerprint": "f1", "guests": {"a": {"error": [1]}}})"}) {
    {
      std::ofstream out(path, std::ios::trunc);
      out << text;
    }
    EXPECT_FALSE(StateFile::open(path, "f1", existed).ok()) << text;
  }
  std::remove(path.c_str());
}

TEST(BatchRunner, ThreadsShareTheCores) {
  EXPECT_EQ(threads_per_job(2, 2), 1u);
  EXPECT_EQ(threads_per_job(8, 3), 2u);
  EXPECT_EQ(threads_per_job(2, 8), 1u);
  EXPECT_EQ(threads_per_job(16, 1), 16u);
}

}  // namespace
}  // namespace vdkit::batch
