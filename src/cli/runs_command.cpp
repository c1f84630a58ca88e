// PLACEHOLDER: replaced by the runs-command implementation.
#include "commands.hpp"
#include "krill/util/error.hpp"
namespace krill::cli {
int run_runs(const RunsArgs&) { throw ValueError("krill runs: not implemented yet"); }
}  // namespace krill::cli
