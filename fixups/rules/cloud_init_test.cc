// Unit tests for cloud-init's datasource_list.
#include "fixups/rules/cloud_init.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vdkit::fixups {
namespace {

TEST(CloudInit, Datasources) {
  EXPECT_EQ(cloud_init_datasources("datasource_list: [ 'NoCloud', Ec2 ]\n"),
            (std::vector<std::string>{"NoCloud", "Ec2"}));
}

}  // namespace
}  // namespace vdkit::fixups
