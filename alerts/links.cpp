#include "alerts/links.h"

#include <cctype>
#include <cstdio>
#include <utility>
#include <vector>

#include "common/time_text.h"

namespace perfwatch::alerts {
namespace {

std::string encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string page(const std::string& external_url, const std::string& target,
                 const std::vector<std::pair<std::string, std::string>>& query) {
  std::string url = external_url + "/#/target/" + encode(target);
  char separator = '?';
  for (const auto& [key, value] : query) {
    url += separator + key + "=" + encode(value);
    separator = '&';
  }
  return url;
}

}  // namespace

std::string target_link(const std::string& external_url, const std::string& host, const std::string& target,
                        Range range) {
  return page(external_url, target, {{"host", host}, {"from", format_time(range.from)}, {"to", format_time(range.to)}});
}

std::string diff_link(const std::string& external_url, const std::string& host, const std::string& target, Range before,
                      Range after) {
  return page(external_url, target,
              {{"host", host},
               {"view", "diff"},
               {"base_from", format_time(before.from)},
               {"base_to", format_time(before.to)},
               {"from", format_time(after.from)},
               {"to", format_time(after.to)}});
}

}  // namespace perfwatch::alerts
