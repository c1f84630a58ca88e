#include "api.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

#include "run_json.hpp"

namespace krill::ui {

namespace fs = std::filesystem;

namespace {

track::RunInfo find_run(track::Store& store, const std::string& id_or_prefix) {
  try {
    return store.get_run(id_or_prefix);
  } catch (const ValueError& e) {
    throw NotFound(e.what());
  }
}

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_integer(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

bool is_hidden(const fs::path& p) {
  auto name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// p inside (or equal to) dir, both canonical.
bool within(const fs::path& p, const fs::path& dir) {
  auto rel = p.lexically_relative(dir);
  if (rel.empty()) return false;
  auto first = *rel.begin();
  return first != ".." && !rel.is_absolute();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::vector<std::string> split_keys(std::string_view text) {
  std::vector<std::string> keys;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    if (!item.empty()) keys.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return keys;
}

std::string runs_body(track::Store& store, const track::RunFilter& filter) {
  auto summaries = store.run_summaries(filter);
  std::string out = "[";
  bool first = true;
  for (const auto& s : summaries) {
    if (!first) out += ',';
    first = false;
    out += run_summary_json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  out += ']';
  return out;
}

nlohmann::json run_detail_json(track::Store& store, const std::string& id_or_prefix, std::size_t max_dir_files) {
  track::RunSummary s;
  s.info = find_run(store, id_or_prefix);
  const std::string& id = s.info.id;
  s.params = store.params(id);
  s.tags = store.tags(id);
  s.latest_metrics = store.latest_metrics(id);
  nlohmann::json j = run_summary_json(s);
  auto keys = store.metric_keys(id);
  std::sort(keys.begin(), keys.end());
  j["metric_keys"] = keys;

  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& a : store.artifacts(id)) {
    fs::path p(a.path);
    nlohmann::json item = {{"path", a.path}, {"name", p.filename().string()}, {"kind", a.kind}};
    std::error_code ec;
    auto st = fs::status(p, ec);
    item["exists"] = !ec && fs::exists(st);
    if (!ec && fs::is_regular_file(st)) {
      item["size"] = fs::file_size(p, ec);
    } else if (!ec && fs::is_directory(st)) {
      nlohmann::json files = nlohmann::json::array();
      std::vector<std::pair<std::string, std::uintmax_t>> found;
      fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec), end;
      for (; !ec && it != end; it.increment(ec)) {
        if (is_hidden(it->path())) {
          if (it->is_directory(ec)) it.disable_recursion_pending();
          continue;
        }
        if (it.depth() >= 4) it.disable_recursion_pending();
        if (!it->is_regular_file(ec)) continue;
        found.emplace_back(it->path().lexically_relative(p).generic_string(), it->file_size(ec));
        if (found.size() >= max_dir_files) {
          item["truncated"] = true;
          break;
        }
      }
      std::sort(found.begin(), found.end());
      for (auto& [rel, size] : found)
        files.push_back({{"path", (p / rel).string()}, {"rel", rel}, {"size", size}});
      item["files"] = std::move(files);
    }
    artifacts.push_back(std::move(item));
  }
  j["artifacts"] = std::move(artifacts);
  return j;
}

std::string metrics_body(track::Store& store, const std::string& id_or_prefix, const std::vector<std::string>& wanted) {
  auto run = find_run(store, id_or_prefix);
  auto all = store.metric_keys(run.id);
  std::vector<std::string> keys = wanted;
  if (keys.empty()) {
    keys = all;
    std::sort(keys.begin(), keys.end());
  } else {
    for (const auto& k : keys)
      if (std::find(all.begin(), all.end(), k) == all.end())
        throw NotFound("run " + run.id + " has no metric '" + k + "'");
  }
  std::string out = "{";
  bool first = true;
  for (const auto& key : keys) {
    auto points = store.metric_history(run.id, key);
    if (!first) out += ',';
    first = false;
    out += nlohmann::json(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += ":{\"step\":[";
    out.reserve(out.size() + points.size() * 24);
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (i) out += ',';
      append_integer(out, points[i].step);
    }
    out += "],\"value\":[";
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (i) out += ',';
      append_number(out, points[i].value);
    }
    out += "]}";
  }
  out += '}';
  return out;
}

fs::path resolve_artifact(track::Store& store, const std::string& id_or_prefix, const std::string& requested) {
  auto run = find_run(store, id_or_prefix);
  const std::string refused = "'" + requested + "' is not an artifact of run " + run.id;
  if (requested.empty() || requested.find('\0') != std::string::npos) throw NotFound(refused);
  std::error_code ec;
  fs::path target = fs::canonical(fs::path(requested), ec);
  if (ec || !fs::is_regular_file(target, ec)) throw NotFound(refused);
  for (const auto& a : store.artifacts(run.id)) {
    fs::path root = fs::canonical(fs::path(a.path), ec);
    if (ec) continue;
    if (target == root) return target;
    if (fs::is_directory(root, ec) && within(target, root)) {
      // nothing hidden (the atomic writer's staging directories) below the artifact
      bool hidden = false;
      for (const auto& part : target.lexically_relative(root))
        if (is_hidden(part)) hidden = true;
      if (!hidden) return target;
    }
  }
  throw NotFound(refused);
}

std::string_view artifact_content_type(const fs::path& path) {
  std::string ext = lower(path.extension().string());
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".gif") return "image/gif";
  if (ext == ".webp") return "image/webp";
  static const char* text[] = {".log", ".txt", ".csv", ".tsv", ".json", ".toml", ".yaml", ".yml", ".md", ".out",
                               ".err", ".svg", ".html", ".htm", ".xml", ".cfg", ".ini", ".py", ".sh", ""};
  for (const char* t : text)
    if (ext == t) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace krill::ui
