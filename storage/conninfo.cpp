#include "storage/conninfo.h"

#include <libpq-fe.h>

#include <cctype>
#include <fstream>
#include <map>
#include <memory>

namespace perfwatch::storage {
namespace {

// key=value quoting: single quotes, with backslash escapes for quotes and backslashes.
void append_quoted(std::string& out, std::string_view value) {
  out.push_back('\'');
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
}

}  // namespace

Result<std::string> conninfo_with(const std::string& conninfo, const ConninfoOverrides& overrides,
                                  const ConninfoOverrides& defaults) {
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfoParse(conninfo.c_str(), &raw_error),
                                                                        &PQconninfoFree);
  if (!options) {
    std::string message = raw_error ? raw_error : "out of memory";
    PQfreemem(raw_error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return make_error("invalid PostgreSQL connection string: " + message);
  }
  std::map<std::string, std::string> values;
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o)
    if (o->val) values[o->keyword] = o->val;
  for (const auto& [key, value] : overrides) values[key] = value;
  for (const auto& [key, value] : defaults) values.emplace(key, value);

  std::string out;
  for (const auto& [key, value] : values) {
    if (!out.empty()) out.push_back(' ');
    out.append(key).push_back('=');
    append_quoted(out, value);
  }
  return out;
}

Result<std::string> resolve_conninfo(const std::string& uri, const std::string& password_file) {
  ConninfoOverrides overrides;
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    std::string password;
    if (!in || !std::getline(in, password))
      return make_error("cannot read the PostgreSQL password file " + password_file);
    overrides.emplace_back("password", password);
  }
  // A TCP peer that vanishes mid-write fails the write after 30 s instead of the kernel's ~15 min.
  return conninfo_with(uri, overrides, {{"connect_timeout", "10"}, {"tcp_user_timeout", "30000"}});
}

std::string uri_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace perfwatch::storage
