// Reading and naming code objects in live Python processes of every interpreter on the machine:
// names, files and lines; the checks that keep a freed-and-reused address from being misnamed;
// the per-process cache and its bound; processes that exit.
#include "collector/python_code.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "target_process.h"
#include "tests/python_interpreters.h"

namespace perfwatch::collector {
namespace {

std::uint32_t tag_of(const test::TargetProcess& t, const std::string& prefix) {
  return py_code_tag(static_cast<std::uint32_t>(t.address(prefix + ".firstlineno")), t.address(prefix + ".filename"),
                     t.address(prefix + ".name"), t.address(prefix + ".linetable"));
}

py_frame frame_of(const test::TargetProcess& t, const std::string& prefix, std::int32_t lasti = -1) {
  return {t.address(prefix + ".code"), lasti, tag_of(t, prefix)};
}

class PythonCodeTest : public testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "reading other processes' memory needs root"; }

  PythonInterpreter detect(const test::TargetProcess& target) {
    auto detection = detector_.detect(target.pid());
    EXPECT_TRUE(detection && detection->interpreter);
    return detection && detection->interpreter ? *detection->interpreter : PythonInterpreter{};
  }

  LiveProcessMemory memory_;
  PythonDetector detector_;
};

TEST_F(PythonCodeTest, ReadsCodeObjectsOfEveryInterpreter) {
  auto interpreters = test::test_interpreters();
  ASSERT_FALSE(interpreters.empty()) << "Debian's " << test::kDebianPython << " is required";
  for (const auto& interpreter : interpreters) {
    SCOPED_TRACE(interpreter.name);
    test::TargetProcess target({interpreter.path, test::kPythonWorkload, "idle"});
    ASSERT_TRUE(target.running());
    PythonInterpreter python = detect(target);
    ASSERT_NE(python.layout, nullptr);
    auto read = read_python_code(memory_, target.pid(), python, target.address("hot_a.code"), tag_of(target, "hot_a"));
    ASSERT_TRUE(std::holds_alternative<PythonCode>(read)) << static_cast<int>(std::get<PythonCodeError>(read));
    const PythonCode& code = std::get<PythonCode>(read);
    EXPECT_EQ(code.qualname, "hot_a");
    EXPECT_EQ(code.filename, test::kPythonWorkload);
    EXPECT_EQ(code.firstlineno, static_cast<int>(target.address("hot_a.firstlineno")));
    EXPECT_FALSE(code.linetable.empty());
    // Before its first instruction a frame is at the function's first line; its body is below.
    EXPECT_EQ(python_location(code, *python.layout, -1), test::kPythonWorkload + ":" + std::to_string(code.firstlineno));
    EXPECT_EQ(python_location(code, *python.layout, 4), test::kPythonWorkload + ":" + std::to_string(code.firstlineno + 1));
  }
}

TEST_F(PythonCodeTest, RefusesWhatIsNotTheCodeObjectTheWalkerSaw) {
  test::TargetProcess target({test::kDebianPython, test::kPythonWorkload, "idle"});
  PythonInterpreter python = detect(target);
  ASSERT_NE(python.layout, nullptr);
  auto error = [&](std::uint64_t address, std::uint32_t tag) {
    auto read = read_python_code(memory_, target.pid(), python, address, tag);
    return std::holds_alternative<PythonCodeError>(read) ? std::optional(std::get<PythonCodeError>(read)) : std::nullopt;
  };
  std::uint32_t tag = tag_of(target, "hot_a");
  EXPECT_EQ(error(target.address("hot_a.code"), tag ^ 1), PythonCodeError::reused);
  EXPECT_EQ(error(target.address("code.hot_b"), tag), PythonCodeError::reused);   // another code object
  EXPECT_EQ(error(target.address("hot_a.filename"), tag), PythonCodeError::wrong_type);  // a str
  EXPECT_EQ(error(0x10, tag), PythonCodeError::unreadable);
}

TEST_F(PythonCodeTest, AFreedAndReusedAddressIsNeverMisnamed) {
  test::TargetProcess target({test::kDebianPython, test::kPythonWorkload, "reuse"});
  PythonInterpreter python = detect(target);
  ASSERT_NE(python.layout, nullptr);
  ProcessKey key{target.pid(), 1};
  PythonSymbolizer cached(memory_);
  cached.add_process(key, python);
  py_frame first = frame_of(target, "first");
  cached.prefetch(key, {&first, 1});  // as when the walker announces the stack

  ASSERT_TRUE(target.command("next"));
  ASSERT_EQ(target.address("reused"), 1u) << "CPython did not reuse the freed code object's memory";
  py_frame second = frame_of(target, "second");
  ASSERT_EQ(first.code, second.code);
  ASSERT_NE(first.tag, second.tag);

  // Read before it was freed: still "first". Read now: "second", under its own tag.
  auto names = cached.symbolize(key, std::vector<py_frame>{first, second});
  EXPECT_EQ(names[0].name, "first");
  EXPECT_EQ(names[0].module, "generated.py:11");
  EXPECT_EQ(names[1].name, "second");
  EXPECT_EQ(names[1].module, "generated.py:21");
  // Never read before it was freed: the reuse is noticed, the frame stays unnamed.
  PythonSymbolizer late(memory_);
  late.add_process(key, python);
  EXPECT_EQ(late.symbolize(key, {&first, 1})[0].name, "[unknown python code]");
  EXPECT_EQ(late.stats().reused, 1u);
}

TEST_F(PythonCodeTest, CachesPerProcessWithinItsBoundAndOutlivesTheProcess) {
  test::TargetProcess target({test::kDebianPython, test::kPythonWorkload, "idle"});
  PythonInterpreter python = detect(target);
  ASSERT_NE(python.layout, nullptr);
  ProcessKey key{target.pid(), 1};
  PythonSymbolizer symbolizer(memory_, /*max_code_objects=*/4);
  symbolizer.add_process(key, python);
  py_frame hot_a = frame_of(target, "hot_a", 4);
  auto frames = symbolizer.symbolize(key, {&hot_a, 1});
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].kind, profile::FrameKind::python);
  EXPECT_EQ(frames[0].name, "hot_a");
  EXPECT_EQ(symbolizer.stats().reads, 1u);
  symbolizer.symbolize(key, {&hot_a, 1});
  EXPECT_EQ(symbolizer.stats().reads, 1u);
  EXPECT_EQ(symbolizer.stats().cache_hits, 1u);

  // More code objects than the bound: the least recently used go, the cache stays within it.
  for (const char* name : {"spin", "burn", "hot_b", "hot_c", "via_a", "via_b", "via_c", "split"}) {
    py_frame f{target.address(std::string("code.") + name), 0, 0};
    symbolizer.prefetch(key, {&f, 1});
    symbolizer.symbolize(key, {&hot_a, 1});  // keeps hot_a recently used
  }
  EXPECT_LE(symbolizer.stats().code_objects, 4u);
  EXPECT_GT(symbolizer.stats().evictions, 0u);

  // The process exits: what was read still names its frames; what was not cannot be read.
  target.kill();
  EXPECT_EQ(symbolizer.symbolize(key, {&hot_a, 1})[0].name, "hot_a");
  py_frame unread{hot_a.code + 64, 0, hot_a.tag};
  EXPECT_EQ(symbolizer.symbolize(key, {&unread, 1})[0].name, "[unknown python code]");
  EXPECT_EQ(symbolizer.stats().unreadable, 1u);
  EXPECT_EQ(symbolizer.stats().reused, 8u);  // the eight frames above had made-up tags

  // Released with the window after it was retired.
  symbolizer.retire_process(key);
  EXPECT_NE(symbolizer.interpreter(key), nullptr);
  symbolizer.release_retired();
  EXPECT_EQ(symbolizer.interpreter(key), nullptr);
  EXPECT_EQ(symbolizer.symbolize(key, {&hot_a, 1})[0].name, "[unknown python code]");
}

}  // namespace
}  // namespace perfwatch::collector
