// The HTTP router with its path and query decoding, on in-memory requests: the real API's routes (over a
// query pool whose database is down) and a route that echoes what the request carries into headers. No
// byte of a request may start or end a response header line, and no parameter may cause a 5xx (503 is
// the database being down, which every query reaches).
#include <Poco/Net/HTTPResponse.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "dashboard/api.h"
#include "dashboard/server.h"
#include "tests/fuzz/check.h"

namespace {

namespace dashboard = perfwatch::dashboard;

constexpr std::string_view no_database = "fuzzing: no database";


struct Site {
  dashboard::QueryPool pool{[]() -> perfwatch::Result<std::unique_ptr<perfwatch::storage::Query>> {
                              return perfwatch::make_error(std::string(no_database));
                            },
                            1, std::chrono::milliseconds(0)};
  dashboard::Api api{pool, {}, {}};
  dashboard::Router open;
  dashboard::Router guarded{"t0k3n"};
  dashboard::HostCheck hosts{"127.0.0.1:7460", 7460,
                             dashboard::host_names("127.0.0.1:7460", "https://perf.example.com/pw", "vm")};

  Site() {
    for (dashboard::Router* router : {&open, &guarded}) {
      api.install(*router);
      router->add("GET", "/echo/{name}", dashboard::Router::Access::open, [](const dashboard::Request& r) {
        dashboard::Response out = dashboard::Response::bytes("text/plain", "echo");
        out.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + r.params.at("name") + "\"");
        for (const auto& [key, value] : r.query) out.headers.emplace_back("X-Echo", key + "=" + value);
        return out;
      });
    }
  }
};

// The head as Poco writes it: status line, "Name: value" lines of printable ASCII, each ended by CR LF,
// then one empty line, and nothing else.
void check_head(const std::string& head) {
  FUZZ_CHECK(head.size() >= 4 && head.ends_with("\r\n\r\n") && head.find("\r\n\r\n") == head.size() - 4);
  std::size_t start = head.find("\r\n") + 2;
  while (start < head.size() - 2) {
    const std::size_t end = head.find("\r\n", start);
    const std::string_view line(head.data() + start, end - start);
    const std::size_t colon = line.find(": ");
    FUZZ_CHECK(colon != std::string_view::npos && colon > 0);
    for (const char c : line) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f);
    start = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Site* site = new Site();  // lives for the whole run, as the daemon's
  // METHOD \n URI \n HOST \n AUTHORIZATION; a missing line is a missing header.
  std::vector<std::string> fields;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (std::size_t start = 0; start <= text.size() && fields.size() < 4;) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    fields.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  dashboard::Incoming request;
  request.method = fields.empty() ? "GET" : fields[0];
  request.uri = fields.size() > 1 ? fields[1] : "/";
  if (fields.size() > 2) request.host = fields[2];
  if (fields.size() > 3) request.authorization = fields[3];
  const dashboard::Router& router = size % 2 ? site->guarded : site->open;
  const dashboard::Response response = dashboard::answer(router, site->hosts, request);
  FUZZ_CHECK(response.status >= 200 && response.status < 600);
  FUZZ_CHECK(response.status < 500 || (response.status == 503 && response.body.find(no_database) != std::string::npos));
  Poco::Net::HTTPResponse head;
  dashboard::write_head(response, head);
  head.setContentLength(static_cast<std::streamsize>(response.body.size()));
  std::ostringstream out;
  head.write(out);
  check_head(out.str());
  return 0;
}
