// Finding CPython in processes: version checks and load bias on made-up input, then detection in
// real processes: Debian's python3.11 (_PyRuntime in the executable), an embedding program and
// pyenv's interpreters (in libpython), fake interpreters and a process that runs no Python.
#include "collector/python_interpreter.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "target_process.h"
#include "tests/python_interpreters.h"

namespace perfwatch::collector {
namespace {

PythonVersionCheck check(std::optional<std::uint64_t> py_version, std::string name, bool debug = false,
                         bool free_threaded = false) {
  return check_python_version({py_version, std::move(name), debug, free_threaded});
}

TEST(PythonVersion, PyVersionTellsTheVersionWhateverTheFileIsCalled) {
  auto c = check(0x030b02f0, "python3.11");
  EXPECT_EQ(std::tie(c.major, c.minor, c.micro), std::tuple(3, 11, 2));
  EXPECT_EQ(c.layout, find_python_layout(3, 11));
  EXPECT_EQ(c.reason, "");
  c = check(0x030c01f0, "myapp");
  EXPECT_EQ(std::tie(c.major, c.minor, c.micro), std::tuple(3, 12, 1));
  EXPECT_NE(c.layout, nullptr);
}

TEST(PythonVersion, WithoutPyVersionTheFileNameTellsIt) {
  for (const char* name : {"libpython3.10.so.1.0", "python3.10", "libpython3.10d.so"}) {
    auto c = check(std::nullopt, name);
    EXPECT_EQ(std::tie(c.major, c.minor, c.micro), std::tuple(3, 10, -1)) << name;
    EXPECT_EQ(c.layout, find_python_layout(3, 10)) << name;
  }
  auto c = check(std::nullopt, "embedder");
  EXPECT_EQ(c.layout, nullptr);
  EXPECT_EQ(c.reason, "cannot tell the CPython version of embedder (no Py_Version symbol, no version in its name)");
}

TEST(PythonVersion, UnsupportedVersionsAndBuildsAreRefusedWithTheReason) {
  EXPECT_EQ(check(0x030912f0, "python3.9").reason, "CPython 3.9.18 is not supported (supported: 3.10, 3.11, 3.12, 3.13)");
  EXPECT_EQ(check(0x030e00a1, "python3.14").reason, "CPython 3.14.0 is not supported (supported: 3.10, 3.11, 3.12, 3.13)");
  EXPECT_EQ(check(std::nullopt, "libpython3.8.so").reason, "CPython 3.8 is not supported (supported: 3.10, 3.11, 3.12, 3.13)");
  auto debug = check(0x030b02f0, "python3.11d", /*debug=*/true);
  EXPECT_EQ(debug.layout, nullptr);
  EXPECT_EQ(debug.reason, "CPython 3.11.2 is a debug build, whose objects are laid out differently");
  auto threaded = check(0x030d00f0, "python3.13t", false, /*free_threaded=*/true);
  EXPECT_EQ(threaded.layout, nullptr);
  EXPECT_EQ(threaded.reason, "CPython 3.13.0 is a free-threaded build, whose objects are laid out differently");
}

// A file name is whatever the process's owner chose: numbers too large for an int are no version (std::stoi
// threw out of the detector on them).
TEST(PythonVersion, FileNamesWithHugeNumbersAreNoVersion) {
  for (const char* name : {"libpython99999999999999999999.10.so", "libpython3.99999999999999999999.so",
                           "python3.4294967307", "libpython2147483648.1.so"}) {
    PythonVersionCheck c;
    EXPECT_NO_THROW(c = check(std::nullopt, name)) << name;
    EXPECT_EQ(c.layout, nullptr) << name;
    EXPECT_FALSE(c.reason.empty()) << name;
  }
  EXPECT_EQ(check(std::nullopt, "libpython3.10.so.99999999999999999999").layout, find_python_layout(3, 10));
}

TEST(PythonLoadBias, ComesFromAMappingThatStartsASegmentsPage) {
  // A PIE library mapped at 0x7f0000000000; its data segment's page is mapped from offset 0x2000.
  std::vector<LoadSegment> segments = {{0, 0, 0x1000}, {0x1000, 0x1000, 0x800}, {0x2e10, 0x3e10, 0x200}};
  MapEntry text{0x7f0000001000, 0x7f0000002000, 0x1000};
  MapEntry data{0x7f0000003000, 0x7f0000004000, 0x2000};
  EXPECT_EQ(load_bias({text}, segments), 0x7f0000000000u);
  EXPECT_EQ(load_bias({data}, segments), 0x7f0000000000u);
  // A non-PIE executable is where it says it is.
  EXPECT_EQ(load_bias({{0x400000, 0x401000, 0}}, std::vector<LoadSegment>{{0, 0x400000, 0x1000}}), 0u);
  // No mapping of a segment start: unknown rather than a guess.
  EXPECT_EQ(load_bias({{0x7f0000005000, 0x7f0000006000, 0x5000}}, segments), std::nullopt);
}

class PythonDetectorTest : public testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "reading other processes' files and memory needs root"; }
  PythonDetector detector_;
};

// The interpreter found in a running process: the right version, binary, and addresses (the code
// type's, as Python itself reports it, checks the load bias).
void expect_detected(PythonDetector& detector, const std::vector<std::string>& argv, int minor,
                     const std::string& binary_part) {
  test::TargetProcess target(argv);
  ASSERT_TRUE(target.running());
  auto detection = detector.detect(target.pid());
  ASSERT_TRUE(detection) << detection.error().message;
  ASSERT_TRUE(detection->interpreter) << detection->unsupported;
  const PythonInterpreter& i = *detection->interpreter;
  EXPECT_EQ(i.major, 3);
  EXPECT_EQ(i.minor, minor);
  EXPECT_NE(i.binary.find(binary_part), std::string::npos) << i.binary;
  EXPECT_EQ(i.layout, find_python_layout(3, minor));
  EXPECT_EQ(i.code_type, target.address("code_type"));
  EXPECT_NE(i.runtime, 0u);
}

TEST_F(PythonDetectorTest, FindsDebiansPython311InItsExecutable) {
  expect_detected(detector_, {test::kDebianPython, test::kPythonWorkload, "idle"}, 11, "/usr/bin/python3.11");
  test::TargetProcess target({test::kDebianPython, test::kPythonWorkload, "idle"});
  auto detection = detector_.detect(target.pid());
  ASSERT_TRUE(detection && detection->interpreter);
  EXPECT_TRUE(detection->interpreter->version().starts_with("3.11.")) << detection->interpreter->version();
}

TEST_F(PythonDetectorTest, FindsLibpythonOfAnEmbeddingProgram) {
  expect_detected(detector_, {PW_EMBED_PYTHON, test::kPythonWorkload, "idle"}, 11, "libpython3.11.so");
}

TEST_F(PythonDetectorTest, FindsEveryInterpreterOfThisMachine) {
  auto interpreters = test::test_interpreters();
  ASSERT_FALSE(interpreters.empty()) << "Debian's " << test::kDebianPython << " is required";
  for (const auto& interpreter : interpreters) {
    SCOPED_TRACE(interpreter.name);
    expect_detected(detector_, {interpreter.path, test::kPythonWorkload, "idle"}, interpreter.minor, "python3.");
  }
}

TEST_F(PythonDetectorTest, FakeInterpretersAreFoundButNotSupported) {
  test::TargetProcess old({PW_FAKE_PYTHON39, "idle"});
  auto detection = detector_.detect(old.pid());
  ASSERT_TRUE(detection) << detection.error().message;
  EXPECT_FALSE(detection->interpreter);
  EXPECT_EQ(detection->binary, PW_FAKE_PYTHON39);
  EXPECT_EQ(detection->unsupported, "CPython 3.9.18 is not supported (supported: 3.10, 3.11, 3.12, 3.13)");

  test::TargetProcess unknown({PW_FAKE_PYTHON, "idle"});
  detection = detector_.detect(unknown.pid());
  ASSERT_TRUE(detection) << detection.error().message;
  EXPECT_FALSE(detection->interpreter);
  EXPECT_EQ(detection->unsupported,
            "cannot tell the CPython version of pw_fake_python (no Py_Version symbol, no version in its name)");
}

TEST_F(PythonDetectorTest, AProcessWithoutPythonHasNoInterpreterAndAGoneOneIsAnError) {
  auto detection = detector_.detect(getpid());
  ASSERT_TRUE(detection) << detection.error().message;
  EXPECT_FALSE(detection->interpreter);
  EXPECT_EQ(detection->binary, "");
  EXPECT_EQ(detection->unsupported, "");
  EXPECT_FALSE(detector_.detect(0x3fffffff));
}

}  // namespace
}  // namespace perfwatch::collector
