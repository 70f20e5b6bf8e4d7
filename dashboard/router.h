#pragma once
// The HTTP surface as pure logic: requests in, responses out, no sockets. The Poco server (server.h)
// only translates to and from these types, so routing, parameter checks and authentication are
// unit-tested without a network. Later endpoints (latency, cache, alerts, deploy markers) are routes
// added with Router::add like the rest.
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace perfwatch::dashboard {

struct Request {
  std::string method = "GET";
  std::string path;                           // percent-decoded, without the query
  std::map<std::string, std::string> query;   // decoded; parse_query rejects repeated keys
  std::string authorization;                  // the Authorization header, if any
  std::map<std::string, std::string> params;  // filled by the router from {name} segments

  // The value of a query parameter, or nullptr.
  const std::string* get(const std::string& key) const;
  // 400 text when the query has a key outside `allowed` (a typo must not silently change the answer).
  Result<void> allow_only(std::initializer_list<std::string_view> allowed) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json(const nlohmann::json& doc, int status = 200);
  // {"error": message} with the status.
  static Response error(int status, std::string_view message);
  static Response bytes(std::string content_type, std::string body);
};

// "a=1&b=x%20y" into a map; an error for malformed escapes and repeated keys.
Result<std::map<std::string, std::string>> parse_query(std::string_view query);
// Percent-decoding ('+' stays '+': it is a space only in form bodies).
Result<std::string> percent_decode(std::string_view text);

// The bearer token: the first line of `path` (trailing spaces and CR dropped). A file that group or others
// may read, or that holds no token, is an error naming it: a token others can read is no secret.
Result<std::string> read_token_file(const std::string& path);

class Router {
 public:
  using Handler = std::function<Response(const Request&)>;
  enum class Access { open, token };  // open: /healthz and the UI's static files

  // `token`: the bearer token every Access::token route requires; empty requires none.
  explicit Router(std::string token = "") : token_(std::move(token)) {}

  // `pattern` is a path whose segments are literals or {name}, e.g. "/api/v1/targets/{target}/profile".
  void add(std::string method, std::string_view pattern, Access access, Handler handler);
  // 404 for unknown paths, 405 for a known path with another method, 401 without the token.
  Response dispatch(Request request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Access access;
    Handler handler;
  };
  bool authorized(const Request& request) const;

  std::string token_;
  std::vector<Route> routes_;
};

}  // namespace perfwatch::dashboard
