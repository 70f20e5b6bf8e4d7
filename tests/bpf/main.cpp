#include <gtest/gtest.h>

#include "collector/tracefs.h"
#include "common/log.h"

namespace {

// As perfwatchd does at start-up: regular tracepoints resolve through tracefs, which some hosts (the
// device machine's kernel) do not mount at boot. An environment, so that listing the tests mounts nothing.
class TracefsEnvironment : public testing::Environment {
 public:
  void SetUp() override {
    auto mounted = perfwatch::collector::ensure_tracefs_mounted();
    ASSERT_TRUE(mounted.ok()) << "cannot mount tracefs: " << mounted.error().message;
  }
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  perfwatch::log::route_libbpf();
  testing::AddGlobalTestEnvironment(new TracefsEnvironment);
  return RUN_ALL_TESTS();
}
