#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "storage/spool.h"
#include "tests/storage/support.h"

namespace perfwatch::storage {
namespace {

namespace fs = std::filesystem;
using test::at;
using test::sample_window;

class SpoolTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pw-spool-" + std::to_string(getpid()) + "-" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(WindowCodecTest, RoundTripsEveryField) {
  profile::WindowProfile w = sample_window("host-a", at(1'700'000'000));
  w.profile.frames.push_back({profile::FrameKind::python, "handler (app.py:12)", "app.py"});
  w.stats = {10, 1, 2, 3, 4};
  Result<profile::WindowProfile> back = decode_window(encode_window(w));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->host, w.host);
  EXPECT_EQ(back->start, w.start);
  EXPECT_EQ(back->end, w.end);
  ASSERT_EQ(back->targets.size(), 2u);
  EXPECT_EQ(back->targets[0].pids, w.targets[0].pids);
  EXPECT_EQ(back->targets[1].samples, 5u);
  EXPECT_EQ(back->profile.frames, w.profile.frames);
  EXPECT_EQ(profile::to_folded(back->profile), profile::to_folded(w.profile));
  EXPECT_EQ(back->stats.lost_unresolved, 4u);
}

TEST(WindowCodecTest, RoundTripsDeployMarkers) {
  profile::WindowProfile w = sample_window("host-a", at(1'700'000'000));
  w.deploys = {{1, at(1'700'000'005), "executable /srv/worker build-id 1a2b -> 3c4d",
                {{"executable", "/srv/worker", "build-id:1a2b", "build-id:3c4d"}, {"library", "/lib/x.so", "", "file:1"}}}};
  Result<profile::WindowProfile> back = decode_window(encode_window(w));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->deploys, w.deploys);

  w.deploys[0].target_index = 7;
  Result<profile::WindowProfile> bad = decode_window(encode_window(w));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("missing target"), std::string::npos);
}

// Windows spooled by earlier versions (format 2: before deploy markers and caches; 3: before caches)
// are still written; a file of the current version that lacks them is not.
TEST(WindowCodecTest, DecodesVersion2And3FilesWithoutWhatCameLater) {
  profile::WindowProfile w = sample_window("h", at(100));
  test::add_sample_operations(w, {30});
  nlohmann::json doc = nlohmann::json::from_cbor(encode_window(w));
  doc.erase("caches");
  doc.erase("cache");
  doc["v"] = 3;
  Result<profile::WindowProfile> v3 = decode_window(nlohmann::json::to_cbor(doc));
  ASSERT_TRUE(v3.ok()) << v3.error().message;
  EXPECT_EQ(v3->operations, w.operations);
  EXPECT_TRUE(v3->caches.empty());
  EXPECT_EQ(v3->cache, profile::CacheStats{});
  doc.erase("deploys");
  doc["v"] = 2;
  Result<profile::WindowProfile> v2 = decode_window(nlohmann::json::to_cbor(doc));
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(v2->operations, w.operations);
  EXPECT_TRUE(v2->deploys.empty());
  doc["v"] = 4;
  EXPECT_FALSE(decode_window(nlohmann::json::to_cbor(doc)).ok());
}

TEST(WindowCodecTest, RoundTripsOperationLatencies) {
  profile::WindowProfile w = sample_window("host-a", at(1'700'000'000));
  test::add_sample_operations(w, {30, 30, 150, 700});
  Result<profile::WindowProfile> back = decode_window(encode_window(w));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->operations, w.operations);
  EXPECT_EQ(back->latency, w.latency);
}

TEST(WindowCodecTest, RoundTripsCaches) {
  profile::WindowProfile w = sample_window("host-a", at(1'700'000'000));
  test::add_sample_caches(w, 2048, 2000);
  Result<profile::WindowProfile> back = decode_window(encode_window(w));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->caches, w.caches);
  EXPECT_EQ(back->cache, w.cache);
}

TEST(WindowCodecTest, RoundTripsProbeStates) {
  profile::WindowProfile w = sample_window("host-a", at(1'700'000'000));
  profile::ProbeStates states;
  states.set(profile::ProbeFamily::cpu_sampler, profile::ProbeStatus::failed, "perf_event_open: Invalid argument");
  states.set(profile::ProbeFamily::statsd, profile::ProbeStatus::running, "UDP 127.0.0.1:8125");
  w.probes = states.list();
  Result<profile::WindowProfile> back = decode_window(encode_window(w));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->probes, w.probes);

  nlohmann::json doc = nlohmann::json::from_cbor(encode_window(w));
  doc["probes"][0][0] = "gpu";
  EXPECT_FALSE(decode_window(nlohmann::json::to_cbor(doc)).ok()) << "an unknown family";
  doc = nlohmann::json::from_cbor(encode_window(w));
  doc["v"] = 4;
  doc.erase("probes");
  back = decode_window(nlohmann::json::to_cbor(doc));
  ASSERT_TRUE(back.ok()) << "a version 4 file has no probe states: " << back.error().message;
  EXPECT_TRUE(back->probes.empty());
}

TEST(WindowCodecTest, RejectsCachesOfMissingTargetsAndBadKinds) {
  profile::WindowProfile w = sample_window("host-a", at(1'700'000'000));
  test::add_sample_caches(w, 10, 1);
  w.caches[0].target_index = 9;
  EXPECT_FALSE(decode_window(encode_window(w)).ok());
  w.caches[0].target_index = 0;
  w.caches[0].kind = static_cast<profile::CacheKind>(7);
  EXPECT_FALSE(decode_window(encode_window(w)).ok());
}

TEST(WindowCodecTest, DecodesVersion1FilesWithoutOperations) {
  // What a perfwatchd from before latencies spooled: no "ops" nor "lat".
  nlohmann::json doc = nlohmann::json::from_cbor(encode_window(sample_window("host-a", at(1'700'000'000))));
  doc["v"] = 1;
  doc.erase("ops");
  doc.erase("lat");
  Result<profile::WindowProfile> back = decode_window(nlohmann::json::to_cbor(doc));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->targets.size(), 2u);
  EXPECT_TRUE(back->operations.empty());
}

TEST(WindowCodecTest, RejectsOperationsOfMissingTargetsAndBadBuckets) {
  profile::WindowProfile w = sample_window("host-a", at(1'700'000'000));
  test::add_sample_operations(w, {30});
  w.operations[0].target_index = 9;
  EXPECT_FALSE(decode_window(encode_window(w)).ok());
  w.operations[0].target_index = 0;
  w.operations[0].histogram.buckets.push_back({profile::latency_bucket_count, 1});
  EXPECT_FALSE(decode_window(encode_window(w)).ok());
}

// Found by fuzz_spool: a time of 2^56 microseconds overflowed its conversion to nanoseconds (signed
// overflow). Values of the wrong type or range, and nesting deeper than a window's, are corrupt too.
TEST(WindowCodecTest, RejectsValuesOutOfTheirRangeAndDeepNesting) {
  const std::vector<std::uint8_t> good = encode_window(sample_window("h", at(1'700'000'000)));
  const nlohmann::json doc = nlohmann::json::from_cbor(good);
  const auto corrupt = [](const nlohmann::json& d) { return !decode_window(nlohmann::json::to_cbor(d)).ok(); };
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, nlohmann::json>>{
           {"end_us", std::uint64_t{1} << 56}, {"start_us", -1}, {"start_us", 1.5}, {"v", 1e300}, {"host", 7},
           {"stats", nlohmann::json::array({1, 2, -3, 4, 5})}, {"stats", nlohmann::json::array({1, 2})}}) {
    nlohmann::json d = doc;
    d[key] = value;
    EXPECT_TRUE(corrupt(d)) << key << " = " << value.dump();
  }
  nlohmann::json d = doc;
  d["targets"][0][1] = nlohmann::json::array({1e20});  // a pid past int32
  EXPECT_TRUE(corrupt(d));
  // The reproducer: end_us replaced by 2^56 in an encoded window.
  std::vector<std::uint8_t> bytes = good;
  const std::string key = "fend_us";
  auto at_key = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  ASSERT_NE(at_key, bytes.end());
  const std::vector<std::uint8_t> huge = {0x1b, 0x01, 0, 0, 0, 0, 0, 0, 0};
  auto value = at_key + static_cast<long>(key.size());
  value = bytes.erase(value, value + 9);
  bytes.insert(value, huge.begin(), huge.end());
  EXPECT_FALSE(decode_window(bytes).ok());
  // Arrays nested 100,000 deep: refused before nlohmann's recursion can exhaust the stack.
  std::vector<std::uint8_t> deep(100'000, 0x81);
  deep.push_back(0x00);
  const auto nested = decode_window(deep);
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.error().message.find("at most 16 levels"), std::string::npos) << nested.error().message;
  EXPECT_TRUE(decode_window(good).ok());
}

TEST(WindowCodecTest, RejectsCorruptAndInconsistentData) {
  std::vector<std::uint8_t> bytes = encode_window(sample_window("h", at(0)));
  std::vector<std::uint8_t> truncated(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2));
  EXPECT_FALSE(decode_window(truncated).ok());
  EXPECT_FALSE(decode_window({0xff, 0x00, 0x13}).ok());

  profile::WindowProfile bad = sample_window("h", at(0));
  bad.profile.stacks[0].frame_ids.push_back(99);  // no such frame
  Result<profile::WindowProfile> decoded = decode_window(encode_window(bad));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("missing frame"), std::string::npos);
}

TEST_F(SpoolTest, KeepsWindowsOldestFirstAcrossReopen) {
  {
    Result<Spool> spool = Spool::open(dir_, 1 << 20);
    ASSERT_TRUE(spool.ok()) << spool.error().message;
    ASSERT_TRUE(spool->push(sample_window("h", at(300))).ok());
    ASSERT_TRUE(spool->push(sample_window("h", at(100))).ok());
    ASSERT_TRUE(spool->push(sample_window("h", at(200))).ok());
  }
  std::ofstream(dir_ / "00000000000000000001-000000.window.tmp") << "half-written";  // a crash mid-write
  Result<Spool> spool = Spool::open(dir_, 1 << 20);
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ(spool->size(), 3u);
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000001-000000.window.tmp"));
  std::vector<profile::TimePoint> starts;
  while (auto entry = spool->oldest()) {
    Result<profile::WindowProfile> w = spool->load(*entry);
    ASSERT_TRUE(w.ok()) << w.error().message;
    starts.push_back(w->start);
    spool->remove(*entry);
  }
  EXPECT_EQ(starts, (std::vector<profile::TimePoint>{at(100), at(200), at(300)}));
  EXPECT_EQ(spool->bytes(), 0u);
}

TEST_F(SpoolTest, DropsTheOldestPastItsBoundAndCountsThem) {
  const std::uint64_t one = encode_window(sample_window("h", at(0))).size();
  Result<Spool> spool = Spool::open(dir_, 3 * one + one / 2);
  ASSERT_TRUE(spool.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(spool->push(sample_window("h", at(1000 + i))).ok());
  EXPECT_EQ(spool->size(), 3u);
  EXPECT_EQ(spool->dropped(), 2u);
  EXPECT_LE(spool->bytes(), 3 * one + one / 2);
  Result<profile::WindowProfile> oldest = spool->load(*spool->oldest());
  ASSERT_TRUE(oldest.ok());
  EXPECT_EQ(oldest->start, at(1002));
}

std::uint64_t bytes_on_disk(const fs::path& dir) {
  std::uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

TEST_F(SpoolTest, QuarantineMovesAFileAside) {
  Result<Spool> spool = Spool::open(dir_, 1 << 20);
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE(spool->push(sample_window("h", at(5))).ok());
  Spool::Entry entry = *spool->oldest();
  spool->quarantine(entry);
  EXPECT_EQ(spool->size(), 0u);
  EXPECT_TRUE(fs::exists(dir_ / "failed" / fs::path(entry.path).filename()));
}

TEST_F(SpoolTest, QuarantinedWindowsAreTriedAgainAfterARestart) {
  {
    Result<Spool> spool = Spool::open(dir_, 1 << 20);
    ASSERT_TRUE(spool.ok());
    ASSERT_TRUE(spool->push(sample_window("h", at(5))).ok());
    spool->quarantine(*spool->oldest());
  }
  // A newer perfwatchd (or a repaired database) may store what this one could not.
  Result<Spool> spool = Spool::open(dir_, 1 << 20);
  ASSERT_TRUE(spool.ok());
  ASSERT_EQ(spool->size(), 1u);
  Result<profile::WindowProfile> back = spool->load(*spool->oldest());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->start, at(5));
}

TEST_F(SpoolTest, QuarantinedWindowsCountAgainstTheBoundAndAreDroppedFirst) {
  const std::uint64_t one = encode_window(sample_window("h", at(0))).size();
  const std::uint64_t bound = 3 * one + one / 2;
  Result<Spool> spool = Spool::open(dir_, bound);
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE(spool->push(sample_window("h", at(1000))).ok());
  ASSERT_TRUE(spool->push(sample_window("h", at(1001))).ok());
  spool->quarantine(*spool->oldest());  // at(1000)
  for (int i = 2; i < 5; ++i) ASSERT_TRUE(spool->push(sample_window("h", at(1000 + i))).ok());
  EXPECT_LE(bytes_on_disk(dir_), bound) << "quarantined windows take space in the spool too";
  EXPECT_EQ(spool->dropped(), 2u);
  EXPECT_FALSE(fs::exists(dir_ / "failed") && !fs::is_empty(dir_ / "failed")) << "the quarantined window goes first";
  EXPECT_EQ(spool->size(), 3u);
  Result<profile::WindowProfile> oldest = spool->load(*spool->oldest());
  ASSERT_TRUE(oldest.ok());
  EXPECT_EQ(oldest->start, at(1002)) << "then the oldest waiting window";
}

// The real calls, each recorded as "call path" (fsync and close by the path their descriptor was opened on).
class RecordingFileOps final : public FileOps {
 public:
  int open(const std::string& path, int flags, mode_t mode) override {
    const int fd = system_file_ops().open(path, flags, mode);
    if (fd >= 0) paths_[fd] = path;
    return fd;
  }
  ssize_t write(int fd, const void* data, std::size_t size) override {
    calls.push_back("write " + paths_[fd]);
    return system_file_ops().write(fd, data, size);
  }
  int fsync(int fd) override {
    calls.push_back("fsync " + paths_[fd]);
    return system_file_ops().fsync(fd);
  }
  int close(int fd) override { return system_file_ops().close(fd); }
  int rename(const std::string& from, const std::string& to) override {
    calls.push_back("rename " + from + " " + to);
    return system_file_ops().rename(from, to);
  }
  std::vector<std::string> calls;

 private:
  std::map<int, std::string> paths_;
};

TEST_F(SpoolTest, SyncsTheWindowBeforeItsRenameAndTheDirectoryAfter) {
  RecordingFileOps files;
  Result<Spool> spool = Spool::open(dir_, 1 << 20, files);
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE(spool->push(sample_window("h", at(7))).ok());
  const std::string path = spool->oldest()->path, dir = dir_.string();
  EXPECT_EQ(files.calls, (std::vector<std::string>{"write " + path + ".tmp", "fsync " + path + ".tmp",
                                                   "rename " + path + ".tmp " + path, "fsync " + dir}));

  files.calls.clear();
  spool->quarantine(*spool->oldest());
  const std::string failed = (dir_ / "failed").string();
  const std::string moved = failed + "/" + fs::path(path).filename().string();
  EXPECT_EQ(files.calls, (std::vector<std::string>{"fsync " + dir, "rename " + path + " " + moved, "fsync " + failed,
                                                   "fsync " + dir}))
      << "the new failed/ directory, then the move, durable on both sides";
}

TEST_F(SpoolTest, AWriteThatFailsLeavesNoFileBehind) {
  struct FullDisk final : FileOps {
    int open(const std::string& path, int flags, mode_t mode) override { return system_file_ops().open(path, flags, mode); }
    ssize_t write(int, const void*, std::size_t) override {
      errno = ENOSPC;
      return -1;
    }
    int fsync(int fd) override { return system_file_ops().fsync(fd); }
    int close(int fd) override { return system_file_ops().close(fd); }
    int rename(const std::string& from, const std::string& to) override { return system_file_ops().rename(from, to); }
  } files;
  Result<Spool> spool = Spool::open(dir_, 1 << 20, files);
  ASSERT_TRUE(spool.ok());
  Result<Spool::Entry> pushed = spool->push(sample_window("h", at(7)));
  ASSERT_FALSE(pushed.ok());
  EXPECT_NE(pushed.error().message.find("No space left on device"), std::string::npos) << pushed.error().message;
  EXPECT_TRUE(fs::is_empty(dir_));
  EXPECT_EQ(spool->size(), 0u);
}

}  // namespace
}  // namespace perfwatch::storage
