#include "collector/tracefs.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/bpf/support.h"

namespace perfwatch::collector {
namespace {

class TracefsTest : public test::BpfTest {};

// In a child with a private mount namespace, so that the machine keeps its mounts: there tracefs is
// unmounted, and debugfs too, whose tracing directory automounts tracefs where systemd mounted it.
TEST_F(TracefsTest, MountsTracefsWhenMissing) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    [] {
      ASSERT_EQ(unshare(CLONE_NEWNS), 0);
      ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
      // Lazy unmounts: tracefs files others hold open stay valid. Either may not be mounted at all.
      umount2(kTracefsPath, MNT_DETACH);
      umount2("/sys/kernel/debug", MNT_DETACH);
      ASSERT_FALSE(is_tracefs(kTracefsPath));
      ASSERT_FALSE(is_tracefs(kDebugfsTracingPath)) << "debugfs' tracing would make the mount unnecessary";

      Result<void> mounted = ensure_tracefs_mounted();
      ASSERT_TRUE(mounted.ok()) << mounted.error().message;
      EXPECT_TRUE(is_tracefs(kTracefsPath));

      Result<void> again = ensure_tracefs_mounted();
      EXPECT_TRUE(again.ok());
    }();
    _exit(testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's failures are printed above";
}

}  // namespace
}  // namespace perfwatch::collector
