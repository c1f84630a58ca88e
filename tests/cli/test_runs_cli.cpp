// `krill runs list|show` run as the real binary on a store filled with track::start_run (tables and
// JSON checked against what was logged, filters, id prefixes), which store is read (--tracking-uri
// over $KRILL_TRACKING_URI over ./krill-runs/runs.db), and a missing or mistyped action.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/runs_cli_support.hpp"

namespace krill::test::runs_cli {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------- list

TEST(RunsList, JsonHasEveryRunNewestFirstWithWhatWasLogged) {
  const auto& f = fixture();
  auto r = krill({"runs", "list", "--format", "json", "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  json j = json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["id"], f.c);
  EXPECT_EQ(j[1]["id"], f.b);
  EXPECT_EQ(j[2]["id"], f.a);
  EXPECT_EQ(j[0]["status"], "FAILED");
  EXPECT_EQ(j[1]["status"], "FINISHED");
  EXPECT_EQ(j[2]["name"], "baseline");
  EXPECT_EQ(j[2]["experiment"], "penguins");
  EXPECT_EQ(j[2]["params"], (json{{"lr", "0.01"}, {"hidden", "10,10"}, {"epochs", "5"}, {"optimizer", "adam"}}));
  EXPECT_EQ(j[2]["tags"]["note"], "first try");
  EXPECT_EQ(j[2]["metrics"]["train_loss"]["value"].get<double>(), 0.42);
  EXPECT_EQ(j[2]["metrics"]["train_loss"]["step"].get<int>(), 4);
  EXPECT_EQ(j[1]["metrics"]["val_accuracy"]["value"].get<double>(), 0.93);
  EXPECT_EQ(j[0]["metrics"]["train_loss"]["value"].get<double>(), 1.5);
  EXPECT_FALSE(j[0]["end_time"].is_null());
  EXPECT_TRUE(j[0]["duration_s"].is_number());
}

TEST(RunsList, TableShowsShortIdsStatusesLatestMetricsAndDifferingParams) {
  const auto& f = fixture();
  auto r = krill({"runs", "list", "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;  // header + 3 runs
  for (const char* h : {"ID", "NAME", "EXPERIMENT", "STATUS", "START", "DURATION", "train_loss", "val_loss",
                        "val_accuracy", "lr", "hidden"})
    EXPECT_TRUE(contains(lines[0], h)) << h << "\n" << r.out;
  EXPECT_FALSE(contains(lines[0], "note")) << "tags are not columns";
  // newest first, short ids like git
  EXPECT_EQ(lines[1].substr(0, 8), short_id(f.c));
  EXPECT_EQ(lines[2].substr(0, 8), short_id(f.b));
  EXPECT_EQ(lines[3].substr(0, 8), short_id(f.a));
  EXPECT_FALSE(contains(r.out, f.a)) << "full ids are not shown";
  const std::string a = lines[3];
  for (const char* cell : {"baseline", "penguins", "FINISHED", "0.42", "0.51", "0.88", "0.01", "10,10"})
    EXPECT_TRUE(contains(a, cell)) << cell << "\n" << r.out;
  EXPECT_TRUE(contains(lines[1], "FAILED"));
  EXPECT_TRUE(contains(lines[1], "mnist"));
  // the start column is local time YYYY-MM-DD HH:MM:SS
  const std::size_t at = lines[0].find("START");
  const std::string start = a.substr(at, 19);
  EXPECT_EQ(start.size(), 19u);
  EXPECT_EQ(start[4], '-');
  EXPECT_EQ(start[10], ' ');
  EXPECT_EQ(start[13], ':');
  // the columns are aligned: every row's STATUS starts where the header's does
  const std::size_t st = lines[0].find("STATUS");
  for (std::size_t i = 1; i < lines.size(); ++i) EXPECT_TRUE(lines[i].compare(st, 2, "FI") == 0 || lines[i].compare(st, 2, "FA") == 0) << lines[i];
}

TEST(RunsList, NarrowTerminalDropsColumnsAndSaysSo) {
  const auto& f = fixture();
  auto r = krill({"runs", "list", "--tracking-uri", f.uri}, "", "", "70");
  ASSERT_EQ(r.rc, 0) << where(r);
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 5u) << r.out;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    std::size_t columns = 0;
    for (char ch : lines[i]) columns += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    EXPECT_LE(columns, 70u) << lines[i];
  }
  EXPECT_TRUE(contains(lines.back(), "not shown")) << r.out;
  EXPECT_TRUE(contains(lines.back(), "--format json")) << r.out;
}

TEST(RunsList, LongNamesAreEllipsized) {
  const std::string uri = krill::test::make_temp_dir("runs_cli_long") + "/runs.db";
  const std::string name(60, 'n');
  for (const std::string& n : {name, std::string("two\nlines")}) {
    auto run = track::start_run("e", opts(uri, n));
    run.end();
  }
  auto r = krill({"runs", "list", "--tracking-uri", uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  EXPECT_FALSE(contains(r.out, name));
  EXPECT_TRUE(contains(r.out, std::string(23, 'n') + "…")) << r.out;
  EXPECT_EQ(split_lines(r.out).size(), 3u) << "a newline in a name stays on its row:\n" << r.out;
  EXPECT_TRUE(contains(r.out, "two lines")) << r.out;
}

TEST(RunsList, FiltersByExperimentStatusAndParams) {
  const auto& f = fixture();
  auto ids = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"runs", "list", "--format", "json", "--tracking-uri", f.uri};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = krill(args);
    EXPECT_EQ(r.rc, 0) << where(r);
    std::vector<std::string> out;
    for (const auto& x : json::parse(r.out)) out.push_back(x["id"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({"--experiment", "penguins"}), (V{f.b, f.a}));
  EXPECT_EQ(ids({"--experiment", "mnist"}), (V{f.c}));
  EXPECT_EQ(ids({"--status", "FAILED"}), (V{f.c}));
  EXPECT_EQ(ids({"--status", "finished"}), (V{f.b, f.a}));
  EXPECT_EQ(ids({"--status", "RUNNING"}), V{});
  EXPECT_EQ(ids({"--param", "lr=0.01"}), (V{f.c, f.a}));
  EXPECT_EQ(ids({"--param", "lr=1e-2"}), (V{f.c, f.a})) << "numbers compare as numbers";
  EXPECT_EQ(ids({"--param", "lr=0.01", "--param", "hidden=10,10"}), (V{f.a}));
  EXPECT_EQ(ids({"--param", "lr=0.01", "--experiment", "penguins", "--status", "FINISHED"}), (V{f.a}));
  EXPECT_EQ(ids({"--param", "nosuch=1"}), V{});
}

TEST(RunsList, EmptyResultSaysSoAndWhere) {
  const auto& f = fixture();
  auto r = krill({"runs", "list", "--experiment", "nope", "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  EXPECT_EQ(split_lines(r.out).size(), 1u) << r.out;
  EXPECT_TRUE(contains(r.out, "No runs match --experiment nope in " + f.uri)) << r.out;
  EXPECT_TRUE(contains(r.out, "experiments: penguins, mnist")) << r.out;
  auto j = krill({"runs", "list", "--status", "KILLED", "--format", "json", "--tracking-uri", f.uri});
  ASSERT_EQ(j.rc, 0) << where(j);
  EXPECT_EQ(json::parse(j.out), json::array());
}

TEST(RunsList, ParamWithoutEqualsIsAnErrorNamingTheItem) {
  const auto& f = fixture();
  auto r = krill({"runs", "list", "--param", "lr0.01", "--tracking-uri", f.uri});
  EXPECT_EQ(r.rc, 1) << where(r);
  EXPECT_TRUE(contains(r.err, "krill runs list: error: --param 'lr0.01': expected KEY=VALUE")) << r.err;
  auto bad_status = krill({"runs", "list", "--status", "DONE", "--tracking-uri", f.uri});
  EXPECT_EQ(bad_status.rc, 2) << where(bad_status);
  EXPECT_TRUE(contains(bad_status.err, "--status")) << bad_status.err;
}

// ---------------------------------------------------------------- show

TEST(RunsShow, TextHasInfoParamsTagsMetricsAndArtifacts) {
  const auto& f = fixture();
  auto r = krill({"runs", "show", f.a.substr(0, 6), "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  for (const std::string& s : {"Run " + f.a, std::string("baseline"), std::string("penguins"), std::string("FINISHED"),
                              std::string("command line"), std::string("krill version"), std::string("git commit"),
                              std::string("pid ")})
    EXPECT_TRUE(contains(r.out, s)) << s << "\n" << r.out;
  EXPECT_TRUE(contains(line_with(r.out, "hidden"), "10,10")) << r.out;
  EXPECT_TRUE(contains(line_with(r.out, "note"), "first try")) << r.out;
  // train_loss: last 0.42 at step 4, 5 points, min 0.4, max 1
  auto tl = line_with(r.out, "train_loss");
  std::istringstream is(tl);
  std::string key, last, step, points, lo, hi;
  is >> key >> last >> step >> points >> lo >> hi;
  EXPECT_EQ(key, "train_loss");
  EXPECT_EQ(last, "0.42");
  EXPECT_EQ(step, "4");
  EXPECT_EQ(points, "5");
  EXPECT_EQ(lo, "0.4");
  EXPECT_EQ(hi, "1");
  EXPECT_TRUE(contains(line_with(r.out, "model.safetensors"), "present")) << r.out;
  EXPECT_TRUE(contains(line_with(r.out, "gone.png"), "missing")) << r.out;
  // ids pasted in upper case work too
  std::string upper = f.b.substr(0, 10);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto u = krill({"runs", "show", upper, "--tracking-uri", f.uri});
  EXPECT_EQ(u.rc, 0) << where(u);
  EXPECT_TRUE(contains(u.out, "Run " + f.b));
}

TEST(RunsShow, JsonIsTheRunSummaryWithArtifactsAndHistoryLengths) {
  const auto& f = fixture();
  auto r = krill({"runs", "show", f.a, "--format", "json", "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  json j = json::parse(r.out);
  EXPECT_EQ(j["id"], f.a);
  EXPECT_EQ(j["status"], "FINISHED");
  EXPECT_EQ(j["params"]["lr"], "0.01");
  EXPECT_EQ(j["metrics"]["val_accuracy"]["value"].get<double>(), 0.88);
  EXPECT_EQ(j["metrics"]["val_accuracy"]["count"].get<int>(), 5);
  EXPECT_EQ(j["metrics"]["val_accuracy"]["max"].get<double>(), 0.9);
  EXPECT_EQ(j["metrics"]["train_loss"]["min"].get<double>(), 0.4);
  ASSERT_EQ(j["artifacts"].size(), 2u);
  EXPECT_EQ(j["artifacts"][0]["path"], fs::absolute(f.artifact_file).lexically_normal().string());
  EXPECT_EQ(j["artifacts"][0]["exists"], true);
  EXPECT_EQ(j["artifacts"][1]["exists"], false);
  EXPECT_EQ(j["artifacts"][1]["kind"], "file");
}

TEST(RunsShow, UnknownAndAmbiguousIds) {
  const auto& f = fixture();
  std::string unknown = "0000";
  while (f.a.rfind(unknown, 0) == 0 || f.b.rfind(unknown, 0) == 0 || f.c.rfind(unknown, 0) == 0) unknown[0]++;
  auto r = krill({"runs", "show", unknown, "--tracking-uri", f.uri});
  EXPECT_EQ(r.rc, 1) << where(r);
  EXPECT_TRUE(contains(r.err, "krill runs show: error: no run with id or prefix '" + unknown + "'")) << r.err;
  auto bad = krill({"runs", "show", "xyz!", "--tracking-uri", f.uri});
  EXPECT_EQ(bad.rc, 1) << where(bad);
  EXPECT_TRUE(contains(bad.err, "hexadecimal")) << bad.err;

  // 17 runs: two share a first digit
  const std::string uri = krill::test::make_temp_dir("runs_cli_ambiguous") + "/runs.db";
  std::map<char, std::vector<std::string>> by_digit;
  for (int i = 0; i < 17; ++i) {
    auto run = track::start_run("e", opts(uri, "r" + std::to_string(i)));
    by_digit[run.id()[0]].push_back(run.id());
    run.end();
  }
  auto shared = std::find_if(by_digit.begin(), by_digit.end(), [](const auto& kv) { return kv.second.size() > 1; });
  ASSERT_NE(shared, by_digit.end());
  auto amb = krill({"runs", "show", std::string(1, shared->first), "--tracking-uri", uri});
  EXPECT_EQ(amb.rc, 1) << where(amb);
  EXPECT_TRUE(contains(amb.err, "ambiguous")) << amb.err;
  for (const auto& id : shared->second) EXPECT_TRUE(contains(amb.err, id)) << amb.err;
}

// ---------------------------------------------------------------- which store

TEST(RunsStore, FlagOverEnvironmentOverDefault) {
  const auto& f = fixture();
  const std::string dir = krill::test::make_temp_dir("runs_cli_uri");
  const std::string other = dir + "/other.db";
  std::string other_id;
  {
    auto run = track::start_run("x", opts(other, "in-other"));
    other_id = run.id();
    run.end();
  }
  auto ids = [](const CliResult& r) {
    std::vector<std::string> out;
    EXPECT_EQ(r.rc, 0) << where(r);
    if (r.rc == 0)
      for (const auto& x : json::parse(r.out)) out.push_back(x["id"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(krill({"runs", "list", "--format", "json"}, other)), (V{other_id}));
  EXPECT_EQ(ids(krill({"runs", "list", "--format", "json", "--tracking-uri", f.uri}, other)).size(), 3u);
  // neither: ./krill-runs/runs.db of the working directory
  std::string default_id;
  {
    auto run = track::start_run("x", opts(dir + "/krill-runs/runs.db", "in-default"));
    default_id = run.id();
    run.end();
  }
  EXPECT_EQ(ids(krill({"runs", "list", "--format", "json"}, "", dir)), (V{default_id}));
  EXPECT_EQ(ids(krill({"runs", "list", "--format", "json"}, other, dir)), (V{other_id}));
}

TEST(RunsStore, ReadCommandsOnAMissingStoreCreateNothing) {
  const std::string dir = krill::test::make_temp_dir("runs_cli_nostore");
  const std::string uri = dir + "/sub/runs.db";
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::vector<std::vector<std::string>> commands = {
      {"list"},
      {"show", id},
      {"compare", id, "fedc"},
      {"plot", id, "--metric", "loss", "-o", dir + "/p.png"},
      {"export", id},
      {"delete", id, "--force"}};
  for (const auto& c : commands) {
    std::vector<std::string> args{"runs"};
    args.insert(args.end(), c.begin(), c.end());
    args.insert(args.end(), {"--tracking-uri", uri});
    auto r = krill(args);
    EXPECT_EQ(r.rc, 1) << where(r);
    EXPECT_TRUE(contains(r.err, "krill runs " + c[0] + ": error: no run store at " + uri +
                                    ": train a run first (krill train ...) or pass --tracking-uri / set KRILL_TRACKING_URI"))
        << r.err;
  }
  EXPECT_TRUE(krill::test::cli::list_dir(dir).empty()) << "nothing created";
  // the same through $KRILL_TRACKING_URI and through the default path
  auto env = krill({"runs", "list"}, uri);
  EXPECT_EQ(env.rc, 1) << where(env);
  EXPECT_TRUE(contains(env.err, "no run store at " + uri)) << env.err;
  auto def = krill({"runs", "list"}, "", dir);
  EXPECT_EQ(def.rc, 1) << where(def);
  EXPECT_TRUE(contains(def.err, "no run store at ./krill-runs/runs.db")) << def.err;
  EXPECT_TRUE(krill::test::cli::list_dir(dir).empty()) << "nothing created";
  // a directory given as the store
  auto as_dir = krill({"runs", "list", "--tracking-uri", dir});
  EXPECT_EQ(as_dir.rc, 1) << where(as_dir);
  EXPECT_TRUE(contains(as_dir.err, "is a directory")) << as_dir.err;
}

// ---------------------------------------------------------------- command line

TEST(RunsCommandLine, MistypedOrMissingActionListsTheCommands) {
  auto r = krill({"runs", "lst"});
  EXPECT_EQ(r.rc, 2) << where(r);
  EXPECT_TRUE(contains(r.err, "krill runs: error: unknown command 'lst' for 'krill runs'; did you mean 'list'? "
                              "(commands: list, show, compare, plot, export, delete)"))
      << r.err;
  auto none = krill({"runs"});
  EXPECT_EQ(none.rc, 2) << where(none);
  EXPECT_EQ(split_lines(none.err).size(), 1u) << none.err;
  EXPECT_TRUE(contains(none.err, "list, show, compare, plot, export, delete")) << none.err;
  auto far = krill({"runs", "banana"});
  EXPECT_EQ(far.rc, 2) << where(far);
  EXPECT_TRUE(contains(far.err, "unknown command 'banana' for 'krill runs' (commands: list,")) << far.err;
}

}  // namespace
}  // namespace krill::test::runs_cli
