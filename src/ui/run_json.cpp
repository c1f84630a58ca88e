#include "run_json.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

namespace krill::ui {

namespace {
nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

nlohmann::json run_info_json(const track::RunInfo& r) {
  nlohmann::json j;
  j["id"] = r.id;
  j["name"] = r.name;
  j["experiment"] = r.experiment;
  j["status"] = track::to_string(r.status);
  j["start_time"] = r.start_time;
  j["end_time"] = r.end_time ? nlohmann::json(*r.end_time) : nlohmann::json(nullptr);
  j["duration_s"] = r.end_time ? nlohmann::json(static_cast<double>(*r.end_time - r.start_time) / 1000.0)
                               : nlohmann::json(nullptr);
  j["command_line"] = r.command_line;
  j["host"] = r.host;
  j["pid"] = r.pid;
  j["krill_version"] = r.krill_version;
  j["git_commit"] = r.git_commit ? nlohmann::json(*r.git_commit) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json run_summary_json(const track::RunSummary& s) {
  nlohmann::json j = run_info_json(s.info);
  j["params"] = s.params;
  j["tags"] = s.tags;
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [key, p] : s.latest_metrics)
    metrics[key] = {{"value", number_or_null(p.value)}, {"step", p.step}, {"timestamp", p.timestamp}};
  j["metrics"] = std::move(metrics);
  return j;
}

nlohmann::json metric_points_json(const std::vector<track::MetricPoint>& points) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& p : points) a.push_back({{"step", p.step}, {"value", number_or_null(p.value)}, {"timestamp", p.timestamp}});
  return a;
}

nlohmann::json metric_stats_json(const std::vector<track::MetricPoint>& points) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& p : points)
    if (std::isfinite(p.value)) lo = std::min(lo, p.value), hi = std::max(hi, p.value);
  return {{"count", points.size()}, {"min", number_or_null(lo)}, {"max", number_or_null(hi)}};
}

nlohmann::json artifacts_json(const std::vector<track::Artifact>& artifacts) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : artifacts) {
    std::error_code ec;
    a.push_back({{"path", x.path}, {"kind", x.kind}, {"exists", std::filesystem::exists(x.path, ec)}});
  }
  return a;
}

}  // namespace krill::ui
