// The `annal` client subcommands and `annal check` against a real node.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <thread>

#include "tests/integration/node_fixture.hpp"

namespace annal::testing {
namespace {

using nlohmann::json;

class cli_test : public node_fixture {
 protected:
  command_result annal(std::vector<std::string> args, const std::string& input = "") {
    args.push_back("--server");
    args.push_back("127.0.0.1:" + std::to_string(node_->binary_port()));
    return run_annal(args, input);
  }
};

TEST_F(cli_test, append_read_head_round_trip) {
  auto r = annal({"append", "cli-1", "--type", "Added", "--data", R"({"n": 1})", "--expected",
                  "no_stream"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["firstVersion"], 0);

  r = annal({"append", "cli-1", "--events", "-"},
            R"([{"type": "Added", "data": {"n": 2}}, {"type": "Added", "data": {"n": 3}}])");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["lastVersion"], 2);

  r = annal({"read", "cli-1", "--limit", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto page = json::parse(r.out);
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][1]["data"]["n"], 2);
  EXPECT_EQ(page["next"], 2);

  r = annal({"read", "cli-1", "--backward", "--limit", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["events"][0]["version"], 2);

  r = annal({"head", "cli-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["data"]["n"], 3);
}

TEST_F(cli_test, failures_print_one_line_and_exit_non_zero) {
  auto r = annal({"append", "cli-2", "--type", "A", "--expected", "stream_exists"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("annal: wrong_expected_version: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);

  r = annal({"read", "cli-missing"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("annal: stream_not_found: ", 0), 0u) << r.err;

  r = annal({"append", "cli-2", "--type", "A", "--expected", "sometimes"});
  EXPECT_EQ(r.exit_code, 2);

  r = run_annal({"read", "cli-2", "--server", "127.0.0.1:1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err.rfind("annal: ", 0), 0u) << r.err;
}

TEST_F(cli_test, delete_meta_and_snapshot) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(annal({"append", "cli-3", "--type", "A", "--data", "1"}).exit_code, 0);
  }
  auto r = annal({"meta", "cli-3", "--max-count", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["maxCount"], 1);
  r = annal({"meta", "cli-3"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(json::parse(r.out)["maxCount"], 1);

  r = annal({"snapshot", "cli-3", "--version", "2", "--data", R"({"s": 3})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = annal({"snapshot", "cli-3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["data"]["s"], 3);
  EXPECT_EQ(json::parse(r.out)["version"], 2);

  r = annal({"delete", "cli-3", "--tombstone"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = annal({"append", "cli-3", "--type", "A"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("annal: stream_deleted: ", 0), 0u) << r.err;
}

TEST_F(cli_test, help_on_every_subcommand) {
  for (const char* cmd : {"dev", "start", "append", "read", "head", "delete", "meta", "snapshot",
                          "check", "bench", "tail"}) {
    auto r = run_annal({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd << ": " << r.out;
  }
}

// Lines of `out`, without the empty last one.
std::vector<std::string> lines_of(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(cli_test, tail_prints_catch_up_then_live_events_and_exits_after_count) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(annal({"append", "tail-1", "--type", "T" + std::to_string(i), "--data",
                     R"({"i":)" + std::to_string(i) + "}"})
                  .exit_code,
              0);
  }
  ASSERT_EQ(annal({"append", "other-1", "--type", "X"}).exit_code, 0);

  // Catch-up of a category, as JSON lines with the resume token.
  auto r = annal({"tail", "--category", "tail", "--from", "start", "--json", "--count", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  for (int i = 0; i < 3; ++i) {
    auto e = json::parse(lines[i]);
    EXPECT_EQ(e["stream"], "tail-1");
    EXPECT_EQ(e["version"], i);
    EXPECT_EQ(e["data"]["i"], i);
    EXPECT_TRUE(e["next"].is_string());
  }
  const auto token = json::parse(lines[2])["next"].get<std::string>();

  // From that token: the events appended while it runs, nothing before.
  command_result live;
  std::thread tail([&] {
    live = annal({"tail", "--category", "tail", "--from", token, "--count", "2"});
  });
  ASSERT_EQ(annal({"append", "other-1", "--type", "X"}).exit_code, 0);
  ASSERT_EQ(annal({"append", "tail-2", "--type", "Live"}).exit_code, 0);
  ASSERT_EQ(annal({"append", "tail-1", "--type", "Live"}).exit_code, 0);
  tail.join();
  ASSERT_EQ(live.exit_code, 0) << live.err;
  lines = lines_of(live.out);
  ASSERT_EQ(lines.size(), 3u) << live.out;  // two events, then "next: <token>"
  EXPECT_NE(lines[0].find("tail-2"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("tail-1"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2].rfind("next: ", 0), 0u);

  // One stream from a version, with a filter.
  r = annal({"tail", "--stream", "tail-1", "--from", "1", "--filter", "type != 'T2'", "--json",
             "--count", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["version"], 1);
  EXPECT_EQ(json::parse(lines[1])["type"], "Live");

  // Bad arguments: usage errors (exit 2), before anything is sent.
  r = annal({"tail", "--from", "not-a-token"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = annal({"tail", "--filter", "type ="});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("annal: query_syntax: ", 0), 0u) << r.err;
  r = annal({"tail", "--stream", "a", "--category", "b"});
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(cli_test, check_verifies_a_stopped_node_s_directory) {
  ASSERT_EQ(annal({"append", "cli-4", "--type", "A", "--data", "1"}).exit_code, 0);
  client_.reset();
  ASSERT_EQ(node_->terminate(std::chrono::seconds(30)), 0);
  auto r = run_annal({"check", data_.path() + "/data", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto report = json::parse(r.out);
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["partitions"], 64);
  EXPECT_GE(report["events"], 1);

  r = run_annal({"check", data_.path()});
  EXPECT_EQ(r.exit_code, 2);  // not a data directory
}

TEST_F(cli_test, read_all_pages_with_the_token_and_stats_print_per_node_totals) {
  ASSERT_EQ(annal({"append", "cli-all-1", "--type", "A", "--data", "1"}).exit_code, 0);
  ASSERT_EQ(annal({"append", "cli-all-2", "--type", "B", "--data", "2"}).exit_code, 0);
  ASSERT_EQ(annal({"append", "cli-all-1", "--type", "C", "--data", "3"}).exit_code, 0);

  auto r = annal({"read-all", "--limit", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto page = json::parse(r.out);
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][0]["stream"], "cli-all-1");
  EXPECT_EQ(page["events"][0]["type"], "A");
  EXPECT_FALSE(page["atEnd"].get<bool>());
  r = annal({"read-all", "--from", page["next"].get<std::string>(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  page = json::parse(r.out);
  ASSERT_EQ(page["events"].size(), 1u);
  EXPECT_EQ(page["events"][0]["type"], "C");
  EXPECT_TRUE(page["atEnd"].get<bool>());

  // Text: a header, one line per event, then the token.
  r = annal({"read-all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  std::istringstream text(r.out);
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0].rfind("TIMESTAMP", 0), 0u) << lines[0];
  EXPECT_NE(lines[2].find("cli-all-2"), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find(" B"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[4].rfind("next: ", 0), 0u) << lines[4];
  EXPECT_NE(lines[4].find("(end of the log)"), std::string::npos) << lines[4];

  r = annal({"read-all", "--from", "not-a-token"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("annal: invalid read-all token", 0), 0u) << r.err;

  r = annal({"stats", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto stats = json::parse(r.out);
  EXPECT_EQ(stats["events"], 3);
  EXPECT_EQ(stats["streams"], 2);
  ASSERT_EQ(stats["nodes"].size(), 1u);
  EXPECT_EQ(stats["nodes"][0]["node"], "dev");
  EXPECT_EQ(stats["nodes"][0]["partitions"], stats["partitions"].size());
  r = annal({"stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("PARTITION", 0), 0u) << r.out;
  const auto total = r.out.find("\ntotal ");
  ASSERT_NE(total, std::string::npos) << r.out;
  std::istringstream row(r.out.substr(total + 1));
  std::string name;
  std::uint64_t partitions = 0, streams = 0, events = 0;
  row >> name >> partitions >> streams >> events;
  EXPECT_EQ(partitions, stats["partitions"].size());
  EXPECT_EQ(streams, 2u);
  EXPECT_EQ(events, 3u);
}

TEST_F(cli_test, bench_runs_a_short_load_and_prints_json) {
  auto r = run_annal({"bench", "--target", "127.0.0.1:" + std::to_string(node_->binary_port()),
                      "--connections", "2", "--inflight", "2", "--duration", "0.5", "--streams",
                      "10", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["op"], "append");
  EXPECT_EQ(j["connections"], 2);
  EXPECT_GT(j["events"], 0);
  EXPECT_GT(j["eventsPerSec"], 0);
  EXPECT_GT(j["p99Ms"], 0);
  EXPECT_EQ(j["errors"], 0);

  r = run_annal({"bench", "--target", "127.0.0.1:" + std::to_string(node_->binary_port()), "--op",
                 "read", "--connections", "2", "--batch", "50", "--duration", "0.5", "--streams",
                 "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["op"], "read");
  EXPECT_GT(j["events"], 0);
}

}  // namespace
}  // namespace annal::testing
