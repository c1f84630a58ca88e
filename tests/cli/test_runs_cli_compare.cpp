// `krill runs compare|plot|export|delete` run as the real binary on stores filled with
// track::start_run: the comparison tables and JSON, the PNG it draws, exports equal to the store's
// history, and deletes. stb_image first and static, so its definitions stay in this file.
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
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli/runs_cli_support.hpp"

namespace krill::test::runs_cli {
namespace {

using nlohmann::json;

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

}  // namespace
}  // namespace krill::test::runs_cli
