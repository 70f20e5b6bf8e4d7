#pragma once
// The dashboard's URL scheme, defined here once for everything that links into it (notifications'
// generatorURL and annotations, the CLI). The dashboard is a single page with hash routes:
//   a target:      {external_url}/#/target/{target}?host={host}&from={from}&to={to}
//   a differential flame graph of two ranges of a target (base = before, comparison = after):
//                  {external_url}/#/target/{target}?host={host}&view=diff
//                      &base_from={before_from}&base_to={before_to}&from={after_from}&to={after_to}
// Times are RFC 3339 UTC ("2026-11-24T10:00:00Z"); every component is percent-encoded.
#include <string>

#include "common/profile.h"

namespace perfwatch::alerts {

struct Range {
  profile::TimePoint from;
  profile::TimePoint to;
};

std::string target_link(const std::string& external_url, const std::string& host, const std::string& target,
                        Range range);
std::string diff_link(const std::string& external_url, const std::string& host, const std::string& target, Range before,
                      Range after);

}  // namespace perfwatch::alerts
