// krill runs compare / plot / export (see runs_command.cpp for the others).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "krill/io/plot.hpp"
#include "krill/util/error.hpp"
#include "run_json.hpp"
#include "runs_common.hpp"
#include "runs_table.hpp"

namespace krill::cli::runs_detail {

namespace fs = std::filesystem;
namespace rt = runs_text;

namespace {

// The last point (highest step, then newest: the store's order) and the best finite one.
struct MetricSummary {
  std::optional<track::MetricPoint> final, best;
};

MetricSummary summarize(const std::vector<track::MetricPoint>& h, bool min_is_best) {
  MetricSummary s;
  if (h.empty()) return s;
  s.final = h.back();
  for (const auto& p : h) {
    if (!std::isfinite(p.value)) continue;
    if (!s.best || (min_is_best ? p.value < s.best->value : p.value > s.best->value)) s.best = p;
  }
  return s;
}

nlohmann::json point_json(const std::optional<track::MetricPoint>& p) {
  if (!p) return nullptr;
  return {{"value", std::isfinite(p->value) ? nlohmann::json(p->value) : nlohmann::json(nullptr)}, {"step", p->step}};
}

// A double in its shortest form that reads back to the same value ("0.1", not 0.10000000000000001).
std::string exact_number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

int runs_compare(track::Store& store, const RunsArgs& a) {
  const auto runs = resolve_runs(store, a.ids, "compare");
  std::vector<track::RunSummary> sums;
  std::set<std::string> param_keys, metric_keys;
  std::vector<std::map<std::string, std::vector<track::MetricPoint>>> history(runs.size());
  for (std::size_t i = 0; i < runs.size(); ++i) {
    sums.push_back(summary_of(store, runs[i]));
    for (const auto& [k, v] : sums[i].params) param_keys.insert(k);
    for (const auto& k : store.metric_keys(runs[i].id)) {
      metric_keys.insert(k);
      history[i][k] = store.metric_history(runs[i].id, k);
    }
  }
  // Params: differing (missing in a run counts as different) and equal ones.
  std::vector<std::string> differ, equal;
  for (const auto& k : param_keys) {
    bool same = true;
    for (const auto& s : sums)
      same = same && s.params.count(k) && sums[0].params.count(k) && s.params.at(k) == sums[0].params.at(k);
    (same ? equal : differ).push_back(k);
  }

  if (a.format == "json") {
    nlohmann::json j;
    j["runs"] = nlohmann::json::array();
    for (const auto& s : sums) j["runs"].push_back(ui::run_summary_json(s));
    nlohmann::json d = nlohmann::json::object(), e = nlohmann::json::object();
    for (const auto& k : differ) {
      nlohmann::json values = nlohmann::json::array();
      for (const auto& s : sums) values.push_back(s.params.count(k) ? nlohmann::json(s.params.at(k)) : nlohmann::json(nullptr));
      d[k] = values;
    }
    for (const auto& k : equal) e[k] = sums[0].params.at(k);
    j["params"] = {{"differ", d}, {"equal", e}};
    nlohmann::json m = nlohmann::json::object();
    for (const auto& k : metric_keys) {
      const bool min = best_is_min(k);
      nlohmann::json finals = nlohmann::json::array(), bests = nlohmann::json::array();
      for (std::size_t i = 0; i < runs.size(); ++i) {
        auto it = history[i].find(k);
        MetricSummary ms = it == history[i].end() ? MetricSummary{} : summarize(it->second, min);
        finals.push_back(point_json(ms.final));
        bests.push_back(point_json(ms.best));
      }
      m[k] = {{"best_is", min ? "min" : "max"}, {"final", finals}, {"best", bests}};
    }
    j["metrics"] = m;
    std::cout << json_text(j);
    return 0;
  }

  rt::Table t;
  t.add_column("RUN", 28);
  t.add_column("");
  for (const auto& r : runs) t.add_column(rt::short_id(r.id), 20, false, 1);
  auto row = [&](std::string label, std::string kind, auto&& cell) {
    std::vector<std::string> cells{std::move(label), std::move(kind)};
    for (std::size_t i = 0; i < runs.size(); ++i) cells.push_back(cell(i));
    t.add_row(std::move(cells));
  };
  row("name", "", [&](std::size_t i) { return runs[i].name; });
  row("experiment", "", [&](std::size_t i) { return runs[i].experiment; });
  row("status", "", [&](std::size_t i) { return track::to_string(runs[i].status); });
  row("start", "", [&](std::size_t i) { return rt::local_time(runs[i].start_time); });
  row("duration", "", [&](std::size_t i) {
    return run_duration(runs[i]) + (runs[i].end_time ? "" : " so far");
  });

  std::string equal_names;
  for (const auto& k : equal) equal_names += (equal_names.empty() ? "" : ", ") + k;
  if (param_keys.empty()) t.add_note("Params: none");
  else if (differ.empty()) t.add_note("Params: all " + std::to_string(equal.size()) + " equal (" + rt::ellipsize(equal_names, 60) + ")");
  else
    t.add_note("Params: " + std::to_string(differ.size()) + " differ, " + std::to_string(equal.size()) + " equal" +
               (equal.empty() ? "" : " (" + rt::ellipsize(equal_names, 60) + ")"));
  for (const auto& k : differ)
    row(k, "", [&](std::size_t i) { return sums[i].params.count(k) ? sums[i].params.at(k) : std::string("-"); });

  if (metric_keys.empty()) t.add_note("Metrics: none");
  else t.add_note("Metrics: final = last step's value; best = min for keys containing \"loss\" or \"error\", max otherwise");
  for (const auto& k : metric_keys) {
    const bool min = best_is_min(k);
    std::vector<MetricSummary> ms;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      auto it = history[i].find(k);
      ms.push_back(it == history[i].end() ? MetricSummary{} : summarize(it->second, min));
    }
    row(k, "final", [&](std::size_t i) { return ms[i].final ? rt::number(ms[i].final->value) : std::string("-"); });
    row("", min ? "best (min)" : "best (max)",
        [&](std::size_t i) { return ms[i].best ? rt::number(ms[i].best->value) : std::string("-"); });
    row("", "at step", [&](std::size_t i) { return ms[i].best ? std::to_string(ms[i].best->step) : std::string("-"); });
  }
  std::vector<std::string> dropped;
  std::cout << t.render(rt::terminal_width(), 0, &dropped);
  if (!dropped.empty()) {
    std::string names;
    for (const auto& d : dropped) names += (names.empty() ? "" : ", ") + d;
    std::cout << "(runs not shown: " << names << "; widen the terminal, or use --format json)\n";
  }
  return 0;
}

int runs_plot(track::Store& store, const RunsArgs& a) {
  const std::string& out = a.output;
  if (lower(fs::path(out).extension().string()) != ".png")
    throw ValueError("-o " + out + ": krill runs plot writes PNG images; give a file name ending in .png");
  check_output_path(out, "-o");
  const auto runs = resolve_runs(store, a.ids, "plot");
  std::vector<io::Series> series;
  std::size_t points = 0;
  for (const auto& r : runs) {
    auto keys = store.metric_keys(r.id);
    if (std::find(keys.begin(), keys.end(), a.metric) == keys.end()) {
      std::string names;
      for (const auto& k : keys) names += (names.empty() ? "" : ", ") + k;
      throw ValueError("run " + run_label(r) + " has no metric '" + a.metric + "'; " +
                       (keys.empty() ? std::string("it has no metrics") : "its metrics: " + names));
    }
    io::Series s{r.name + " (" + rt::short_id(r.id) + ")", {}, {}};
    for (const auto& p : store.metric_history(r.id, a.metric)) {
      s.x.push_back(static_cast<double>(p.step));
      s.y.push_back(p.value);
    }
    points += s.x.size();
    series.push_back(std::move(s));
  }
  io::LinePlotOptions o;
  o.title = a.metric;
  o.x_label = "step";
  o.y_label = a.metric;
  o.legend = io::LinePlotOptions::Legend::Best;
  io::write_line_plot(out, series, o);
  std::cout << "Wrote " << out << ": " << a.metric << " of " << runs.size() << " run" << (runs.size() > 1 ? "s" : "")
            << " (" << points << " points)\n";
  return 0;
}

int runs_export(track::Store& store, const RunsArgs& a) {
  std::string format = a.format;
  if (format.empty()) format = lower(fs::path(a.output).extension().string()) == ".json" ? "json" : "csv";
  if (!a.output.empty()) check_output_path(a.output, "-o");
  const track::RunInfo r = store.get_run(a.ids.at(0));
  const auto keys = store.metric_keys(r.id);
  std::map<std::string, std::vector<track::MetricPoint>> history;
  std::size_t points = 0;
  for (const auto& k : keys) {
    history[k] = store.metric_history(r.id, k);
    points += history[k].size();
  }

  std::string text;
  if (format == "json") {
    nlohmann::json j = ui::run_summary_json(summary_of(store, r));
    nlohmann::json h = nlohmann::json::object();
    for (const auto& [k, pts] : history) h[k] = ui::metric_points_json(pts);
    j["history"] = std::move(h);
    text = json_text(j);
  } else if (format == "csv-wide") {
    // One row per step, one column per metric (empty where a metric has no point at that
    // step; the last point when it has several).
    std::map<std::int64_t, std::map<std::string, double>> rows;
    for (const auto& [k, pts] : history)
      for (const auto& p : pts) rows[p.step][k] = p.value;
    std::ostringstream o;
    o << "step";
    for (const auto& k : keys) o << "," << csv_field(k);
    o << "\n";
    for (const auto& [step, values] : rows) {
      o << step;
      for (const auto& k : keys) {
        auto it = values.find(k);
        o << "," << (it == values.end() ? std::string() : exact_number(it->second));
      }
      o << "\n";
    }
    text = o.str();
  } else {
    std::ostringstream o;
    o << "run_id,key,step,value,timestamp\n";
    for (const auto& [k, pts] : history)
      for (const auto& p : pts)
        o << r.id << "," << csv_field(k) << "," << p.step << "," << exact_number(p.value) << "," << p.timestamp << "\n";
    text = o.str();
  }
  if (a.output.empty()) {
    std::cout << text;
  } else {
    write_file_atomically(a.output, text);
    std::cout << "Wrote " << a.output << ": " << points << " points of " << keys.size() << " metric"
              << (keys.size() == 1 ? "" : "s") << " of run " << run_label(r) << " (" << format << ")\n";
  }
  return 0;
}

}  // namespace krill::cli::runs_detail
