// Shared by the `krill runs` actions (runs_command.cpp: list/show/delete, runs_compare.cpp:
// compare/plot/export): opening the store without creating one, resolving ids, output.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "commands.hpp"
#include "krill/track/store.hpp"

namespace krill::cli::runs_detail {

// The store named by --tracking-uri, else $KRILL_TRACKING_URI, else ./krill-runs/runs.db. A path
// that does not exist is an IOError (reading must never create an empty store).
track::Store open_store(const RunsArgs& args);

// Each id or prefix resolved to its run; the same run given twice is a ValueError naming both.
std::vector<track::RunInfo> resolve_runs(track::Store& store, const std::vector<std::string>& ids,
                                         const std::string& action);

// A run with its params, tags and latest metrics.
track::RunSummary summary_of(track::Store& store, const track::RunInfo& run);

// End (or now, while it runs) minus start, as "3m21s".
std::string run_duration(const track::RunInfo& run);

// "3f2a9c1b (baseline)".
std::string run_label(const track::RunInfo& run);

// Best value of a metric: the minimum for keys containing "loss" or "error" (any case), else the
// maximum.
bool best_is_min(const std::string& key);

// Pretty JSON (2 spaces, invalid UTF-8 replaced) followed by a newline.
std::string json_text(const nlohmann::json& j);

// Checks that `path` can be created: its directory exists and is writable, and it is not a
// directory itself. `what` names the flag in messages ("-o").
void check_output_path(const std::string& path, const std::string& what);

// Writes `content` to `path` atomically (a temporary file in the same directory, renamed).
void write_file_atomically(const std::string& path, const std::string& content);

int runs_compare(track::Store& store, const RunsArgs& args);
int runs_plot(track::Store& store, const RunsArgs& args);
int runs_export(track::Store& store, const RunsArgs& args);

}  // namespace krill::cli::runs_detail
