#include "collector/tracefs.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include "tests/bpf/support.h"

namespace perfwatch::collector {
namespace {

class TracefsTest : public test::BpfTest {};

TEST_F(TracefsTest, MountsTracefsWhenMissing) {
  // Lazy unmount: tracefs files others hold open stay valid.
  if (is_tracefs(kTracefsPath)) {
    ASSERT_EQ(umount2(kTracefsPath, MNT_DETACH), 0);
  }
  ASSERT_FALSE(is_tracefs(kTracefsPath));
  ASSERT_FALSE(is_tracefs(kDebugfsTracingPath)) << "debugfs' tracing would make the mount unnecessary";

  Result<void> mounted = ensure_tracefs_mounted();
  ASSERT_TRUE(mounted.ok()) << mounted.error().message;
  EXPECT_TRUE(is_tracefs(kTracefsPath));

  Result<void> again = ensure_tracefs_mounted();
  EXPECT_TRUE(again.ok());
}

}  // namespace
}  // namespace perfwatch::collector
