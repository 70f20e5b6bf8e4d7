#pragma once
// Time arguments of the perfwatch CLI (--from/--to); the parsing is shared with the config.
#include "common/time_text.h"

namespace perfwatch::daemon {

using perfwatch::format_time;
using perfwatch::parse_time;

}  // namespace perfwatch::daemon
