// StatsD load generator for bench/latency_overhead.py: sends RATE datagrams per second of one timer
// ("METRIC:12.5|ms", varying values) to HOST:PORT for SECONDS, paced every millisecond in sendmmsg
// batches, and prints how many it sent. Run it pinned to its own core.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: statsd_load HOST PORT RATE SECONDS [METRIC]\n");
    return 2;
  }
  const std::string metric = argc > 5 ? argv[5] : "bench.render";
  const long rate = std::atol(argv[3]);
  const double seconds = std::atof(argv[4]);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return 1;

  // 1000 distinct payloads, so values spread over the histogram.
  std::vector<std::string> payloads;
  for (int i = 0; i < 1000; ++i) payloads.push_back(metric + ":" + std::to_string(1 + i % 250) + "." + std::to_string(i % 10) + "|ms");
  constexpr std::size_t batch = 64;
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> messages(batch);

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto end = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  long long sent = 0, next = 0;
  for (auto now = start; now < end; now = clock::now()) {
    // Everything due by now: rate * elapsed, sent in batches.
    const long long due = static_cast<long long>(rate * std::chrono::duration<double>(now - start).count());
    while (sent < due) {
      const std::size_t n = static_cast<std::size_t>(std::min<long long>(batch, due - sent));
      for (std::size_t i = 0; i < n; ++i) {
        const std::string& p = payloads[static_cast<std::size_t>(next++ % 1000)];
        iov[i] = {const_cast<char*>(p.data()), p.size()};
        messages[i] = {};
        messages[i].msg_hdr.msg_iov = &iov[i];
        messages[i].msg_hdr.msg_iovlen = 1;
      }
      const int done = sendmmsg(fd, messages.data(), static_cast<unsigned>(n), 0);
      if (done <= 0) break;
      sent += done;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
  std::printf("sent %lld in %.3f s (%.0f/s)\n", sent, elapsed, sent / elapsed);
  close(fd);
  return 0;
}
