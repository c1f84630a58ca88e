// Runs as JSON: the one shape shared by `krill runs ... --format json` and the dashboard's API,
// so a script written against one reads the other.
//
//   {"id", "name", "experiment", "status", "start_time", "end_time", "duration_s", "command_line",
//    "host", "pid", "krill_version", "git_commit", "params": {k: v}, "tags": {k: v},
//    "metrics": {key: {"value", "step", "timestamp"}}}
//
// Times are milliseconds since the Unix epoch (end_time null while running); a NaN or infinite
// metric value is written as null (JSON has no such numbers).
#pragma once
#include <nlohmann/json.hpp>

#include "krill/track/store.hpp"

namespace krill::ui {

nlohmann::json run_info_json(const track::RunInfo& run);   // the run's own fields only
nlohmann::json run_summary_json(const track::RunSummary& run);
nlohmann::json metric_points_json(const std::vector<track::MetricPoint>& points);  // [{"step","value","timestamp"}]
// {"count", "min", "max"} of a metric's history (min/max over finite values; null when none).
nlohmann::json metric_stats_json(const std::vector<track::MetricPoint>& points);
// [{"path", "kind", "exists"}]: "exists" is whether the path is still there now.
nlohmann::json artifacts_json(const std::vector<track::Artifact>& artifacts);

}  // namespace krill::ui
