#include "cli/check_command.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "engine/file_system.hpp"
#include "engine/verify.hpp"

namespace annal::cli {

int run_check(const std::string& directory, bool json) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(directory) / "store.meta", ec)) {
    std::fprintf(stderr, "annal: %s is not an Annal data directory (no store.meta)\n",
                 directory.c_str());
    return 2;
  }
  const engine::verify_report report = engine::verify_store(engine::posix_file_system(), directory);
  auto level_name = [](engine::verify_problem::severity s) {
    return s == engine::verify_problem::severity::error ? "error" : "warning";
  };
  if (json) {
    nlohmann::json out;
    out["ok"] = report.ok();
    out["partitions"] = report.partitions;
    out["segments"] = report.segments;
    out["records"] = report.records;
    out["events"] = report.events;
    out["nodeLogRecords"] = report.node_log_records;
    out["problems"] = nlohmann::json::array();
    for (const auto& p : report.problems) {
      out["problems"].push_back(
          {{"level", level_name(p.level)}, {"file", p.file}, {"offset", p.offset},
           {"message", p.message}});
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    for (const auto& p : report.problems) {
      std::printf("%s: %s at offset %llu: %s\n", level_name(p.level), p.file.c_str(),
                  static_cast<unsigned long long>(p.offset), p.message.c_str());
    }
    std::printf("%s: %llu partitions, %llu segments, %llu records, %llu events, "
                "%llu node-log records, %zu problems\n",
                report.ok() ? "ok" : "damaged", static_cast<unsigned long long>(report.partitions),
                static_cast<unsigned long long>(report.segments),
                static_cast<unsigned long long>(report.records),
                static_cast<unsigned long long>(report.events),
                static_cast<unsigned long long>(report.node_log_records), report.problems.size());
  }
  return report.ok() ? 0 : 1;
}

}  // namespace annal::cli
