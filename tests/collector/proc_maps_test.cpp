#include "collector/proc_maps.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

namespace perfwatch::collector {
namespace {

TEST(ProcMaps, ParsesAFileMapping) {
  auto e = parse_maps_line("55d1c0a00000-55d1c0a25000 r-xp 00002000 fd:01 1835029                    /usr/bin/cat");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->start, 0x55d1c0a00000u);
  EXPECT_EQ(e->end, 0x55d1c0a25000u);
  EXPECT_EQ(e->pgoff, 0x2000u);
  EXPECT_TRUE(e->executable);
  EXPECT_EQ(e->dev_major, 0xfdu);
  EXPECT_EQ(e->dev_minor, 1u);
  EXPECT_EQ(e->inode, 1835029u);
  EXPECT_EQ(e->path, "/usr/bin/cat");
  EXPECT_FALSE(e->deleted);
  EXPECT_TRUE(e->file_backed());
  EXPECT_EQ(e->map_files_name(), "55d1c0a00000-55d1c0a25000");
  EXPECT_TRUE(e->same_file(makedev(0xfd, 1), 1835029));
  EXPECT_FALSE(e->same_file(makedev(0xfd, 2), 1835029));
  EXPECT_FALSE(e->same_file(makedev(0xfd, 1), 1835030));
}

TEST(ProcMaps, KeepsSpacesInPathsAndStripsDeleted) {
  auto e = parse_maps_line("7f0000000000-7f0000001000 r-xp 00000000 08:02 42 /opt/my app/bin (deleted)");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->path, "/opt/my app/bin");
  EXPECT_TRUE(e->deleted);
  EXPECT_TRUE(e->executable);
}

TEST(ProcMaps, AnonymousAndPseudoMappings) {
  auto anon = parse_maps_line("7f0000000000-7f0000001000 rwxp 00000000 00:00 0 ");
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->path, "");
  EXPECT_FALSE(anon->file_backed());

  auto vdso = parse_maps_line("7ffd5a1f2000-7ffd5a1f4000 r-xp 00000000 00:00 0                          [vdso]");
  ASSERT_TRUE(vdso);
  EXPECT_EQ(vdso->path, "[vdso]");
  EXPECT_FALSE(vdso->file_backed());

  // " (deleted)" is only a marker on files; a pseudo name keeps what it says.
  auto heap = parse_maps_line("01000000-01021000 rw-p 00000000 00:00 0 [heap]");
  ASSERT_TRUE(heap);
  EXPECT_EQ(heap->path, "[heap]");
  EXPECT_FALSE(heap->executable);
}

TEST(ProcMaps, RejectsMalformedLines) {
  EXPECT_FALSE(parse_maps_line(""));
  EXPECT_FALSE(parse_maps_line("garbage"));
  EXPECT_FALSE(parse_maps_line("7f00-7e00 r-xp 00000000 00:00 0"));       // end before start
  EXPECT_FALSE(parse_maps_line("7f00-7f10 r-xp 0000zz00 00:00 0"));       // bad offset
  EXPECT_FALSE(parse_maps_line("7f00-7f10 r-xp 00000000 0000 0"));        // no minor
  EXPECT_FALSE(parse_maps_line("7f00-7f10 r-xp 00000000 00:00 12x /a"));  // bad inode
  EXPECT_FALSE(parse_maps_line("7f00-7f10 r-x"));
}

TEST(ProcMaps, ParsesAWholeFileSkippingBadLines) {
  auto entries = parse_maps(
      "00400000-00401000 r--p 00000000 08:01 10 /bin/a\n"
      "not a maps line\n"
      "00401000-00402000 r-xp 00001000 08:01 10 /bin/a\n"
      "7f0000000000-7f0000001000 r-xp 00000000 00:00 0 [vdso]");  // no final newline
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_FALSE(entries[0].executable);
  EXPECT_EQ(entries[1].pgoff, 0x1000u);
  EXPECT_EQ(entries[2].path, "[vdso]");
}

}  // namespace
}  // namespace perfwatch::collector
