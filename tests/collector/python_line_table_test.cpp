// Line numbers from line tables: hand-made tables of both formats, then every instruction of real
// code objects against what the interpreters that made them say (co_lines()).
#include "collector/python_line_table.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "tests/python_interpreters.h"

namespace perfwatch::collector {
namespace {

std::optional<int> line(LineTableFormat format, std::vector<std::uint8_t> table, int lasti, int firstlineno = 10) {
  return python_line(format, table, firstlineno, lasti);
}

TEST(PythonLineTable, LocationTableOf311AndLater) {
  const std::vector<std::uint8_t> table = {
      0xe9, 0x02,              // no columns, 2 units, line +1
      0x80, 0x05,              // short form, 1 unit, same line
      0xda, 0x04, 0x08,        // one line form +1, 3 units
      0xf8,                    // no location, 1 unit
      0xf0, 0x07, 0x00, 0x01, 0x02,  // long form, 1 unit, line -3
      0xe8, 0x48, 0x03,        // no columns, 1 unit, line +100 (a two-byte varint)
  };
  auto at = [&](int lasti) { return line(LineTableFormat::locations, table, lasti); };
  EXPECT_EQ(at(-1), 10);  // before the first instruction: the first line
  EXPECT_EQ(at(0), 11);
  EXPECT_EQ(at(1), 11);
  EXPECT_EQ(at(2), 11);
  EXPECT_EQ(at(3), 12);
  EXPECT_EQ(at(5), 12);
  EXPECT_EQ(at(6), std::nullopt);  // an instruction without a line
  EXPECT_EQ(at(7), 9);
  EXPECT_EQ(at(8), 109);
  EXPECT_EQ(at(9), std::nullopt);  // past the end
  // Not the start of an entry where one is expected: malformed, no line rather than a wrong one.
  EXPECT_EQ(line(LineTableFormat::locations, {0x05, 0x80}, 0), std::nullopt);
  EXPECT_EQ(line(LineTableFormat::locations, {}, 0), std::nullopt);
}

TEST(PythonLineTable, LineTableOf310) {
  const std::vector<std::uint8_t> table = {
      4,   0,     // bytes 0-3: line 10
      2,   2,     // 4-5: line 12
      2,   0x80,  // 6-7: no line (-128)
      0,   1,     // zero length: line 13, covers nothing
      254, 0,     // 8-261: line 13
      2,   0xfd,  // 262-263: line 10 (-3)
  };
  auto at = [&](int lasti) { return line(LineTableFormat::pep626, table, lasti); };
  EXPECT_EQ(at(0), 10);
  EXPECT_EQ(at(1), 10);
  EXPECT_EQ(at(2), 12);
  EXPECT_EQ(at(3), std::nullopt);
  EXPECT_EQ(at(4), 13);
  EXPECT_EQ(at(130), 13);
  EXPECT_EQ(at(131), 10);
  EXPECT_EQ(at(132), std::nullopt);
  EXPECT_EQ(at(-1), 10);
}

TEST(PythonLineTable, AgreesWithEveryInterpreterOnEveryInstruction) {
  auto interpreters = test::test_interpreters();
  ASSERT_FALSE(interpreters.empty()) << "no CPython found; Debian's " << test::kDebianPython << " is required";
  EXPECT_EQ(interpreters.front().path, test::kDebianPython) << "Debian's python3.11 is required";
  for (const auto& interpreter : interpreters) {
    SCOPED_TRACE(interpreter.name);
    LineTableFormat format = interpreter.minor >= 11 ? LineTableFormat::locations : LineTableFormat::pep626;
    std::string command = interpreter.path + " " + PW_DUMP_LINE_TABLES;
    std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), pclose);
    ASSERT_TRUE(pipe);
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = fread(buf, 1, sizeof buf, pipe.get())) > 0;) out.append(buf, n);
    std::istringstream lines(out);
    std::string header, ranges;
    int code_objects = 0, checked = 0;
    while (std::getline(lines, header) && std::getline(lines, ranges)) {
      ++code_objects;
      std::istringstream h(header);
      int firstlineno = 0;
      std::string hex;
      h >> firstlineno >> hex;
      std::vector<std::uint8_t> table;
      for (std::size_t i = 0; i + 1 < hex.size(); i += 2) table.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
      std::istringstream r(ranges);
      for (std::string range; r >> range;) {
        int start = 0, end = 0, expected = 0;
        ASSERT_EQ(std::sscanf(range.c_str(), "%d:%d:%d", &start, &end, &expected), 3) << range;
        for (int lasti = start / 2; lasti < end / 2; ++lasti, ++checked) {
          std::optional<int> got = python_line(format, table, firstlineno, lasti);
          EXPECT_EQ(got.value_or(-1), expected) << "instruction " << lasti << " of the code object at line " << firstlineno;
        }
      }
    }
    EXPECT_GE(code_objects, 7) << out;
    EXPECT_GT(checked, 100);
  }
}

}  // namespace
}  // namespace perfwatch::collector
