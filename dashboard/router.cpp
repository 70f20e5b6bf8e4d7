#include "dashboard/router.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace perfwatch::dashboard {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = std::min(path.find('/', start), path.size());
    if (slash > start) out.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Compares without an early exit, so response timing does not reveal how much of a guess matched
// (the token's length is no secret worth hiding).
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

const std::string* Request::get(const std::string& key) const {
  auto it = query.find(key);
  return it == query.end() ? nullptr : &it->second;
}

Result<void> Request::allow_only(std::initializer_list<std::string_view> allowed) const {
  for (const auto& [key, value] : query)
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return make_error("unknown parameter '" + key + "'" + (list.empty() ? " (this endpoint takes none)" : " (known: " + list + ")"));
    }
  return {};
}

Response Response::json(const nlohmann::json& doc, int status) {
  Response r;
  r.status = status;
  // Replacement, not an exception, for names that are not valid UTF-8.
  r.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response Response::error(int status, std::string_view message) {
  return json({{"error", std::string(message)}}, status);
}

Response Response::bytes(std::string content_type, std::string body) {
  Response r;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int lo = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return make_error("malformed percent-escape in '" + std::string(text) + "'");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

Result<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t amp = std::min(query.find('&', start), query.size());
    std::string_view pair = query.substr(start, amp - start);
    start = amp + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    Result<std::string> key = percent_decode(pair.substr(0, eq));
    if (!key) return key.error();
    Result<std::string> value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value) return value.error();
    if (!out.emplace(std::move(*key), std::move(*value)).second)
      return make_error("parameter '" + std::string(pair.substr(0, eq)) + "' given more than once");
  }
  return out;
}

Result<std::string> read_token_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return make_error("cannot read " + path + ": " + std::strerror(errno));
  struct stat st {};
  std::string text;
  const bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular && (st.st_mode & (S_IRWXG | S_IRWXO)) == 0) {
    char buffer[4096];
    for (ssize_t n; text.size() < (1 << 16) && (n = ::read(fd, buffer, sizeof buffer)) > 0;)
      text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!regular) return make_error(path + " is not a regular file");
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(path + " is readable by group or others (mode " + mode + "); chmod 600 it");
  }
  std::string token = text.substr(0, text.find('\n'));
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return make_error(path + " holds no token on its first line");
  return token;
}

void Router::add(std::string method, std::string_view pattern, Access access, Handler handler) {
  routes_.push_back({std::move(method), split_path(pattern), access, std::move(handler)});
}

bool Router::authorized(const Request& request) const {
  if (token_.empty()) return true;
  constexpr std::string_view scheme = "Bearer ";
  if (request.authorization.size() <= scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), request.authorization.begin(),
                  [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); }))
    return false;
  return constant_time_equal(std::string_view(request.authorization).substr(scheme.size()), token_);
}

Response Router::dispatch(Request request) const {
  const std::vector<std::string> segments = split_path(request.path);
  bool path_known = false;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      const std::string& want = route.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') params[want.substr(1, want.size() - 2)] = segments[i];
      else match = want == segments[i];
    }
    if (!match) continue;
    path_known = true;
    if (route.method != request.method && !(route.method == "GET" && request.method == "HEAD")) continue;
    if (route.access == Access::token && !authorized(request)) {
      Response denied = Response::error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)");
      denied.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"perfwatch\"");
      return denied;
    }
    request.params = std::move(params);
    return route.handler(request);
  }
  if (path_known) return Response::error(405, "method " + request.method + " not allowed on " + request.path);
  return Response::error(404, "no such endpoint: " + request.path);
}

}  // namespace perfwatch::dashboard
