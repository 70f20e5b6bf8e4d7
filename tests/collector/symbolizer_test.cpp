// The symbolizer against real processes running the test programs (programs/): PIE and non-PIE
// executables, a shared library, stripped copies, deleted and replaced binaries, another mount
// namespace, dlopen after the snapshot. Needs root (map_files, mount namespaces).
#include "collector/symbolizer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include "target_process.h"

namespace perfwatch::collector {
namespace {

using profile::Frame;
using profile::FrameKind;
using test::TargetProcess;
using test::TempDir;

class SymbolizerTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the symbolizer tests read other processes' /proc/PID/map_files and create "
                                "mount namespaces: run them as root";
  }

  // The frames for a target's printed addresses, as a leaf frame each (no ip - 1).
  static std::vector<Frame> leaf_frames(Symbolizer& s, ProcessKey key, const TargetProcess& target,
                                        std::initializer_list<const char*> names) {
    std::vector<Frame> frames;
    for (const char* name : names) {
      std::uint64_t ip = target.address(name);
      frames.push_back(s.symbolize_user(key, std::span(&ip, 1)).at(0));
    }
    return frames;
  }

  static std::string hex(std::uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
  }
};

Frame native(std::string name, std::string module) {
  return Frame{FrameKind::native, std::move(name), std::move(module)};
}

// Maps name files by their resolved path.
std::string real(const char* path) { return std::filesystem::canonical(path).string(); }

// The names every target program gives its printed functions.
void expect_target_names(Symbolizer& s, ProcessKey key, const TargetProcess& target, const std::string& path) {
  // Leaf first: the others are looked up at ip - 1, so function starts get + 1 to stay inside.
  std::uint64_t ips[] = {target.address("leaf"),           target.address("outer_return"),
                         target.address("library_return"), target.address("compute") + 1,
                         target.address("twice") + 1,      target.address("static") + 1};
  auto frames = s.symbolize_user(key, ips);
  ASSERT_EQ(frames.size(), std::size(ips));
  EXPECT_EQ(frames[0], native("pw_leaf", path));
  EXPECT_EQ(frames[1], native("pw_outer", path));
  EXPECT_EQ(frames[2], native("pwlib::library_caller()", real(PW_TARGET_LIB)));
  EXPECT_EQ(frames[3], native("pwtest::compute(long)", path));
  EXPECT_EQ(frames[4], native("long pwtest::twice<long>(long)", path));
  EXPECT_EQ(frames[5], native("static_function(int)", path));
}

TEST_F(SymbolizerTest, NamesFunctionsOfAPieExecutableAndItsLibrary) {
  TargetProcess target({PW_TARGET_PIE});
  ASSERT_TRUE(target.running());
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  expect_target_names(s, key, target, real(PW_TARGET_PIE));
  EXPECT_NE(target.address("bias"), 0u);  // it is position-independent
  EXPECT_EQ(s.stats().unknown_frames, 0u);
}

TEST_F(SymbolizerTest, NamesFunctionsOfANonPieExecutable) {
  TargetProcess target({PW_TARGET_NOPIE});
  ASSERT_TRUE(target.running());
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  expect_target_names(s, key, target, real(PW_TARGET_NOPIE));
  EXPECT_EQ(target.address("bias"), 0u);
}

TEST_F(SymbolizerTest, ReturnAddressesAreLookedUpMinusOne) {
  TargetProcess target({PW_TARGET_PIE});
  ASSERT_TRUE(target.running());
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  std::uint64_t start = target.address("compute");
  std::uint64_t ips[] = {start, start};
  auto frames = s.symbolize_user(key, ips);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].name, "pwtest::compute(long)");  // the leaf: the ip itself
  // As a return address, the function's first byte means a call ending just before it.
  EXPECT_NE(frames[1].name, "pwtest::compute(long)");
  EXPECT_EQ(frames[1].module, real(PW_TARGET_PIE));
}

TEST_F(SymbolizerTest, NamesVdsoFunctions) {
  TargetProcess target({PW_TARGET_PIE});
  ASSERT_TRUE(target.running());
  ASSERT_NE(target.address("vdso_clock_gettime"), 0u) << "the target found no vDSO";
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  EXPECT_EQ(leaf_frames(s, key, target, {"vdso_clock_gettime"})[0], native("__vdso_clock_gettime", "[vdso]"));
}

TEST_F(SymbolizerTest, UnnamedAddressesAreModulePlusOffsetNeverDropped) {
  TargetProcess target({PW_TARGET_STRIPPED});
  ASSERT_TRUE(target.running());
  SymbolizerOptions options;
  options.debug_dirs = {};
  Symbolizer s(options);
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  std::uint64_t bias = target.address("bias");
  std::uint64_t ips[] = {target.address("static"), target.address("anon_exec") + 0x20, 0x10,
                         target.address("leaf") + 1};
  auto frames = s.symbolize_user(key, ips);
  ASSERT_EQ(frames.size(), 4u);
  // Stripped: the static function is in no symbol table; its ELF virtual address stands in.
  EXPECT_EQ(frames[0], native("pw_target_stripped+" + hex(target.address("static") - bias), real(PW_TARGET_STRIPPED)));
  // Non-leaf frames are named by ip - 1.
  EXPECT_EQ(frames[1], native("[anon]+" + hex(target.address("anon_exec") + 0x1f), "[anon]"));
  EXPECT_EQ(frames[2], native("[unknown]+0xf", "[unknown]"));
  // Exported functions are still named, through .dynsym.
  EXPECT_EQ(frames[3], native("pw_leaf", real(PW_TARGET_STRIPPED)));
  EXPECT_EQ(s.stats().unknown_frames, 3u);

  // A process never added: every frame is kept, unnamed.
  std::uint64_t one[] = {0x1234};
  EXPECT_EQ(s.symbolize_user({target.pid(), 2}, one), std::vector<Frame>{native("[unknown]+0x1234", "[unknown]")});
}

TEST_F(SymbolizerTest, FindsSeparateDebugInfoByBuildId) {
  TargetProcess target({PW_TARGET_STRIPPED});
  ASSERT_TRUE(target.running());
  SymbolizerOptions options;
  options.debug_dirs = {"/nonexistent", PW_DEBUG_ROOT};
  Symbolizer s(options);
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  expect_target_names(s, key, target, real(PW_TARGET_STRIPPED));
  EXPECT_EQ(s.stats().debug_files, 1u);
}

TEST_F(SymbolizerTest, FindsSeparateDebugInfoThroughDebuglink) {
  TargetProcess target({PW_TARGET_DEBUGLINK});
  ASSERT_TRUE(target.running());
  SymbolizerOptions options;
  options.debug_dirs = {};
  Symbolizer s(options);
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  expect_target_names(s, key, target, real(PW_TARGET_DEBUGLINK));
  EXPECT_EQ(s.stats().debug_files, 1u);
}

TEST_F(SymbolizerTest, IgnoresADebuglinkFileWithTheWrongCrc) {
  TempDir dir;
  std::string binary = dir.file("pw_target_debuglink");
  test::install_copy(PW_TARGET_DEBUGLINK, binary);
  // Named as the link says, but another file: a stale debug file left beside a rebuilt binary.
  test::install_copy(PW_TARGET_NOBUILDID, dir.file("pw_target_debuglink.debug"));
  TargetProcess target({binary});
  ASSERT_TRUE(target.running());
  SymbolizerOptions options;
  options.debug_dirs = {};
  Symbolizer s(options);
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  auto frames = leaf_frames(s, key, target, {"static", "leaf"});
  EXPECT_EQ(frames[0].name, "pw_target_debuglink+" + hex(target.address("static") - target.address("bias")));
  EXPECT_EQ(frames[1].name, "pw_leaf");
  EXPECT_EQ(s.stats().debug_files, 0u);
}

// Runs `body` in a child process: true when it exited 0 within `limit`, false when it blocked (then it is
// killed) or failed. A blocked open() cannot be interrupted from another thread, so a child it is.
bool finishes_within(const std::function<bool()>& body, std::chrono::seconds limit) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body() ? 0 : 1);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return false;
}

// A copy of the debuglinked target whose .gnu_debuglink names `link` instead (NUL-padded in place).
void install_with_debuglink(const std::string& to, const std::string& link) {
  std::ifstream in(PW_TARGET_DEBUGLINK, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string name = "pw_target_debuglink.debug";
  const std::size_t at = bytes.find(name + std::string(1, '\0'));
  ASSERT_NE(at, std::string::npos);
  ASSERT_LE(link.size(), name.size());
  bytes.replace(at, name.size(), link + std::string(name.size() - link.size(), '\0'));
  std::ofstream(to + ".new", std::ios::binary) << bytes;
  std::filesystem::permissions(to + ".new", std::filesystem::perms(0755));
  std::filesystem::rename(to + ".new", to);
}

// What a target names (its .gnu_debuglink) is opened without blocking, only if it is a regular file, and
// only below the binary's directory: a FIFO there, a link to one elsewhere, or a name that climbs out
// (`../`) used to block the event loop in open() until the watchdog killed perfwatchd.
TEST_F(SymbolizerTest, ADebuglinkNeverBlocksNorLeavesTheBinarysDirectory) {
  struct Case {
    const char* what;
    std::function<void(const TempDir&, const std::string& binary)> set_up;
  };
  const Case cases[] = {
      {"a FIFO named as the link",
       [](const TempDir&, const std::string& binary) {
         test::install_copy(PW_TARGET_DEBUGLINK, binary);
         ASSERT_EQ(mkfifo((binary + ".debug").c_str(), 0600), 0);
       }},
      {"a FIFO in the binary's .debug/",
       [](const TempDir& dir, const std::string& binary) {
         test::install_copy(PW_TARGET_DEBUGLINK, binary);
         std::filesystem::create_directory(dir.file("sub/.debug"));
         ASSERT_EQ(mkfifo(dir.file("sub/.debug/pw_target_debuglink.debug").c_str(), 0600), 0);
       }},
      {"a link named as the debuglink to a FIFO outside the directory",
       [](const TempDir& dir, const std::string& binary) {
         test::install_copy(PW_TARGET_DEBUGLINK, binary);
         ASSERT_EQ(mkfifo(dir.file("fifo").c_str(), 0600), 0);
         std::filesystem::create_symlink("../fifo", binary + ".debug");
       }},
      {"a debuglink climbing out of the directory to a FIFO",
       [](const TempDir& dir, const std::string& binary) {
         install_with_debuglink(binary, "../fifo");
         ASSERT_EQ(mkfifo(dir.file("fifo").c_str(), 0600), 0);
       }},
      {"a debuglink naming /proc/kmsg",
       [](const TempDir&, const std::string& binary) {
         install_with_debuglink(binary, "../../../../../proc/kmsg");
       }},
      {"a link named as the debuglink to the right debug file elsewhere",
       [](const TempDir&, const std::string& binary) {
         test::install_copy(PW_TARGET_DEBUGLINK, binary);
         std::filesystem::create_symlink(std::string(PW_TARGET_DEBUGLINK) + ".debug", binary + ".debug");
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir dir;
    std::filesystem::create_directory(dir.file("sub"));
    const std::string binary = dir.file("sub/pw_target_debuglink");
    c.set_up(dir, binary);
    if (HasFatalFailure()) return;
    TargetProcess target({binary});
    ASSERT_TRUE(target.running());
    const bool finished = finishes_within([&] {
      SymbolizerOptions options;
      options.debug_dirs = {};
      Symbolizer s(options);
      if (!s.add_process({target.pid(), 1})) return false;
      std::uint64_t ip = target.address("leaf");
      // Named from .dynsym only: no debug file was used.
      return s.symbolize_user({target.pid(), 1}, std::span(&ip, 1)).at(0).name == "pw_leaf" &&
             s.stats().debug_files == 0;
    }, std::chrono::seconds(10));
    EXPECT_TRUE(finished) << "blocked, or used what the debuglink named";
  }
}

TEST_F(SymbolizerTest, BinaryDeletedAfterAddProcess) {
  TempDir dir;
  std::string path = dir.file("prog");
  test::install_copy(PW_TARGET_PIE, path);
  TargetProcess target({path});
  ASSERT_TRUE(target.running());
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  ASSERT_TRUE(std::filesystem::remove(path));
  expect_target_names(s, key, target, path);
}

TEST_F(SymbolizerTest, BinaryDeletedBeforeAddProcess) {
  TempDir dir;
  std::string path = dir.file("prog");
  test::install_copy(PW_TARGET_PIE, path);
  TargetProcess target({path});
  ASSERT_TRUE(target.running());
  ASSERT_TRUE(std::filesystem::remove(path));

  // Through map_files the deleted file is still there; the frames name the path the process had.
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  expect_target_names(s, key, target, path);

  // Without map_files nothing can be read: unnamed, never dropped, and no crash.
  SymbolizerOptions options;
  options.use_map_files = false;
  Symbolizer fallback(options);
  ASSERT_TRUE(fallback.add_process(key));
  auto frames = leaf_frames(fallback, key, target, {"leaf", "library_return"});
  EXPECT_EQ(frames[0], native("prog+" + hex(target.address("leaf") - target.address("bias")), path));
  EXPECT_EQ(frames[1].name, "pwlib::library_caller()");
  EXPECT_EQ(fallback.stats().unreadable_binaries, 1u);
}

TEST_F(SymbolizerTest, BinaryReplacedAfterAddProcess) {
  TempDir dir;
  std::string path = dir.file("prog");
  test::install_copy(PW_TARGET_PIE, path);
  TargetProcess target({path});
  ASSERT_TRUE(target.running());
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  test::install_copy(PW_OTHER, path);
  expect_target_names(s, key, target, path);
}

TEST_F(SymbolizerTest, BinaryReplacedBeforeAddProcessIsNeverReadForTheOldProcess) {
  TempDir dir;
  std::string path = dir.file("prog");
  test::install_copy(PW_TARGET_PIE, path);
  TargetProcess old_process({path});
  ASSERT_TRUE(old_process.running());
  test::install_copy(PW_OTHER, path);
  TargetProcess new_process({path});
  ASSERT_TRUE(new_process.running());

  Symbolizer s;
  ProcessKey old_key{old_process.pid(), 1}, new_key{new_process.pid(), 1};
  ASSERT_TRUE(s.add_process(old_key));
  ASSERT_TRUE(s.add_process(new_key));
  expect_target_names(s, old_key, old_process, path);
  EXPECT_EQ(leaf_frames(s, new_key, new_process, {"other_function"})[0], native("pw_other_function", path));

  // Without map_files, the path now holds another inode: the old process's frames stay unnamed
  // rather than take the new file's names; its unchanged library is read through /proc/PID/root.
  SymbolizerOptions options;
  options.use_map_files = false;
  Symbolizer fallback(options);
  ASSERT_TRUE(fallback.add_process(old_key));
  auto frames = leaf_frames(fallback, old_key, old_process, {"leaf", "library_return"});
  EXPECT_EQ(frames[0].name, "prog+" + hex(old_process.address("leaf") - old_process.address("bias")));
  EXPECT_EQ(frames[1].name, "pwlib::library_caller()");
}

TEST_F(SymbolizerTest, ProcessInAnotherMountNamespace) {
  // The target mounts a tmpfs on dir in its own mount namespace and runs a copy of itself from
  // there: in this namespace, dir stays empty.
  TempDir dir;
  TargetProcess target({PW_TARGET_PIE, "--ns", dir.path()});
  ASSERT_TRUE(target.running());
  std::string path = dir.file("pw_target_in_namespace");
  ASSERT_FALSE(std::filesystem::exists(path));

  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  expect_target_names(s, key, target, path);

  SymbolizerOptions options;
  options.use_map_files = false;  // then through /proc/PID/root
  Symbolizer fallback(options);
  ASSERT_TRUE(fallback.add_process(key));
  expect_target_names(fallback, key, target, path);
}

TEST_F(SymbolizerTest, RereadsMapsForCodeMappedAfterTheSnapshotOnceAWindow) {
  TargetProcess target({PW_TARGET_PIE});
  ASSERT_TRUE(target.running());
  Symbolizer s;
  ProcessKey key{target.pid(), 1};
  ASSERT_TRUE(s.add_process(key));
  ASSERT_TRUE(target.command(std::string("dlopen ") + PW_PLUGIN));

  auto frames = leaf_frames(s, key, target, {"plugin"});
  EXPECT_EQ(frames[0], native("pw_plugin_function", real(PW_PLUGIN)));
  EXPECT_EQ(s.stats().map_refreshes, 1u);

  // Another unknown address in the same window: no second read.
  std::uint64_t unmapped[] = {0x10};
  EXPECT_EQ(s.symbolize_user(key, unmapped)[0].name, "[unknown]+0x10");
  EXPECT_EQ(s.stats().map_refreshes, 1u);
  s.release_retired();  // the next window
  EXPECT_EQ(s.symbolize_user(key, unmapped)[0].name, "[unknown]+0x10");
  EXPECT_EQ(s.stats().map_refreshes, 2u);

  // A retired process is never read again: its PID may belong to another process by now.
  s.release_retired();
  s.retire_process(key);
  EXPECT_EQ(s.symbolize_user(key, unmapped)[0].name, "[unknown]+0x10");
  EXPECT_EQ(s.stats().map_refreshes, 2u);
  EXPECT_EQ(leaf_frames(s, key, target, {"plugin"})[0].name, "pw_plugin_function");  // still known
  s.release_retired();
  EXPECT_EQ(s.stats().processes, 0u);
}

TEST_F(SymbolizerTest, ExitedProcessesKeepTheirSymbolsUntilReleased) {
  Symbolizer s;
  ProcessKey key;
  std::uint64_t ip = 0;
  {
    TargetProcess target({PW_TARGET_PIE});
    ASSERT_TRUE(target.running());
    key = {target.pid(), 1};
    ip = target.address("leaf");
    ASSERT_TRUE(s.add_process(key));
  }  // killed and reaped
  s.retire_process(key);
  EXPECT_EQ(s.symbolize_user(key, std::span(&ip, 1))[0].name, "pw_leaf");
  EXPECT_EQ(s.stats().retired_processes, 1u);
  EXPECT_EQ(s.stats().map_refreshes, 0u);
  s.release_retired();
  EXPECT_EQ(s.stats().processes, 0u);
  EXPECT_EQ(s.symbolize_user(key, std::span(&ip, 1))[0].name, "[unknown]+" + hex(ip));

  // A process gone before add_process: an error, not a crash.
  EXPECT_FALSE(s.add_process(key));
}

TEST_F(SymbolizerTest, SharesCachedBinariesBetweenProcesses) {
  TargetProcess first({PW_TARGET_PIE}), second({PW_TARGET_PIE});
  ASSERT_TRUE(first.running() && second.running());
  Symbolizer s;
  ASSERT_TRUE(s.add_process({first.pid(), 1}));
  SymbolizerStats after_first = s.stats();
  EXPECT_GE(after_first.cache_misses, 3u);  // the program, its library, libc at least
  EXPECT_EQ(after_first.cache_hits, 0u);
  EXPECT_EQ(after_first.binaries_cached, after_first.cache_misses);
  EXPECT_GT(after_first.symbol_bytes, 0u);

  ASSERT_TRUE(s.add_process({second.pid(), 1}));
  SymbolizerStats after_second = s.stats();
  EXPECT_EQ(after_second.cache_misses, after_first.cache_misses);
  EXPECT_EQ(after_second.cache_hits, after_first.cache_misses);
  EXPECT_EQ(after_second.binaries_cached, after_first.binaries_cached);
  expect_target_names(s, {second.pid(), 1}, second, real(PW_TARGET_PIE));
}

TEST_F(SymbolizerTest, EvictsUnreferencedBinariesLeastRecentlyUsedFirst) {
  // Copies of a binary without a build-id are distinct cache entries (by inode).
  TempDir dir;
  std::string a = dir.file("a"), b = dir.file("b");
  test::install_copy(PW_OTHER_NOBUILDID, a);
  test::install_copy(PW_OTHER_NOBUILDID, b);
  SymbolizerOptions options;
  options.max_unreferenced_binaries = 1;
  Symbolizer s(options);
  // Keeps libc and the loader pinned throughout.
  TargetProcess holder({PW_OTHER});
  ASSERT_TRUE(holder.running());
  ASSERT_TRUE(s.add_process({holder.pid(), 1}));

  auto run_and_release = [&](const std::string& path) {
    TargetProcess p({path});
    ASSERT_TRUE(p.running());
    ProcessKey key{p.pid(), 1};
    ASSERT_TRUE(s.add_process(key));
    EXPECT_EQ(leaf_frames(s, key, p, {"other_function"})[0].name, "pw_other_function");
    p.kill();
    s.retire_process(key);
    s.release_retired();
  };
  std::size_t pinned = s.stats().binaries_cached;
  run_and_release(a);
  EXPECT_EQ(s.stats().binaries_cached, pinned + 1);  // a: unreferenced, within the bound
  EXPECT_EQ(s.stats().binaries_unreferenced, 1u);
  EXPECT_EQ(s.stats().cache_evictions, 0u);
  run_and_release(b);  // b more recent than a: a goes
  EXPECT_EQ(s.stats().binaries_cached, pinned + 1);
  EXPECT_EQ(s.stats().cache_evictions, 1u);

  std::uint64_t misses = s.stats().cache_misses, hits = s.stats().cache_hits;
  run_and_release(b);  // still cached
  EXPECT_EQ(s.stats().cache_misses, misses);
  EXPECT_EQ(s.stats().cache_hits - hits, pinned);  // b, and the libraries it shares with the holder
  run_and_release(a);                          // evicted: parsed again
  EXPECT_EQ(s.stats().cache_misses, misses + 1);
  EXPECT_EQ(s.stats().cache_evictions, 2u);  // and b goes

  // Binaries of live processes are never evicted, whatever the bound.
  EXPECT_EQ(s.stats().binaries_cached - s.stats().binaries_unreferenced, pinned);
}

TEST_F(SymbolizerTest, ABinaryRebuiltInPlaceGetsNewSymbols) {
  // No build-id: the cache tells the two builds apart by mtime and size, not by path or inode.
  TempDir dir;
  std::string path = dir.file("prog");
  test::install_copy(PW_TARGET_NOBUILDID, path);
  struct stat before {};
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  Symbolizer s;
  {
    TargetProcess first({path});
    ASSERT_TRUE(first.running());
    ProcessKey key{first.pid(), 1};
    ASSERT_TRUE(s.add_process(key));
    expect_target_names(s, key, first, path);
    first.kill();
    s.retire_process(key);
    s.release_retired();  // its binaries stay cached, unreferenced
    EXPECT_GT(s.stats().binaries_unreferenced, 0u);
  }
  test::overwrite_in_place(PW_OTHER_NOBUILDID, path);
  struct stat after {};
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  ASSERT_EQ(after.st_ino, before.st_ino);
  TargetProcess second({path});
  ASSERT_TRUE(second.running());
  ASSERT_TRUE(s.add_process({second.pid(), 1}));
  EXPECT_EQ(leaf_frames(s, {second.pid(), 1}, second, {"other_function"})[0], native("pw_other_function", path));
}

}  // namespace
}  // namespace perfwatch::collector
