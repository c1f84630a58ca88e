// `krill runs list|show|compare|plot|export|delete` run as the real binary on stores filled with
// track::start_run: what each prints (tables and JSON checked against what was logged), filters,
// id prefixes, the PNG it draws, exports equal to the store's history, deletes, which store is
// read (--tracking-uri over $KRILL_TRACKING_URI over ./krill-runs/runs.db), and every error.
// stb_image first and static, so that its definitions stay in this file whatever libkrill holds.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if __has_include(<stb_image.h>)
#include <stb_image.h>
#else
#include <stb/stb_image.h>
#endif

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include "cli_helpers.hpp"
#include "krill/track/store.hpp"
#include "support/expect.hpp"

namespace {

namespace fs = std::filesystem;
using krill::test::contains;
using krill::test::cli::CliResult;
using krill::test::cli::read_text;
using krill::test::cli::run_krill;
using krill::test::cli::shell_quote;
using krill::test::cli::split_lines;
using nlohmann::json;
namespace track = krill::track;

// krill with $KRILL_TRACKING_URI unset (or set to `env_uri`) and a wide terminal, in `cwd` when given.
CliResult krill(const std::vector<std::string>& args, const std::string& env_uri = "", const std::string& cwd = "",
                const std::string& columns = "200") {
  std::string prefix = cwd.empty() ? "" : "cd " + shell_quote(cwd) + " && ";
  prefix += "env -u KRILL_TRACKING_URI COLUMNS=" + columns + " ";
  if (!env_uri.empty()) prefix += "KRILL_TRACKING_URI=" + shell_quote(env_uri) + " ";
  return run_krill(args, prefix);
}

std::string where(const CliResult& r) { return r.command + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err; }

track::RunOptions opts(const std::string& uri, const std::string& name) {
  track::RunOptions o;
  o.tracking_uri = uri;
  o.name = name;
  return o;
}

void log_series(track::Run& run, const std::string& key, const std::vector<double>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) run.log_metric(key, values[i], static_cast<std::int64_t>(i));
}

void pause_ms() { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }  // distinct start times

// One store shared by the read-only tests: A (baseline) and B (wide) in "penguins", C (FAILED) in "mnist".
struct Fixture {
  std::string dir, uri, a, b, c, artifact_file;
};

const Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    f.dir = krill::test::make_temp_dir("runs_cli");
    f.uri = f.dir + "/store/runs.db";
    f.artifact_file = f.dir + "/model.safetensors";
    krill::test::cli::write_text(f.artifact_file, "weights");
    {
      auto run = track::start_run("penguins", opts(f.uri, "baseline"));
      run.log_param("lr", "0.01");
      run.log_param("hidden", "10,10");
      run.log_param("epochs", "5");
      run.log_param("optimizer", "adam");
      run.set_tag("note", "first try");
      log_series(run, "train_loss", {1.0, 0.6, 0.4, 0.45, 0.42});
      log_series(run, "val_loss", {1.1, 0.7, 0.5, 0.52, 0.51});
      log_series(run, "val_accuracy", {0.5, 0.7, 0.9, 0.85, 0.88});
      run.log_artifact(f.artifact_file);
      run.log_artifact(f.dir + "/gone.png", "file");
      f.a = run.id();
      run.end();
    }
    pause_ms();
    {
      auto run = track::start_run("penguins", opts(f.uri, "wide"));
      run.log_param("lr", "0.001");
      run.log_param("hidden", "64,64");
      run.log_param("epochs", "5");
      run.log_param("optimizer", "adam");
      log_series(run, "train_loss", {1.2, 0.8, 0.5, 0.3, 0.25});
      log_series(run, "val_loss", {1.3, 0.9, 0.6, 0.4, 0.35});
      log_series(run, "val_accuracy", {0.4, 0.6, 0.8, 0.95, 0.93});
      f.b = run.id();
      run.end();
    }
    pause_ms();
    {
      auto run = track::start_run("mnist", opts(f.uri, "other"));
      run.log_param("lr", "0.01");
      log_series(run, "train_loss", {2.0, 1.5});
      f.c = run.id();
      run.end(track::RunStatus::Failed);
    }
    return f;
  }();
  return f;
}

std::string short_id(const std::string& id) { return id.substr(0, 8); }

// The line of a table that holds `needle`.
std::string line_with(const std::string& text, const std::string& needle) {
  for (const auto& l : split_lines(text))
    if (contains(l, needle)) return l;
  return "";
}

double parse_double(const std::string& s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  EXPECT_TRUE(ec == std::errc() && end == s.data() + s.size()) << "not a number: '" << s << "'";
  return v;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  for (char ch : line) {
    if (ch == ',') out.emplace_back();
    else out.back() += ch;
  }
  return out;
}

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

// ---------------------------------------------------------------- compare

TEST(RunsCompare, TableShowsDifferingParamsAndFinalAndBestValues) {
  const auto& f = fixture();
  auto r = krill({"runs", "compare", f.a.substr(0, 8), f.b.substr(0, 8), "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  auto lines = split_lines(r.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(contains(lines[0], short_id(f.a)) && contains(lines[0], short_id(f.b))) << r.out;
  EXPECT_LT(lines[0].find(short_id(f.a)), lines[0].find(short_id(f.b))) << "one column per run, in the given order";
  EXPECT_TRUE(contains(r.out, "Params: 2 differ, 2 equal (epochs, optimizer)")) << r.out;
  auto cells = [&](const std::string& l) {
    std::vector<std::string> words;
    std::istringstream is(l);
    for (std::string w; is >> w;) words.push_back(w);
    return words;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(cells(line_with(r.out, "hidden")), (V{"hidden", "10,10", "64,64"})) << r.out;
  EXPECT_EQ(cells(line_with(r.out, "lr ")), (V{"lr", "0.01", "0.001"})) << r.out;
  EXPECT_TRUE(contains(r.out, "min for keys containing \"loss\" or \"error\", max otherwise")) << r.out;
  // rows: KEY final A B / best (min|max) A B / at step A B
  auto block = [&](const std::string& key) {
    auto all = split_lines(r.out);
    for (std::size_t i = 0; i + 2 < all.size(); ++i)
      if (all[i].rfind(key + " ", 0) == 0) return std::vector<V>{cells(all[i]), cells(all[i + 1]), cells(all[i + 2])};
    ADD_FAILURE() << "no rows for " << key << "\n" << r.out;
    return std::vector<V>{V{}, V{}, V{}};
  };
  auto tl = block("train_loss");
  EXPECT_EQ(tl[0], (V{"train_loss", "final", "0.42", "0.25"}));
  EXPECT_EQ(tl[1], (V{"best", "(min)", "0.4", "0.25"}));
  EXPECT_EQ(tl[2], (V{"at", "step", "2", "4"}));
  auto va = block("val_accuracy");
  EXPECT_EQ(va[0], (V{"val_accuracy", "final", "0.88", "0.93"}));
  EXPECT_EQ(va[1], (V{"best", "(max)", "0.9", "0.95"}));
  EXPECT_EQ(va[2], (V{"at", "step", "2", "3"}));
}

TEST(RunsCompare, JsonHasParamsAndFinalAndBestPerRun) {
  const auto& f = fixture();
  auto r = krill({"runs", "compare", f.a, f.b, f.c, "--format", "json", "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  json j = json::parse(r.out);
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][0]["id"], f.a);
  EXPECT_EQ(j["params"]["differ"]["lr"], (json{"0.01", "0.001", "0.01"}));
  EXPECT_EQ(j["params"]["differ"]["hidden"], (json{"10,10", "64,64", nullptr}));
  EXPECT_TRUE(j["params"]["equal"].empty());
  const auto& tl = j["metrics"]["train_loss"];
  EXPECT_EQ(tl["best_is"], "min");
  EXPECT_EQ(tl["final"][0]["value"].get<double>(), 0.42);
  EXPECT_EQ(tl["best"][0]["value"].get<double>(), 0.4);
  EXPECT_EQ(tl["best"][0]["step"].get<int>(), 2);
  EXPECT_EQ(tl["best"][2]["value"].get<double>(), 1.5);
  const auto& va = j["metrics"]["val_accuracy"];
  EXPECT_EQ(va["best_is"], "max");
  EXPECT_EQ(va["best"][1]["value"].get<double>(), 0.95);
  EXPECT_EQ(va["final"][1]["value"].get<double>(), 0.93);
  EXPECT_TRUE(va["final"][2].is_null()) << "run C has no val_accuracy";
}

TEST(RunsCompare, SameRunTwiceIsAnError) {
  const auto& f = fixture();
  auto r = krill({"runs", "compare", f.a, f.a.substr(0, 7), "--tracking-uri", f.uri});
  EXPECT_EQ(r.rc, 1) << where(r);
  EXPECT_TRUE(contains(r.err, "krill runs compare: error: run " + short_id(f.a) + " (baseline) is given twice")) << r.err;
  auto one = krill({"runs", "compare", f.a, "--tracking-uri", f.uri});
  EXPECT_EQ(one.rc, 2) << where(one);
}

// ---------------------------------------------------------------- plot

struct Image {
  int w = 0, h = 0;
  std::vector<unsigned char> rgb;
};

Image load_png(const std::string& path) {
  Image im;
  int n = 0;
  unsigned char* data = stbi_load(path.c_str(), &im.w, &im.h, &n, 3);
  if (!data) return im;
  im.rgb.assign(data, data + static_cast<std::size_t>(im.w) * im.h * 3);
  stbi_image_free(data);
  return im;
}

// Pixels within a small distance of an RGB colour.
std::size_t count_colour(const Image& im, int r, int g, int b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i + 2 < im.rgb.size(); i += 3)
    if (std::abs(im.rgb[i] - r) < 40 && std::abs(im.rgb[i + 1] - g) < 40 && std::abs(im.rgb[i + 2] - b) < 40) ++n;
  return n;
}

TEST(RunsPlot, TwoRunsGiveAPngWithTwoColouredCurves) {
  const auto& f = fixture();
  const std::string out = krill::test::make_temp_dir("runs_cli_plot") + "/val_loss.png";
  auto r = krill({"runs", "plot", f.a, f.b.substr(0, 8), "--metric", "val_loss", "-o", out, "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  EXPECT_TRUE(contains(r.out, "Wrote " + out)) << r.out;
  const std::string bytes = read_text(out);
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  Image im = load_png(out);
  ASSERT_GT(im.w, 100);
  ASSERT_GT(im.h, 100);
  std::size_t not_white = 0;
  for (std::size_t i = 0; i + 2 < im.rgb.size(); i += 3) not_white += (im.rgb[i] < 240 || im.rgb[i + 1] < 240 || im.rgb[i + 2] < 240);
  EXPECT_GT(not_white, 2000u) << "the image is blank";
  EXPECT_GT(count_colour(im, 0, 114, 178), 200u) << "first curve (blue)";
  EXPECT_GT(count_colour(im, 213, 94, 0), 200u) << "second curve (orange)";
  for (const auto& name : krill::test::cli::list_dir(fs::path(out).parent_path().string()))
    EXPECT_EQ(name, "val_loss.png") << "no temporary file left behind";

  const std::string one = fs::path(out).parent_path().string() + "/one.png";
  auto r1 = krill({"runs", "plot", f.a, "--metric", "val_loss", "-o", one, "--tracking-uri", f.uri});
  ASSERT_EQ(r1.rc, 0) << where(r1);
  Image im1 = load_png(one);
  EXPECT_GT(count_colour(im1, 0, 114, 178), 200u);
  EXPECT_LT(count_colour(im1, 213, 94, 0), 50u) << "one run: one curve";
}

TEST(RunsPlot, RunWithoutTheMetricListsWhatItHas) {
  const auto& f = fixture();
  const std::string dir = krill::test::make_temp_dir("runs_cli_plot_missing");
  auto r = krill({"runs", "plot", f.a, f.c, "--metric", "val_loss", "-o", dir + "/x.png", "--tracking-uri", f.uri});
  EXPECT_EQ(r.rc, 1) << where(r);
  EXPECT_TRUE(contains(r.err, "krill runs plot: error: run " + short_id(f.c) + " (other) has no metric 'val_loss'; its metrics: train_loss")) << r.err;
  EXPECT_TRUE(krill::test::cli::list_dir(dir).empty());
}

TEST(RunsPlot, UnwritableOutputIsAClearErrorAndWritesNothing) {
  const auto& f = fixture();
  const std::string dir = krill::test::make_temp_dir("runs_cli_plot_unwritable");
  auto missing_dir = krill({"runs", "plot", f.a, "--metric", "val_loss", "-o", dir + "/no/such/x.png", "--tracking-uri", f.uri});
  EXPECT_EQ(missing_dir.rc, 1) << where(missing_dir);
  EXPECT_TRUE(contains(missing_dir.err, "cannot write " + dir + "/no/such/x.png")) << missing_dir.err;
  EXPECT_TRUE(contains(missing_dir.err, "does not exist")) << missing_dir.err;
  krill::test::cli::write_text(dir + "/file", "x");
  auto under_file = krill({"runs", "plot", f.a, "--metric", "val_loss", "-o", dir + "/file/x.png", "--tracking-uri", f.uri});
  EXPECT_EQ(under_file.rc, 1) << where(under_file);
  EXPECT_TRUE(contains(under_file.err, "is not a directory")) << under_file.err;
  fs::create_directory(dir + "/d.png");
  auto is_dir = krill({"runs", "plot", f.a, "--metric", "val_loss", "-o", dir + "/d.png", "--tracking-uri", f.uri});
  EXPECT_EQ(is_dir.rc, 1) << where(is_dir);
  EXPECT_TRUE(contains(is_dir.err, "is a directory")) << is_dir.err;
  auto not_png = krill({"runs", "plot", f.a, "--metric", "val_loss", "-o", dir + "/x.jpg", "--tracking-uri", f.uri});
  EXPECT_EQ(not_png.rc, 1) << where(not_png);
  EXPECT_TRUE(contains(not_png.err, ".png")) << not_png.err;
  EXPECT_EQ(krill::test::cli::list_dir(dir), (std::vector<std::string>{"d.png", "file"}));
}

// ---------------------------------------------------------------- export

TEST(RunsExport, CsvIsTheStoresHistorySortedByKeyThenStep) {
  const auto& f = fixture();
  auto r = krill({"runs", "export", f.a.substr(0, 5), "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  auto lines = split_lines(r.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "run_id,key,step,value,timestamp");
  track::Store store(f.uri);
  std::vector<track::MetricPoint> expected;
  for (const auto& k : store.metric_keys(f.a))
    for (const auto& p : store.metric_history(f.a, k)) expected.push_back(p);
  ASSERT_EQ(lines.size(), expected.size() + 1) << r.out;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    auto cells = split_csv_line(lines[i + 1]);
    ASSERT_EQ(cells.size(), 5u) << lines[i + 1];
    EXPECT_EQ(cells[0], f.a);
    EXPECT_EQ(cells[1], expected[i].key);
    EXPECT_EQ(cells[2], std::to_string(expected[i].step));
    EXPECT_EQ(parse_double(cells[3]), expected[i].value) << "exact round trip";
    EXPECT_EQ(cells[4], std::to_string(expected[i].timestamp));
  }
  EXPECT_EQ(split_csv_line(lines[1])[1], "train_loss");
  EXPECT_EQ(split_csv_line(lines[1])[3], "1");
  EXPECT_EQ(split_csv_line(lines[3])[3], "0.4");
}

TEST(RunsExport, WideCsvHasOneRowPerStep) {
  const auto& f = fixture();
  auto r = krill({"runs", "export", f.a, "--format", "csv-wide", "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  EXPECT_EQ(lines[0], "step,train_loss,val_accuracy,val_loss");
  EXPECT_EQ(lines[1], "0,1,0.5,1.1");
  EXPECT_EQ(lines[5], "4,0.42,0.88,0.51");
}

TEST(RunsExport, JsonIsTheSummaryPlusHistoryAndCanGoToAFile) {
  const auto& f = fixture();
  const std::string dir = krill::test::make_temp_dir("runs_cli_export");
  const std::string out = dir + "/b.json";  // .json: JSON without --format
  auto r = krill({"runs", "export", f.b, "-o", out, "--tracking-uri", f.uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  EXPECT_TRUE(contains(r.out, "Wrote " + out + ": 15 points of 3 metrics")) << r.out;
  json j = json::parse(read_text(out));
  EXPECT_EQ(j["id"], f.b);
  EXPECT_EQ(j["params"]["hidden"], "64,64");
  track::Store store(f.uri);
  ASSERT_EQ(j["history"].size(), 3u);
  for (const auto& k : store.metric_keys(f.b)) {
    auto h = store.metric_history(f.b, k);
    ASSERT_EQ(j["history"][k].size(), h.size()) << k;
    for (std::size_t i = 0; i < h.size(); ++i) {
      EXPECT_EQ(j["history"][k][i]["step"].get<std::int64_t>(), h[i].step);
      EXPECT_EQ(j["history"][k][i]["value"].get<double>(), h[i].value);
      EXPECT_EQ(j["history"][k][i]["timestamp"].get<std::int64_t>(), h[i].timestamp);
    }
  }
  auto csv = krill({"runs", "export", f.b, "--format", "csv", "-o", dir + "/b.csv", "--tracking-uri", f.uri});
  ASSERT_EQ(csv.rc, 0) << where(csv);
  EXPECT_EQ(split_lines(read_text(dir + "/b.csv")).size(), 16u);
  auto bad = krill({"runs", "export", f.b, "-o", dir + "/none/b.csv", "--tracking-uri", f.uri});
  EXPECT_EQ(bad.rc, 1) << where(bad);
  EXPECT_TRUE(contains(bad.err, "does not exist")) << bad.err;
  EXPECT_EQ(krill::test::cli::list_dir(dir), (std::vector<std::string>{"b.csv", "b.json"}));
}

// ---------------------------------------------------------------- delete

TEST(RunsDelete, DeletesByPrefixAndRefusesARunningRunWithoutForce) {
  const std::string uri = krill::test::make_temp_dir("runs_cli_delete") + "/runs.db";
  std::string done_id;
  {
    auto run = track::start_run("e", opts(uri, "done"));
    run.log_metric("loss", 1.0, 0);
    run.log_metric("loss", 0.5, 1);
    done_id = run.id();
    run.end();
  }
  auto live = track::start_run("e", opts(uri, "live"));
  live.flush();

  auto r = krill({"runs", "delete", done_id.substr(0, 6), "--tracking-uri", uri});
  ASSERT_EQ(r.rc, 0) << where(r);
  EXPECT_TRUE(contains(r.out, "Deleted run " + done_id + " (done, experiment e, FINISHED, 2 metric points)")) << r.out;
  {
    track::Store store(uri);
    auto runs = store.list_runs();
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].id, live.id());
  }
  auto refused = krill({"runs", "delete", live.id(), "--tracking-uri", uri});
  EXPECT_EQ(refused.rc, 1) << where(refused);
  EXPECT_TRUE(contains(refused.err, "is RUNNING")) << refused.err;
  EXPECT_TRUE(contains(refused.err, "--force")) << refused.err;
  EXPECT_EQ(track::Store(uri).list_runs().size(), 1u) << "nothing deleted";

  auto forced = krill({"runs", "delete", live.id(), "--force", "--tracking-uri", uri});
  EXPECT_EQ(forced.rc, 0) << where(forced);
  EXPECT_TRUE(contains(forced.out, "Deleted run " + live.id() + " (live, experiment e, RUNNING")) << forced.out;
  EXPECT_TRUE(track::Store(uri).list_runs().empty());
  try {
    live.end();
  } catch (const std::exception&) {
  }
  auto gone = krill({"runs", "delete", done_id, "--tracking-uri", uri});
  EXPECT_EQ(gone.rc, 1) << where(gone);
  EXPECT_TRUE(contains(gone.err, "no run with id or prefix")) << gone.err;
}

TEST(RunsDelete, AnUnknownIdDeletesNothing) {
  const std::string uri = krill::test::make_temp_dir("runs_cli_delete_all") + "/runs.db";
  std::string id;
  {
    auto run = track::start_run("e", opts(uri, "keep"));
    id = run.id();
    run.end();
  }
  std::string unknown = id[0] == 'f' ? "e" : "f";
  auto r = krill({"runs", "delete", id, unknown + "0000000", "--tracking-uri", uri});
  EXPECT_EQ(r.rc, 1) << where(r);
  EXPECT_EQ(track::Store(uri).list_runs().size(), 1u);
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
