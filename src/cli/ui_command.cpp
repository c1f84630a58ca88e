// PLACEHOLDER: replaced by the dashboard implementation.
#include "commands.hpp"
#include "krill/util/error.hpp"
namespace krill::cli {
int run_ui(const UiArgs&) { throw ValueError("krill ui: not implemented yet"); }
}  // namespace krill::cli
