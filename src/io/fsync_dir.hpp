// Durability helper shared by the model directory writer (model_dir.cpp) and save_safetensors
// (safetensors_write.cpp); internal.
#pragma once
#include <string>

namespace krill::io::detail {

// fsync(2) on a directory, so that a rename inside it survives a crash; best effort (some file
// systems refuse fsync on a directory).
void fsync_dir(const std::string& dir);

}  // namespace krill::io::detail
