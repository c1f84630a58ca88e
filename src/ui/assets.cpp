#include "assets.hpp"

namespace krill::ui {

const Asset* find_asset(std::string_view path) {
  for (const Asset& a : embedded_assets())
    if (a.path == path) return &a;
  return nullptr;
}

std::string_view content_type_for(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".json")) return "application/json; charset=utf-8";
  if (ends(".png")) return "image/png";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".ico")) return "image/x-icon";
  return "application/octet-stream";
}

}  // namespace krill::ui
