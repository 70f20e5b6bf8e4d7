// Reading and naming code objects in live Python processes of every interpreter on the machine:
// names, files and lines; the checks that keep a freed-and-reused address from being misnamed;
// the per-process cache and its bound; processes that exit.
#include "collector/python_code.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <map>

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

// Code objects, str and bytes objects laid out as `layout` says, in memory every pid shares.
class FakeCodeMemory final : public ProcessMemory {
 public:
  explicit FakeCodeMemory(const PythonLayout& layout) : layout_(layout) {}

  bool read(std::int32_t, std::uint64_t addr, void* out, std::size_t size) override {
    auto it = regions_.upper_bound(addr);
    if (it == regions_.begin()) return false;
    --it;
    if (addr - it->first + size > it->second.size()) return false;
    std::memcpy(out, it->second.data() + (addr - it->first), size);
    return true;
  }

  // A code object named `name` in `file` with a line table of `table_bytes` bytes: the frame naming it.
  py_frame add_code(const std::string& name, const std::string& file, std::size_t table_bytes) {
    const PythonObjectLayout& o = layout_.objects;
    const py_layout& w = layout_.walker;
    const std::uint64_t name_at = add_str(name), file_at = add_str(file);
    std::vector<std::uint8_t> table(o.bytes_data + table_bytes, 0x80);  // one-unit entries, no line change
    put<std::int64_t>(table, o.bytes_size, static_cast<std::int64_t>(table_bytes));
    const std::uint64_t table_at = add(std::move(table));
    std::vector<std::uint8_t> code(o.code_size);
    const std::uint32_t firstlineno = 10;
    put(code, std::size_t{w.code_tag_base} + w.code_firstlineno, firstlineno);
    put(code, std::size_t{w.code_tag_base} + w.code_filename, file_at);
    put(code, std::size_t{w.code_tag_base} + w.code_name, name_at);
    put(code, std::size_t{w.code_tag_base} + w.code_linetable, table_at);
    if (o.code_qualname != PY_ABSENT) put(code, o.code_qualname, name_at);
    const std::uint64_t code_at = add(std::move(code));
    return {code_at, 0, py_code_tag(firstlineno, file_at, name_at, table_at)};
  }

 private:
  template <typename T>
  static void put(std::vector<std::uint8_t>& bytes, std::size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof value);
  }
  std::uint64_t add(std::vector<std::uint8_t> bytes) {
    const std::uint64_t at = next_;
    next_ += (bytes.size() + 4095) / 4096 * 4096 + 4096;
    regions_.emplace(at, std::move(bytes));
    return at;
  }
  // A compact ASCII str: state kind 1, compact, ascii.
  std::uint64_t add_str(const std::string& text) {
    const PythonObjectLayout& o = layout_.objects;
    // As long as a compact non-ASCII header at least: the reader reads that much first.
    std::vector<std::uint8_t> bytes(std::max<std::size_t>(o.unicode_ascii_data + text.size() + 1, o.unicode_compact_data));
    put<std::uint64_t>(bytes, o.unicode_length, text.size());
    put<std::uint32_t>(bytes, o.unicode_state, (1u << 2) | (1u << 5) | (1u << 6));
    std::memcpy(bytes.data() + o.unicode_ascii_data, text.data(), text.size());
    return add(std::move(bytes));
  }

  const PythonLayout& layout_;
  std::map<std::uint64_t, std::vector<std::uint8_t>> regions_;
  std::uint64_t next_ = 0x10000;
};

// Each code object copies up to 1 MiB of line table out of its process: the cache is bounded by bytes
// over every process together, least recently used out first, and says how many it evicted.
TEST(PythonCodeCache, StaysWithinItsByteBoundAcrossEveryProcess) {
  const PythonLayout* layout = find_python_layout(3, 11);
  ASSERT_NE(layout, nullptr);
  FakeCodeMemory memory(*layout);
  PythonInterpreter python;
  python.layout = layout;
  std::vector<py_frame> frames;
  for (int i = 0; i < 48; ++i) frames.push_back(memory.add_code("f" + std::to_string(i), "/srv/app.py", 256 << 10));
  constexpr std::size_t bound = 2 << 20;
  PythonSymbolizer symbolizer(memory, bound);
  for (std::int32_t pid = 1; pid <= 3; ++pid) {
    symbolizer.add_process({pid, 1}, python);
    symbolizer.prefetch({pid, 1}, std::span(frames).subspan(static_cast<std::size_t>(pid - 1) * 16, 16));
  }
  PythonSymbolizerStats stats = symbolizer.stats();
  EXPECT_EQ(stats.reads, 48u);
  EXPECT_LE(stats.code_bytes, bound);
  EXPECT_GT(stats.code_bytes, bound / 2);
  EXPECT_EQ(stats.evictions, 48u - stats.code_objects);
  // The least recently used went first: the last process's newest is there, the first process's oldest not.
  EXPECT_EQ(symbolizer.symbolize({3, 1}, {&frames[47], 1})[0].name, "f47");
  EXPECT_EQ(symbolizer.stats().reads, 48u);
  EXPECT_EQ(symbolizer.symbolize({1, 1}, {&frames[0], 1})[0].name, "f0");
  EXPECT_EQ(symbolizer.stats().reads, 49u);
  EXPECT_LE(symbolizer.stats().code_bytes, bound);
  // A process released gives its bytes back.
  for (std::int32_t pid = 1; pid <= 3; ++pid) symbolizer.retire_process({pid, 1});
  symbolizer.release_retired();
  EXPECT_EQ(symbolizer.stats().code_bytes, 0u);
  EXPECT_EQ(symbolizer.stats().code_objects, 0u);
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
  PythonSymbolizer symbolizer(memory_, /*max_bytes=*/1024);
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
  EXPECT_LE(symbolizer.stats().code_bytes, 1024u);
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
