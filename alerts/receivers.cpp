#include "alerts/receivers.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace perfwatch::alerts {
namespace {

Result<std::string> header_value(const config::Receiver& receiver, const config::Header& header) {
  const std::string where = "receiver " + receiver.name + ", header " + header.name + ": ";
  if (!header.env.empty()) {
    const char* value = std::getenv(header.env.c_str());
    if (!value) return make_error(where + "environment variable " + header.env + " is not set");
    return std::string(value);
  }
  if (!header.file.empty()) {
    std::ifstream in(header.file);
    if (!in) return make_error(where + "cannot read " + header.file + ": " + std::strerror(errno));
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
  }
  return header.value;
}

}  // namespace

Result<std::vector<ResolvedReceiver>> resolve_receivers(const std::vector<config::Receiver>& receivers) {
  std::vector<ResolvedReceiver> out;
  std::string errors;
  for (const config::Receiver& r : receivers) {
    ResolvedReceiver resolved{r, {}};
    for (const config::Header& h : r.headers) {
      Result<std::string> value = header_value(r, h);
      if (!value) {
        errors += (errors.empty() ? "" : "\n") + value.error().message;
        continue;
      }
      resolved.headers.emplace_back(h.name, std::move(*value));
    }
    out.push_back(std::move(resolved));
  }
  if (!errors.empty()) return make_error(errors);
  return out;
}

}  // namespace perfwatch::alerts
