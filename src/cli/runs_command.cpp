// krill runs list|show|compare|plot|export|delete: the run store's command line. This file holds
// the dispatch, the shared helpers (runs_common.hpp) and list/show/delete; compare, plot and
// export are in runs_compare.cpp, table formatting in runs_table.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "krill/util/error.hpp"
#include "run_json.hpp"
#include "runs_common.hpp"
#include "runs_table.hpp"

namespace krill::cli {

namespace fs = std::filesystem;
namespace rt = runs_text;

namespace runs_detail {

track::Store open_store(const RunsArgs& a) {
  const std::string uri = a.tracking_uri.empty() ? track::default_tracking_uri() : a.tracking_uri;
  std::error_code ec;
  if (!fs::exists(uri, ec))
    throw IOError("no run store at " + uri +
                  ": train a run first (krill train ...) or pass --tracking-uri / set KRILL_TRACKING_URI");
  if (fs::is_directory(uri, ec)) {
    std::string hint = fs::exists(fs::path(uri) / "runs.db", ec) ? " (did you mean " + (fs::path(uri) / "runs.db").string() + "?)" : "";
    throw IOError("run store " + uri + " is a directory: give the database file, e.g. --tracking-uri " +
                  (fs::path(uri) / "runs.db").string() + hint);
  }
  return track::Store(uri);
}

std::vector<track::RunInfo> resolve_runs(track::Store& store, const std::vector<std::string>& ids,
                                         const std::string& action) {
  std::vector<track::RunInfo> runs;
  std::map<std::string, std::string> given_as;  // run id -> the argument that named it
  for (const auto& id : ids) {
    track::RunInfo r = store.get_run(id);
    if (auto it = given_as.find(r.id); it != given_as.end())
      throw ValueError("run " + run_label(r) + " is given twice ('" + it->second + "' and '" + id + "'): " + action +
                       " needs different runs");
    given_as[r.id] = id;
    runs.push_back(std::move(r));
  }
  return runs;
}

track::RunSummary summary_of(track::Store& store, const track::RunInfo& run) {
  return track::RunSummary{run, store.params(run.id), store.tags(run.id), store.latest_metrics(run.id)};
}

std::string run_duration(const track::RunInfo& r) {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return rt::duration(r.end_time.value_or(now) - r.start_time);
}

std::string run_label(const track::RunInfo& run) { return rt::short_id(run.id) + " (" + run.name + ")"; }

bool best_is_min(const std::string& key) {
  std::string k = key;
  for (char& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return k.find("loss") != std::string::npos || k.find("error") != std::string::npos;
}

std::string json_text(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void check_output_path(const std::string& path, const std::string& what) {
  if (path.empty()) throw ValueError(what + " is empty: give a file name");
  std::error_code ec;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (fs::is_directory(path, ec))
    throw IOError("cannot write " + path + " (" + what + "): it is a directory; give a file name inside it");
  if (!fs::exists(dir, ec))
    throw IOError("cannot write " + path + " (" + what + "): directory " + dir.string() + " does not exist (create it first)");
  if (!fs::is_directory(dir, ec))
    throw IOError("cannot write " + path + " (" + what + "): " + dir.string() + " is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw IOError("cannot write " + path + " (" + what + "): directory " + dir.string() + " is not writable (" +
                  std::strerror(errno) + ")");
}

void write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IOError("cannot write " + path + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw IOError("cannot write " + path + ": " + std::strerror(err) + " (nothing was written)");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw IOError("cannot write " + path + ": " + std::strerror(err) + " (nothing was written)");
  }
}

}  // namespace runs_detail

using namespace runs_detail;

namespace {

// A param filter "KEY=VALUE": equal as text, or as numbers when both are numbers (lr=1e-3
// matches 0.001).
struct ParamFilter {
  std::string key, value;
};

std::vector<ParamFilter> parse_param_filters(const std::vector<std::string>& items) {
  std::vector<ParamFilter> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos)
      throw ValueError("--param '" + item + "': expected KEY=VALUE, e.g. --param lr=0.01");
    if (eq == 0) throw ValueError("--param '" + item + "': the key before '=' is empty; expected KEY=VALUE");
    out.push_back({item.substr(0, eq), item.substr(eq + 1)});
  }
  return out;
}

bool as_number(const std::string& s, double& v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

bool param_matches(const std::map<std::string, std::string>& params, const ParamFilter& f) {
  auto it = params.find(f.key);
  if (it == params.end()) return false;
  if (it->second == f.value) return true;
  double a = 0, b = 0;
  return as_number(it->second, a) && as_number(f.value, b) && a == b;
}

// Metric columns of the list table: the keys present in at least half of the runs, most common
// first, then losses, then accuracies/errors, then by name; at most four.
std::vector<std::string> common_metrics(const std::vector<track::RunSummary>& runs) {
  std::map<std::string, std::size_t> count;
  for (const auto& r : runs)
    for (const auto& [k, p] : r.latest_metrics) ++count[k];
  auto rank = [](const std::string& k) { return best_is_min(k) ? (k.find("loss") != std::string::npos ? 0 : 1)
                                                               : (k.find("acc") != std::string::npos ? 1 : 2); };
  std::vector<std::string> keys;
  for (const auto& [k, n] : count)
    if (2 * n >= runs.size()) keys.push_back(k);
  std::stable_sort(keys.begin(), keys.end(), [&](const std::string& a, const std::string& b) {
    if (count[a] != count[b]) return count[a] > count[b];
    return rank(a) < rank(b);
  });
  if (keys.size() > 4) keys.resize(4);
  return keys;
}

// Param columns: keys whose value is not the same in every listed run (missing counts as a
// value), by name; at most four.
std::vector<std::string> differing_params(const std::vector<track::RunSummary>& runs) {
  std::set<std::string> keys;
  for (const auto& r : runs)
    for (const auto& [k, v] : r.params) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    std::set<std::string> values;
    for (const auto& r : runs) {
      auto it = r.params.find(k);
      values.insert(it == r.params.end() ? std::string("\x01missing") : it->second);
    }
    if (values.size() > 1) out.push_back(k);
  }
  if (out.size() > 4) out.resize(4);
  return out;
}

std::string describe_filters(const RunsArgs& a) {
  std::string s;
  if (!a.experiment.empty()) s += " --experiment " + a.experiment;
  if (!a.status.empty()) s += " --status " + a.status;
  for (const auto& p : a.params) s += " --param " + p;
  return s;
}

int runs_list(track::Store& store, const RunsArgs& a) {
  track::RunFilter filter;
  if (!a.experiment.empty()) filter.experiment = a.experiment;
  std::string status = a.status;
  for (char& c : status) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!status.empty()) filter.status = track::parse_run_status(status);
  const auto wanted = parse_param_filters(a.params);
  std::vector<track::RunSummary> runs = store.run_summaries(filter);
  std::erase_if(runs, [&](const track::RunSummary& r) {
    return !std::all_of(wanted.begin(), wanted.end(), [&](const ParamFilter& f) { return param_matches(r.params, f); });
  });

  if (a.format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : runs) arr.push_back(ui::run_summary_json(r));
    std::cout << json_text(arr);
    return 0;
  }
  if (runs.empty()) {
    std::string filters = describe_filters(a);
    std::cout << (filters.empty() ? "No runs in " + store.path() : "No runs match" + filters + " in " + store.path());
    if (!a.experiment.empty()) {
      auto exps = store.list_experiments();
      if (std::find(exps.begin(), exps.end(), a.experiment) == exps.end()) {
        std::string names;
        for (const auto& e : exps) names += (names.empty() ? "" : ", ") + e;
        std::cout << " (there is no experiment '" << a.experiment << "'; experiments: " << (names.empty() ? "none" : names) << ")";
      }
    }
    std::cout << "\n";
    return 0;
  }

  const auto metrics = common_metrics(runs);
  const auto params = differing_params(runs);
  rt::Table t;
  t.add_column("ID");
  t.add_column("NAME", 24);
  t.add_column("EXPERIMENT", 16, false, 3);
  t.add_column("STATUS");
  t.add_column("START", 0, false, 4);
  t.add_column("DURATION", 0, true, 2);
  for (const auto& k : metrics) t.add_column(k, 14, true, 1);
  for (const auto& k : params) t.add_column(k, 16, false, 5);
  for (const auto& r : runs) {
    std::vector<std::string> row{rt::short_id(r.info.id), r.info.name, r.info.experiment, track::to_string(r.info.status),
                                 rt::local_time(r.info.start_time), run_duration(r.info)};
    for (const auto& k : metrics) {
      auto it = r.latest_metrics.find(k);
      row.push_back(it == r.latest_metrics.end() ? "-" : rt::number(it->second.value));
    }
    for (const auto& k : params) {
      auto it = r.params.find(k);
      row.push_back(it == r.params.end() ? "-" : it->second);
    }
    t.add_row(std::move(row));
  }
  std::vector<std::string> dropped;
  std::cout << t.render(rt::terminal_width(), 0, &dropped);
  if (!dropped.empty()) {
    std::string names;
    for (const auto& d : dropped) names += (names.empty() ? "" : ", ") + d;
    std::cout << "(not shown: " << names << "; widen the terminal, or use --format json)\n";
  }
  return 0;
}

int runs_show(track::Store& store, const RunsArgs& a) {
  const track::RunInfo r = store.get_run(a.ids.at(0));
  const track::RunSummary s = summary_of(store, r);
  std::map<std::string, std::vector<track::MetricPoint>> history;
  for (const auto& k : store.metric_keys(r.id)) history[k] = store.metric_history(r.id, k);
  const auto artifacts = store.artifacts(r.id);

  if (a.format == "json") {
    nlohmann::json j = ui::run_summary_json(s);
    for (const auto& [k, h] : history)
      if (j["metrics"].contains(k)) j["metrics"][k].update(ui::metric_stats_json(h));
    j["artifacts"] = ui::artifacts_json(artifacts);
    std::cout << json_text(j);
    return 0;
  }

  std::ostringstream o;
  auto field = [&](const std::string& name, const std::string& value) { o << "  " << name << std::string(15 - name.size(), ' ') << value << "\n"; };
  o << "Run " << r.id << "\n";
  field("name", r.name);
  field("experiment", r.experiment);
  field("status", track::to_string(r.status));
  field("start", rt::local_time(r.start_time));
  field("end", r.end_time ? rt::local_time(*r.end_time) : "-");
  field("duration", run_duration(r) + (r.end_time ? "" : " so far"));
  field("command line", r.command_line.empty() ? "-" : r.command_line);
  field("host", r.host + " (pid " + std::to_string(r.pid) + ")");
  field("krill version", r.krill_version.empty() ? "-" : r.krill_version);
  field("git commit", r.git_commit.value_or("-"));

  auto key_values = [&](const char* title, const std::map<std::string, std::string>& kv) {
    o << "\n" << title << " (" << kv.size() << ")" << (kv.empty() ? ": none" : ":") << "\n";
    rt::Table t;
    t.add_column("");
    t.add_column("");
    for (const auto& [k, v] : kv) t.add_row({k, v});
    if (!kv.empty()) {
      std::string text = t.render(0, 2);
      o << text.substr(text.find('\n') + 1);  // no header line
    }
  };
  key_values("Params", s.params);
  key_values("Tags", s.tags);

  o << "\nMetrics (" << history.size() << ")" << (history.empty() ? ": none" : ":") << "\n";
  if (!history.empty()) {
    rt::Table t;
    t.add_column("KEY");
    t.add_column("LAST", 0, true);
    t.add_column("STEP", 0, true);
    t.add_column("POINTS", 0, true);
    t.add_column("MIN", 0, true);
    t.add_column("MAX", 0, true);
    for (const auto& [k, h] : history) {
      auto stats = ui::metric_stats_json(h);
      auto last = s.latest_metrics.count(k) ? s.latest_metrics.at(k) : h.back();
      auto num = [](const nlohmann::json& v) { return v.is_null() ? std::string("-") : rt::number(v.get<double>()); };
      t.add_row({k, rt::number(last.value), std::to_string(last.step), std::to_string(h.size()), num(stats["min"]),
                 num(stats["max"])});
    }
    o << t.render(0, 2);
  }
  o << "\nArtifacts (" << artifacts.size() << ")" << (artifacts.empty() ? ": none" : ":") << "\n";
  if (!artifacts.empty()) {
    rt::Table t;
    t.add_column("PATH");
    t.add_column("KIND");
    t.add_column("ON DISK");
    for (const auto& x : artifacts) {
      std::error_code ec;
      t.add_row({x.path, x.kind, fs::exists(x.path, ec) ? "present" : "missing"});
    }
    o << t.render(0, 2);
  }
  std::cout << o.str();
  return 0;
}

int runs_delete(track::Store& store, const RunsArgs& a) {
  // Every id is resolved and checked before anything is deleted.
  std::vector<track::RunInfo> runs;
  std::set<std::string> seen;
  for (const auto& id : a.ids) {
    track::RunInfo r = store.get_run(id);
    if (seen.insert(r.id).second) runs.push_back(std::move(r));
  }
  if (!a.force)
    for (const auto& r : runs)
      if (r.status == track::RunStatus::Running)
        throw ValueError("run " + run_label(r) + " is RUNNING (pid " + std::to_string(r.pid) + " on " + r.host +
                         "): wait for it to end, stop it, or pass --force to delete it anyway; nothing was deleted");
  for (const auto& r : runs) {
    const std::size_t points = store.metric_count(r.id);
    store.delete_run(r.id);
    std::cout << "Deleted run " << r.id << " (" << r.name << ", experiment " << r.experiment << ", "
              << track::to_string(r.status) << ", " << points << " metric point" << (points == 1 ? "" : "s") << ")\n";
  }
  if (runs.size() > 1) std::cout << "Deleted " << runs.size() << " runs from " << store.path() << "\n";
  return 0;
}

}  // namespace

int run_runs(const RunsArgs& args) {
  static const char* kActions = "list, show, compare, plot, export, delete";
  const std::string& act = args.action;
  if (act != "list" && act != "show" && act != "compare" && act != "plot" && act != "export" && act != "delete")
    throw ValueError("unknown action '" + act + "' for 'krill runs' (commands: " + kActions + ")");
  track::Store store = open_store(args);
  if (act == "list") return runs_list(store, args);
  if (act == "show") return runs_show(store, args);
  if (act == "compare") return runs_compare(store, args);
  if (act == "plot") return runs_plot(store, args);
  if (act == "export") return runs_export(store, args);
  return runs_delete(store, args);
}

}  // namespace krill::cli
