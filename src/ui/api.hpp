// The dashboard's JSON API over a run store: what each GET /api/... answers, independent of HTTP
// (server.cpp routes requests here). Runs are written in run_json.hpp's shape, the one
// `krill runs --format json` prints.
//
//   GET /api/runs?experiment=&status=      [run_summary_json ...], newest first
//   GET /api/runs/{id}                     run_summary_json + "metric_keys" + "artifacts"
//   GET /api/runs/{id}/metrics?keys=a,b    {"a": {"step": [...], "value": [...]}, ...} (columns:
//                                          the charts' typed arrays come straight from them)
//   GET /api/runs/{id}/artifact?path=P     the file P, only if it is one of the run's artifacts
//                                          or inside an artifact directory
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "krill/track/store.hpp"
#include "krill/util/error.hpp"

namespace krill::ui {

// An unknown run, metric or artifact: the server answers 404.
struct NotFound : Error { using Error::Error; };

std::string runs_body(track::Store& store, const track::RunFilter& filter);

// The run's summary plus "metric_keys" (sorted) and "artifacts": [{"path", "name", "kind",
// "exists", "size" (files), "files": [{"path", "rel", "size"}] (directories, recursively: at most
// max_dir_files regular files, hidden entries skipped)}].
nlohmann::json run_detail_json(track::Store& store, const std::string& id_or_prefix,
                               std::size_t max_dir_files = 2000);

// Histories of the given keys (all the run's keys when empty) as columns; a NaN or infinite value
// is null. An unknown key is NotFound.
std::string metrics_body(track::Store& store, const std::string& id_or_prefix, const std::vector<std::string>& keys);

// The canonical path of `requested` when it is a regular file recorded as one of the run's
// artifacts or lying inside one of its artifact directories (symbolic links resolved first, so
// neither "../" nor a link can reach outside); NotFound otherwise.
std::filesystem::path resolve_artifact(track::Store& store, const std::string& id_or_prefix,
                                       const std::string& requested);

// How an artifact is served: images as themselves, text-like files (logs, CSV, JSON, HTML, SVG)
// as text/plain so that nothing a run wrote can run script in the dashboard.
std::string_view artifact_content_type(const std::filesystem::path& path);

// "a,b,,c" -> {"a", "b", "c"}
std::vector<std::string> split_keys(std::string_view text);

}  // namespace krill::ui
