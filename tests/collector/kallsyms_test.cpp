#include "collector/kallsyms.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "collector/symbolizer.h"
#include "target_process.h"

namespace perfwatch::collector {
namespace {

using profile::Frame;
using profile::FrameKind;

constexpr const char* kKallsyms =
    "ffffffff81000000 T _text\n"
    "ffffffff81000000 t local_alias_of_text\n"
    "ffffffff81001000 T vfs_read\n"
    "ffffffff81002000 t helper\n"
    "ffffffff82000000 D some_data\n"  // not code: skipped
    "ffffffff81003000 W weak_fn\n"
    "ffffffffc0001000 t mod_open\t[mymod]\n"
    "ffffffffc0000000 T mod_init\t[mymod]\n"  // module symbols come unsorted
    "ffffffffc0100000 t prog_fn\t[bpf]\n"
    "this line is not kallsyms\n";

TEST(KernelSymbols, ParsesSortsAndNamesModules) {
  KernelSymbols k = KernelSymbols::parse(kKallsyms);
  EXPECT_FALSE(k.addresses_hidden());
  EXPECT_EQ(k.size(), 7u);  // the alias and the data symbol dropped
  auto at = [&](std::uint64_t addr) {
    auto s = k.find(addr);
    return s ? std::string(s->name) + "|" + std::string(s->module) : std::string("none");
  };
  EXPECT_EQ(at(0xffffffff81000010), "_text|");
  EXPECT_EQ(at(0xffffffff81001000), "vfs_read|");
  EXPECT_EQ(at(0xffffffff81001fff), "vfs_read|");
  EXPECT_EQ(at(0xffffffff81003004), "weak_fn|");
  EXPECT_EQ(at(0xffffffffc0000100), "mod_init|mymod");
  EXPECT_EQ(at(0xffffffffc0001100), "mod_open|mymod");
  EXPECT_EQ(at(0xffffffffc0100010), "prog_fn|bpf");
  EXPECT_EQ(at(0xffffffff80ffffff), "none");  // below the lowest symbol
  EXPECT_TRUE(k.covers(0xffffffffc0100000 + KernelSymbols::kLastSymbolReach - 1));
  EXPECT_FALSE(k.covers(0xffffffffc0100000 + KernelSymbols::kLastSymbolReach));
  EXPECT_EQ(at(0xffffffffc0100000 + KernelSymbols::kLastSymbolReach), "none");
}

TEST(KernelSymbols, AllZeroAddressesMeanTheyAreHidden) {
  KernelSymbols k = KernelSymbols::parse(
      "0000000000000000 T _text\n"
      "0000000000000000 T vfs_read\n"
      "0000000000000000 t mod_open\t[mymod]\n");
  EXPECT_TRUE(k.addresses_hidden());
  EXPECT_EQ(k.size(), 0u);
  EXPECT_EQ(k.find(0xffffffff81001000), std::nullopt);
  EXPECT_FALSE(KernelSymbols::parse("").addresses_hidden());
}

TEST(KernelSymbols, LoadFailsForAMissingFile) { EXPECT_FALSE(KernelSymbols::load("/nonexistent/kallsyms")); }

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good());
}

TEST(KernelSymbolize, NamesFramesWithModulesAndLooksUpReturnAddressesMinusOne) {
  test::TempDir dir;
  write_file(dir.file("kallsyms"), kKallsyms);
  SymbolizerOptions options;
  options.kallsyms_path = dir.file("kallsyms");
  Symbolizer s(options);
  std::uint64_t ips[] = {0xffffffff81001000, 0xffffffffc0001010, 0xffffffff81002000, 0x10};
  auto frames = s.symbolize_kernel(ips);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0], (Frame{FrameKind::kernel, "vfs_read", "[kernel]"}));
  EXPECT_EQ(frames[1], (Frame{FrameKind::kernel, "mod_open", "mymod"}));
  // A return address at a symbol's first byte belongs to the call at the end of the one before.
  EXPECT_EQ(frames[2], (Frame{FrameKind::kernel, "vfs_read", "[kernel]"}));
  EXPECT_EQ(frames[3], (Frame{FrameKind::kernel, "[kernel]+0xf", "[kernel]"}));
  EXPECT_EQ(s.stats().unknown_frames, 1u);
  EXPECT_EQ(s.stats().kernel_symbols, 7u);
}

TEST(KernelSymbolize, HiddenAddressesGiveOffsetsNeverWrongNames) {
  test::TempDir dir;
  write_file(dir.file("kallsyms"), "0000000000000000 T _text\n0000000000000000 T vfs_read\n");
  SymbolizerOptions options;
  options.kallsyms_path = dir.file("kallsyms");
  Symbolizer s(options);
  std::uint64_t ips[] = {0xffffffff81001000};
  EXPECT_EQ(s.symbolize_kernel(ips)[0], (Frame{FrameKind::kernel, "[kernel]+0xffffffff81001000", "[kernel]"}));
}

TEST(KernelSymbolize, RereadsKallsymsForAnAddressPastItOnlyAfterTheInterval) {
  test::TempDir dir;
  write_file(dir.file("kallsyms"), kKallsyms);
  SymbolizerOptions eager, patient;
  eager.kallsyms_path = patient.kallsyms_path = dir.file("kallsyms");
  eager.kallsyms_reload_interval = std::chrono::seconds(0);
  patient.kallsyms_reload_interval = std::chrono::hours(1);
  Symbolizer e(eager), p(patient);
  std::uint64_t known[] = {0xffffffff81001000};
  EXPECT_EQ(e.symbolize_kernel(known)[0].name, "vfs_read");
  EXPECT_EQ(p.symbolize_kernel(known)[0].name, "vfs_read");

  // A module loaded since: its address lies past everything read so far.
  write_file(dir.file("kallsyms"), std::string(kKallsyms) + "ffffffffc0200000 t new_fn\t[newmod]\n");
  std::uint64_t in_new_module[] = {0xffffffffc0200040};
  EXPECT_EQ(e.symbolize_kernel(in_new_module)[0], (Frame{FrameKind::kernel, "new_fn", "newmod"}));
  EXPECT_EQ(e.stats().kallsyms_loads, 2u);
  EXPECT_EQ(p.symbolize_kernel(in_new_module)[0].name, "[kernel]+0xffffffffc0200040");
  EXPECT_EQ(p.stats().kallsyms_loads, 1u);
  // Addresses within the table never cause a read.
  e.symbolize_kernel(known);
  EXPECT_EQ(e.stats().kallsyms_loads, 2u);
}

TEST(KernelSymbolize, MissingKallsymsLeavesFramesUnnamed) {
  SymbolizerOptions options;
  options.kallsyms_path = "/nonexistent/kallsyms";
  Symbolizer s(options);
  std::uint64_t ips[] = {0xffffffff81001000, 0xffffffff81001000};
  auto frames = s.symbolize_kernel(ips);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].name, "[kernel]+0xffffffff81001000");
  EXPECT_EQ(frames[1].name, "[kernel]+0xffffffff81000fff");
  EXPECT_EQ(s.stats().kallsyms_loads, 1u);  // not retried for every frame
}

// The real /proc/kallsyms: needs root (kptr_restrict hides addresses from others).
TEST(KernelSymbolize, NamesARealKernelFunction) {
  ASSERT_EQ(geteuid(), 0u) << "this test reads kernel addresses from /proc/kallsyms and needs root";
  std::ifstream in("/proc/kallsyms");
  std::string line;
  std::uint64_t vfs_read = 0;
  while (vfs_read == 0 && std::getline(in, line)) {
    std::istringstream fields(line);
    std::string addr, type, name;
    fields >> addr >> type >> name;
    if (name == "vfs_read" && (type == "T" || type == "t")) vfs_read = std::stoull(addr, nullptr, 16);
  }
  ASSERT_NE(vfs_read, 0u) << "vfs_read not found in /proc/kallsyms (or its address is hidden)";

  Symbolizer s;
  std::uint64_t ips[] = {vfs_read + 4, vfs_read + 1, vfs_read};
  auto frames = s.symbolize_kernel(ips);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], (Frame{FrameKind::kernel, "vfs_read", "[kernel]"}));
  EXPECT_EQ(frames[1], (Frame{FrameKind::kernel, "vfs_read", "[kernel]"}));
  EXPECT_NE(frames[2].name, "vfs_read");  // ip - 1 lies before vfs_read
  EXPECT_GT(s.stats().kernel_symbols, 1000u);
}

}  // namespace
}  // namespace perfwatch::collector
