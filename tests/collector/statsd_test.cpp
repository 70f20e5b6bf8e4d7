// The StatsD parser (pure) and the listener on a real loopback socket.
#include "collector/statsd.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace perfwatch::collector {
namespace {

using namespace std::chrono_literals;

struct Parsed {
  std::vector<std::tuple<std::string, double, std::string, double>> metrics;
  std::size_t malformed = 0;
};

Parsed parse(std::string_view datagram) {
  Parsed p;
  p.malformed = parse_statsd_datagram(datagram, [&](const StatsdMetric& m) {
    p.metrics.emplace_back(std::string(m.name), m.value, std::string(m.type), m.rate);
  });
  return p;
}

TEST(StatsdParser, TimersRatesTagsAndSeveralMetricsPerDatagram) {
  Parsed p = parse("api.render:12.5|ms\napi.hits:1|c|@0.1\napi.render:30|ms|@0.5|#route:/users,env:prod\n"
                   "queue.depth:-3|g\nusers:alice|s\nsize:7|h|#a\n\n");
  EXPECT_EQ(p.malformed, 0u);
  ASSERT_EQ(p.metrics.size(), 6u);
  EXPECT_EQ(p.metrics[0], std::make_tuple(std::string("api.render"), 12.5, std::string("ms"), 1.0));
  EXPECT_EQ(p.metrics[1], std::make_tuple(std::string("api.hits"), 1.0, std::string("c"), 0.1));
  EXPECT_EQ(p.metrics[2], std::make_tuple(std::string("api.render"), 30.0, std::string("ms"), 0.5));
  EXPECT_EQ(std::get<1>(p.metrics[3]), -3.0);
  EXPECT_EQ(std::get<2>(p.metrics[4]), "s");
  EXPECT_EQ(parse("crlf:1|ms\r\n").metrics.size(), 1u);
}

TEST(StatsdParser, CountsMalformedLinesAndKeepsTheRest) {
  for (std::string_view bad : {"novalue|ms", ":1|ms", "a:|ms", "a:1", "a:1|", "a:1|xx", "a:abc|ms", "a:1|ms|@0",
                               "a:1|ms|@1.5", "a:1|ms|@x", "a:1|ms|#", "a:1|ms|zz", "a:1|ms|@0.5|@0.5", "a:nan|ms",
                               "a:1e400|ms"}) {
    Parsed p = parse(std::string(bad) + "\nok:1|ms");
    EXPECT_EQ(p.malformed, 1u) << bad;
    ASSERT_EQ(p.metrics.size(), 1u) << bad;
    EXPECT_EQ(std::get<0>(p.metrics[0]), "ok");
  }
  EXPECT_EQ(parse(std::string("\0\xff\x01:", 4)).malformed, 1u);
}

// A timer stands for 1/rate calls and its value is summed in nanoseconds: rates below 1e-6, timers past a
// day and counter increments past 2^53 are refused as malformed instead of overflowing what they feed.
TEST(StatsdParser, RefusesValuesAndRatesPastTheirBounds) {
  for (std::string_view bad : {"a:1|ms|@1e-300", "a:1|ms|@0.0000009", "a:1e13|ms", "a:86400001|ms", "a:-1e13|ms",
                               "a:1e300|c", "a:9007199254740994|c", "a:1|c|@1e-300"}) {
    Parsed p = parse(std::string(bad) + "\nok:1|ms");
    EXPECT_EQ(p.malformed, 1u) << bad;
    ASSERT_EQ(p.metrics.size(), 1u) << bad;
  }
  for (std::string_view good : {"a:86400000|ms", "a:1|ms|@0.000001", "a:9007199254740992|c", "a:1e300|g"})
    EXPECT_EQ(parse(good).metrics.size(), 1u) << good;
}

class StatsdListenerTest : public testing::Test {
 protected:
  void SetUp() override {
    StatsdOptions options;
    options.listen = "127.0.0.1:0";
    options.max_packet_bytes = 1024;
    auto started = StatsdListener::start(options, {{3, "api.render", 100'000'000}, {5, "api.parse", 1'000'000}});
    ASSERT_TRUE(started.ok()) << started.error().message;
    listener_ = std::move(*started);
    sender_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    to_.sin_family = AF_INET;
    to_.sin_port = htons(listener_->port());
    to_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  void TearDown() override { close(sender_); }
  void send(const std::string& datagram) {
    ASSERT_EQ(sendto(sender_, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&to_), sizeof to_),
              static_cast<ssize_t>(datagram.size()));
  }
  // Drains until `packets` datagrams have been seen (they arrive asynchronously).
  StatsdDrain drain_after(std::uint64_t packets) {
    StatsdDrain total;
    for (int i = 0; i < 200 && total.stats.statsd_packets < packets; ++i) {
      std::this_thread::sleep_for(10ms);
      StatsdDrain d = listener_->drain();
      for (auto& h : d.histograms) total.histograms.push_back(std::move(h));
      for (auto& c : d.counters) total.counters.push_back(c);
      total.counter_lines += d.counter_lines;
      total.stats.statsd_packets += d.stats.statsd_packets;
      total.stats.statsd_timings += d.stats.statsd_timings;
      total.stats.statsd_unknown += d.stats.statsd_unknown;
      total.stats.statsd_ignored += d.stats.statsd_ignored;
      total.stats.statsd_malformed += d.stats.statsd_malformed;
      total.stats.statsd_oversized += d.stats.statsd_oversized;
    }
    return total;
  }
  std::unique_ptr<StatsdListener> listener_;
  int sender_ = -1;
  sockaddr_in to_{};
};

TEST_F(StatsdListenerTest, RecordsTimersOfConfiguredMetricsOnly) {
  send("api.render:30|ms\napi.render:150|ms\napi.parse:2|ms|@0.25\nother:5|ms\napi.render:1|c");
  send("api.render:700|ms|#route:/x");
  send("garbage");
  send(std::string(2000, 'x'));  // longer than max_packet
  StatsdDrain d = drain_after(4);
  EXPECT_EQ(d.stats.statsd_packets, 4u);
  EXPECT_EQ(d.stats.statsd_timings, 4u);
  EXPECT_EQ(d.stats.statsd_unknown, 1u);
  EXPECT_EQ(d.stats.statsd_ignored, 1u) << "a counter of a timer's name";
  EXPECT_EQ(d.stats.statsd_malformed, 1u);
  EXPECT_EQ(d.stats.statsd_oversized, 1u);
  ASSERT_EQ(d.histograms.size(), 2u);
  for (const auto& [index, h] : d.histograms) {
    if (index == 3) {
      EXPECT_EQ(h.count, 3u);
      EXPECT_EQ(h.slow, 2u);
      EXPECT_EQ(h.max_ns, 700'000'000u);
      EXPECT_NEAR(static_cast<double>(profile::percentile(h, 0.5)), 150e6, 150e6 * 0.05);
    } else {
      EXPECT_EQ(index, 5u);
      EXPECT_EQ(h.count, 4u) << "a timer sampled at 1/4 stands for 4 calls";
      EXPECT_EQ(h.slow, 4u);
    }
  }
  EXPECT_TRUE(listener_->drain().histograms.empty()) << "drain() starts a fresh window";
}

TEST_F(StatsdListenerTest, SampledCountsAddUpOverAWindow) {
  for (int i = 0; i < 10; ++i) send("api.parse:1|ms|@0.3");
  StatsdDrain d = drain_after(10);
  ASSERT_EQ(d.histograms.size(), 1u);
  EXPECT_EQ(d.histograms[0].second.count, 33u) << "10 / 0.3 = 33.3 calls";
}

TEST_F(StatsdListenerTest, CountsCountersOfApplicationCaches) {
  listener_->set_counters({{0, "lru.hit"}, {1, "lru.miss"}});
  send("lru.hit:1|c\nlru.hit:3|c\nlru.miss:1|c|@0.1");
  send("lru.miss:1|c|@0.5\nlru.miss:2|ms\nlru.hit:-1|c");  // a timer and a decrement of counters: ignored
  send("lru.miss:1|c|@0.3");
  StatsdDrain d = drain_after(3);
  std::map<std::size_t, std::uint64_t> sums;
  for (const auto& [index, sum] : d.counters) sums[index] += sum;
  EXPECT_EQ(sums[0], 4u);
  EXPECT_EQ(sums[1], 10u + 2 + 3) << "1/0.3 = 3.33: the third of a count waits for the next window";
  EXPECT_EQ(d.counter_lines, 5u);
  EXPECT_EQ(d.stats.statsd_ignored, 2u);
  EXPECT_EQ(d.stats.statsd_unknown, 0u);
  EXPECT_TRUE(listener_->drain().counters.empty());
  send("lru.miss:1|c|@0.3\nlru.miss:1|c|@0.3");
  StatsdDrain next = drain_after(1);
  ASSERT_EQ(next.counters.size(), 1u);
  EXPECT_EQ(next.counters[0].second, 7u) << "0.33 carried over + 2 x 3.33";
}

// One datagram used to end an operation's data: @1e-300 made a line 1e300 calls (and the fraction carried
// over made every later line as many), 1e13|ms overflowed the sum; the windows then could not be stored.
TEST_F(StatsdListenerTest, RefusesWhatWouldOverflowAndKeepsRecording) {
  listener_->set_counters({{0, "lru.hit"}});
  send("api.render:1|ms|@1e-300");
  send("api.render:1e13|ms");
  send("api.render:86400000|ms|@0.000001");  // each bound kept, but the sum would pass 2^63 ns
  send("lru.hit:9007199254740992|c|@0.5");    // likewise for a counter's window sum
  send("api.render:30|ms\napi.render:40|ms\nlru.hit:2|c");
  StatsdDrain d = drain_after(5);
  EXPECT_EQ(d.stats.statsd_malformed, 4u);
  EXPECT_EQ(d.stats.statsd_timings, 2u);
  ASSERT_EQ(d.histograms.size(), 1u);
  const profile::LatencyHistogram& h = d.histograms[0].second;
  EXPECT_EQ(h.count, 2u);
  EXPECT_EQ(h.sum_ns, 70'000'000u);
  EXPECT_EQ(h.max_ns, 40'000'000u);
  ASSERT_EQ(d.counters.size(), 1u);
  EXPECT_EQ(d.counters[0].second, 2u);
  send("api.render:50|ms");
  StatsdDrain next = drain_after(1);
  ASSERT_EQ(next.histograms.size(), 1u);
  EXPECT_EQ(next.histograms[0].second.count, 1u) << "the next window is whole";
}

TEST_F(StatsdListenerTest, ReloadKeepsTheOpenWindowOfOperationsThatStay) {
  send("api.render:30|ms");
  drain_after(0);  // nothing drained yet: the datagram may still be in flight
  std::this_thread::sleep_for(100ms);
  listener_->set_operations({{0, "api.render", 100'000'000}});
  StatsdDrain d = listener_->drain();
  ASSERT_EQ(d.histograms.size(), 1u);
  EXPECT_EQ(d.histograms[0].first, 0u) << "the new index";
  EXPECT_EQ(d.histograms[0].second.count, 1u);
}

TEST(StatsdListenerStart, FailsClearlyWhenThePortIsTaken) {
  auto first = StatsdListener::start({"127.0.0.1:0", 1 << 20, 1024}, {});
  ASSERT_TRUE(first.ok());
  auto second = StatsdListener::start({"127.0.0.1:" + std::to_string((*first)->port()), 1 << 20, 1024}, {});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("Address already in use"), std::string::npos) << second.error().message;
}

}  // namespace
}  // namespace perfwatch::collector
