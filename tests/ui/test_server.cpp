// krill ui's server and JSON API (src/ui): runs, run detail, metric columns, artifact serving
// (only the run's own files: no path traversal, no symbolic link out), loopback Host check,
// "port in use" error, and reads while a run is writing. The browser test (browser_test.mjs) covers
// the page itself.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "krill/track/store.hpp"
#include "krill/util/error.hpp"
#include "server.hpp"
#include "support/expect.hpp"
#include "support/oracle.hpp"

namespace fs = std::filesystem;
using krill::test::contains;
using nlohmann::json;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

struct Fixture {
  std::string dir = krill::test::make_temp_dir("ui_server");
  std::string db = dir + "/runs.db";
  std::string run_id;
  fs::path model = fs::path(dir) / "model";

  Fixture() {
    write_file(model / "logs" / "rank-0.log", "rank 0 line 1\nrank 0 line 2\n");
    write_file(model / "loss.png", std::string("\x89PNG\r\n\x1a\n", 8) + "fake");
    write_file(model / ".staging" / "secret.txt", "hidden");
    write_file(model / "page.html", "<script>alert(1)</script>");
    write_file(fs::path(dir) / "outside.txt", "not an artifact");
    write_file(fs::path(dir) / "single.csv", "a,b\n1,2\n");
    fs::create_symlink(fs::path(dir) / "outside.txt", model / "link.txt");

    krill::track::RunOptions o;
    o.tracking_uri = db;
    o.name = "<script>alert(1)</script>";
    auto run = krill::track::start_run("exp-a", o);
    run.log_param("lr", 0.01);
    run.set_tag("note", "<b>x</b>");
    for (int s = 1; s <= 5; ++s) run.log_metric("loss", 1.0 / s, s);
    run.log_metric("weird", std::numeric_limits<double>::infinity(), 1);   // (a NaN is refused by the store)
    run.log_artifact(model.string(), "model");
    run.log_artifact((fs::path(dir) / "single.csv").string());
    run_id = run.id();
    run.end();

    krill::track::RunOptions o2;
    o2.tracking_uri = db;
    o2.name = "second";
    auto other = krill::track::start_run("exp-b", o2);
    other.end(krill::track::RunStatus::Failed);
  }
};

struct Served {
  krill::ui::Server server;
  std::thread thread;
  httplib::Client client;
  explicit Served(const std::string& db, std::string host = "127.0.0.1")
      : server(krill::ui::ServerOptions{host, 0, db}), client("127.0.0.1", server.port()) {
    thread = std::thread([this] { server.run(); });
    for (int i = 0; i < 200; ++i) {   // until it answers
      if (auto r = client.Get("/api/info")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Served() {
    server.stop();
    thread.join();
  }
  httplib::Result get(const std::string& path, const httplib::Headers& headers = {}) { return client.Get(path, headers); }
  std::string artifact(const std::string& id, const std::string& path) {
    return "/api/runs/" + id + "/artifact?path=" + httplib::detail::encode_query_param(path);
  }
};

}  // namespace

TEST(UiServer, RunsListAndFilters) {
  Fixture f;
  Served s(f.db);
  auto r = s.get("/api/runs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  EXPECT_TRUE(contains(r->get_header_value("Content-Type"), "application/json"));
  auto runs = json::parse(r->body);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1]["name"], "<script>alert(1)</script>");   // newest first
  EXPECT_EQ(runs[1]["params"]["lr"], "0.01");
  EXPECT_EQ(runs[1]["tags"]["note"], "<b>x</b>");
  EXPECT_DOUBLE_EQ(runs[1]["metrics"]["loss"]["value"].get<double>(), 0.2);

  auto a = json::parse(s.get("/api/runs?experiment=exp-a")->body);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0]["id"], f.run_id);
  auto failed = json::parse(s.get("/api/runs?status=FAILED")->body);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["name"], "second");
  auto bad = s.get("/api/runs?status=SLEEPING");
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(json::parse(bad->body).contains("error"));

  auto exps = json::parse(s.get("/api/experiments")->body);
  EXPECT_NE(std::find(exps.begin(), exps.end(), "exp-a"), exps.end());
}

TEST(UiServer, RunDetailAndMetrics) {
  Fixture f;
  Served s(f.db);
  auto r = s.get("/api/runs/" + f.run_id.substr(0, 8));   // a unique prefix works
  ASSERT_EQ(r->status, 200);
  auto run = json::parse(r->body);
  EXPECT_EQ(run["id"], f.run_id);
  EXPECT_EQ(run["metric_keys"], json({"loss", "weird"}));
  ASSERT_EQ(run["artifacts"].size(), 2u);
  const auto& dir = run["artifacts"][0];
  EXPECT_EQ(dir["kind"], "model");
  std::vector<std::string> rels;
  for (const auto& file : dir["files"]) rels.push_back(file["rel"]);
  // hidden entries are not listed; the link is (serving it is refused below)
  EXPECT_EQ(rels, (std::vector<std::string>{"link.txt", "logs/rank-0.log", "loss.png", "page.html"}));

  auto m = json::parse(s.get("/api/runs/" + f.run_id + "/metrics")->body);
  EXPECT_EQ(m["loss"]["step"], json({1, 2, 3, 4, 5}));
  EXPECT_DOUBLE_EQ(m["loss"]["value"][1].get<double>(), 0.5);
  EXPECT_TRUE(m["weird"]["value"][0].is_null());   // inf -> null
  auto one = json::parse(s.get("/api/runs/" + f.run_id + "/metrics?keys=loss")->body);
  EXPECT_EQ(one.size(), 1u);

  auto unknown = s.get("/api/runs/ffffffff");
  EXPECT_EQ(unknown->status, 404);
  EXPECT_TRUE(json::parse(unknown->body).contains("error"));
  EXPECT_EQ(s.get("/api/runs/" + f.run_id + "/metrics?keys=nope")->status, 404);
  EXPECT_EQ(s.get("/api/nothing")->status, 404);
}

TEST(UiServer, ArtifactsOnlyTheRunsOwnFiles) {
  Fixture f;
  Served s(f.db);
  auto log = s.get(s.artifact(f.run_id, (f.model / "logs" / "rank-0.log").string()));
  ASSERT_EQ(log->status, 200);
  EXPECT_EQ(log->body, "rank 0 line 1\nrank 0 line 2\n");
  EXPECT_TRUE(contains(log->get_header_value("Content-Type"), "text/plain"));
  auto tail = s.get(s.artifact(f.run_id, (f.model / "logs" / "rank-0.log").string()) + "&tail=14");
  EXPECT_EQ(tail->body, "rank 0 line 2\n");
  EXPECT_EQ(tail->get_header_value("X-Artifact-Size"), "28");
  auto png = s.get(s.artifact(f.run_id, (f.model / "loss.png").string()));
  EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
  // an HTML file a run wrote is served as text, sandboxed
  auto html = s.get(s.artifact(f.run_id, (f.model / "page.html").string()));
  EXPECT_TRUE(contains(html->get_header_value("Content-Type"), "text/plain"));
  EXPECT_EQ(html->get_header_value("Content-Security-Policy"), "sandbox");
  // a file artifact recorded on its own
  EXPECT_EQ(s.get(s.artifact(f.run_id, f.dir + "/single.csv"))->status, 200);

  for (const std::string& p : {f.dir + "/outside.txt", (f.model / ".." / "outside.txt").string(),
                               (f.model / "logs" / ".." / ".." / "runs.db").string(), std::string("/etc/passwd"),
                               (f.model / "link.txt").string(), (f.model / ".staging" / "secret.txt").string(),
                               f.model.string(), std::string(""), std::string("relative/loss.png")}) {
    auto r = s.get(s.artifact(f.run_id, p));
    EXPECT_EQ(r->status, 404) << p;
    EXPECT_FALSE(contains(r->body, "not an artifact\n")) << p;
  }
  // another run's artifacts are not this run's
  auto runs = json::parse(s.get("/api/runs?status=FAILED")->body);
  EXPECT_EQ(s.get(s.artifact(runs[0]["id"], (f.model / "loss.png").string()))->status, 404);
}

TEST(UiServer, PageAndAssets) {
  Fixture f;
  Served s(f.db);
  auto page = s.get("/");
  ASSERT_EQ(page->status, 200);
  EXPECT_TRUE(contains(page->body, "<script type=\"module\" src=\"/app.js\">"));
  EXPECT_TRUE(contains(page->get_header_value("Content-Security-Policy"), "script-src 'self'"));
  auto uplot = s.get("/vendor/uPlot.iife.min.js");
  ASSERT_EQ(uplot->status, 200);
  EXPECT_TRUE(contains(uplot->body, "uPlot"));
  EXPECT_TRUE(contains(uplot->get_header_value("Content-Type"), "javascript"));
  EXPECT_EQ(s.get("/app.js")->status, 200);
  EXPECT_EQ(s.get("/style.css")->status, 200);
  EXPECT_EQ(s.get("/nothing.js")->status, 404);
}

TEST(UiServer, LoopbackRefusesOtherHostNames) {
  Fixture f;
  Served s(f.db);
  auto evil = s.get("/api/runs", {{"Host", "evil.example:8080"}});
  EXPECT_EQ(evil->status, 403);
  EXPECT_TRUE(contains(json::parse(evil->body)["error"], "--host 0.0.0.0"));
  EXPECT_EQ(s.get("/api/runs", {{"Host", "localhost:" + std::to_string(s.server.port())}})->status, 200);
  EXPECT_EQ(s.get("/", {{"Host", "127.0.0.1"}})->status, 200);
}

TEST(UiServer, PortInUseAndBadStore) {
  Fixture f;
  Served s(f.db);
  auto msg = krill::test::error_of<krill::IOError>(
      [&] { krill::ui::Server second(krill::ui::ServerOptions{"127.0.0.1", s.server.port(), f.db}); });
  EXPECT_EQ(msg, "port " + std::to_string(s.server.port()) + " is in use: pass --port N");
  EXPECT_EQ(s.server.url(), "http://127.0.0.1:" + std::to_string(s.server.port()) + "/");

  auto not_db = f.dir + "/not-a-db";
  write_file(not_db, std::string(4096, 'x'));
  auto bad = krill::test::error_of<krill::IOError>([&] { krill::ui::Server x(krill::ui::ServerOptions{"127.0.0.1", 0, not_db}); });
  EXPECT_TRUE(contains(bad, "not-a-db")) << bad;
}

TEST(UiServer, ReadsWhileARunWrites) {
  Fixture f;
  Served s(f.db);
  krill::track::RunOptions o;
  o.tracking_uri = f.db;
  o.name = "busy";
  o.flush_interval_s = 0.01;
  auto run = krill::track::start_run("live", o);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int step = 0; step < 20000; ++step) {
      run.log_metric("loss", 1.0 / (step + 1), step);
      if (step % 500 == 0) run.flush();
    }
    run.end();
    done = true;
  });
  std::size_t last = 0;
  int reads = 0;
  while (!done || reads < 5) {
    auto r = s.get("/api/runs/" + run.id() + "/metrics?keys=loss");
    ASSERT_TRUE(r);
    if (r->status == 404) continue;   // no point written yet
    ASSERT_EQ(r->status, 200) << r->body;
    auto n = json::parse(r->body)["loss"]["step"].size();
    EXPECT_GE(n, last);   // histories only grow
    last = n;
    ++reads;
    ASSERT_EQ(s.get("/api/runs")->status, 200);
  }
  writer.join();
  auto all = json::parse(s.get("/api/runs/" + run.id() + "/metrics?keys=loss")->body);
  EXPECT_EQ(all["loss"]["step"].size(), 20000u);
}
