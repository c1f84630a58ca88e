// The dashboard's web assets (web/*.html, *.js, *.css and uPlot from web/node_modules), embedded
// into the krill binary at build time by cmake/KrillEmbed.cmake (the table is generated).
#pragma once
#include <span>
#include <string_view>

namespace krill::ui {

struct Asset {
  std::string_view path;   // URL path: "/index.html", "/app.js", "/vendor/uPlot.iife.min.js"
  std::string_view data;   // the file's bytes
};

std::span<const Asset> embedded_assets();                 // generated
const Asset* find_asset(std::string_view path);           // nullptr when there is none
std::string_view content_type_for(std::string_view path); // of an asset, by extension

}  // namespace krill::ui
