#pragma once
// libpq connection strings: perfwatch accepts a URI or key=value conninfo from the config and
// adds what it must (password from a file, a connect timeout) without string surgery on URIs.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace perfwatch::storage {

using ConninfoOverrides = std::vector<std::pair<std::string, std::string>>;

// Parses `conninfo` (URI or key=value) with libpq and returns it as key=value text with the
// `overrides` set (replacing any value it had) and the `defaults` set where it had none.
Result<std::string> conninfo_with(const std::string& conninfo, const ConninfoOverrides& overrides,
                                  const ConninfoOverrides& defaults = {});

// What the storage layer connects with: `uri`, plus the password read from `password_file` when one
// is named (first line, without the newline), plus connect_timeout=10 and tcp_user_timeout=30000
// unless `uri` sets them, so an unreachable server fails a write instead of hanging it.
Result<std::string> resolve_conninfo(const std::string& uri, const std::string& password_file);

// Percent-encodes a URI component (unreserved characters and '/' are kept).
std::string uri_encode(std::string_view text);

}  // namespace perfwatch::storage
