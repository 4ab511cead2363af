#pragma once

#include <string>

namespace annal::cli {

// `annal check DIR`: verifies a data directory offline (the node must not
// be running on it). Prints every problem, one per line, then a summary.
// Exit code 0 when no problem is an error, 1 otherwise, 2 if DIR is not a
// data directory.
int run_check(const std::string& directory, bool json);

}  // namespace annal::cli
