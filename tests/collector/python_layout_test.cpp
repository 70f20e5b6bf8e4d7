// The CPython layouts: the table against every set of CPython headers this machine has.
#include "collector/python_layout.h"

#include <gtest/gtest.h>

#include <string_view>

namespace perfwatch::collector {
namespace {

// Generated at build time from every CPython include directory found (python_layouts.cmake):
// Debian's python3.11-dev, and pyenv's versions where present.
constexpr PythonLayout kFromAllHeaders[] = {
#include "python_layouts_all.inc"
    PythonLayout{0, 0, {}, {}, ""},
};

const PythonLayout* table_entry(int major, int minor) {
  for (const PythonLayout& l : python_layout_table())
    if (l.major == major && l.minor == minor) return &l;
  return nullptr;
}

TEST(PythonLayout, TheTableMatchesEveryCPythonHeaderDirectoryOfThisMachine) {
  std::span headers(kFromAllHeaders, std::size(kFromAllHeaders) - 1);
  ASSERT_FALSE(headers.empty()) << "no CPython headers with internal ones were found: install python3.11-dev";
  bool debian = false;
  for (const PythonLayout& h : headers) {
    SCOPED_TRACE(h.source);
    const PythonLayout* table = table_entry(h.major, h.minor);
    ASSERT_NE(table, nullptr) << "no table entry for CPython " << h.major << "." << h.minor;
    EXPECT_TRUE(table->walker == h.walker);
    EXPECT_TRUE(table->objects == h.objects);
    debian |= std::string_view(h.source) == "/usr/include/python3.11";
  }
  EXPECT_TRUE(debian) << "python3.11-dev's headers in /usr/include/python3.11 were not used";
}

TEST(PythonLayout, TheSystemsHeadersComeBeforeTheTable) {
  const PythonLayout* l = find_python_layout(3, 11);
  ASSERT_NE(l, nullptr);
  EXPECT_STREQ(l->source, "/usr/include/python3.11");
  EXPECT_STREQ(find_python_layout(3, 12)->source, "table");
}

TEST(PythonLayout, OnlyVersionsWithALayoutAreSupported) {
  for (int minor : {10, 11, 12, 13}) EXPECT_NE(find_python_layout(3, minor), nullptr) << minor;
  for (auto [major, minor] : {std::pair{3, 9}, {3, 14}, {2, 7}, {4, 0}}) EXPECT_EQ(find_python_layout(major, minor), nullptr);
  EXPECT_EQ(supported_python_versions(), "3.10, 3.11, 3.12, 3.13");
}

TEST(PythonLayout, TheWalkersArrayHoldsEveryLayoutOnce) {
  auto layouts = python_walker_layouts();
  EXPECT_LE(layouts.size(), std::size_t{PY_MAX_LAYOUTS});
  for (int minor : {10, 11, 12, 13}) {
    const PythonLayout* l = find_python_layout(3, minor);
    auto index = python_walker_index(*l);
    ASSERT_TRUE(index) << minor;
    EXPECT_EQ(layouts[*index], l);
  }
}

// The walker reads a fixed number of bytes of each frame and code object and picks fields out
// of them: every field it uses must lie inside what it reads.
TEST(PythonLayout, EveryFieldTheWalkerUsesLiesInsideWhatItReads) {
  for (const PythonLayout* l : python_walker_layouts()) {
    SCOPED_TRACE(std::to_string(l->major) + "." + std::to_string(l->minor));
    const py_layout& w = l->walker;
    EXPECT_LE(w.frame_read, PY_FRAME_CHUNK);
    EXPECT_LE(w.code_read, PY_CODE_CHUNK);
    EXPECT_LE(w.frame_code + 8, w.frame_read);
    EXPECT_LE(w.frame_previous + 8, w.frame_read);
    EXPECT_LE(w.frame_instr + ((w.flags & PY_LAYOUT_LASTI_INDEX) ? 4 : 8), w.frame_read);
    if (w.frame_owner != PY_ABSENT) {
      EXPECT_LT(w.frame_owner, w.frame_read);
    }
    if (w.frame_is_entry != PY_ABSENT) {
      EXPECT_LT(w.frame_is_entry, w.frame_read);
    }
    EXPECT_LE(w.code_firstlineno + 4, w.code_read);
    for (auto field : {w.code_filename, w.code_name, w.code_linetable}) EXPECT_LE(field + 8, w.code_read);
    EXPECT_LE(std::size_t{w.code_tag_base} + w.code_read, l->objects.code_size);
    EXPECT_EQ(w.frame_owner == PY_ABSENT, l->minor < 11);
    EXPECT_EQ(w.owner_cstack != 0xff, l->minor >= 12);
  }
}

}  // namespace
}  // namespace perfwatch::collector
