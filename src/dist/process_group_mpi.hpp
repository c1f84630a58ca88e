// The MPI transport (internal): the only file that includes <mpi.h> is process_group_mpi.cpp.
#pragma once
#include <memory>

#include "krill/dist/dist.hpp"

namespace krill::dist::detail {

// MPI_Init_thread (asking for MPI_THREAD_MULTIPLE) and a ProcessGroup over MPI_COMM_WORLD.
// Throws DistributedError when MPI fails or was finalised before.
std::unique_ptr<ProcessGroup> mpi_init_world(int* argc, char*** argv);
// MPI_Finalize (no-op when MPI is not initialised or already finalised).
void mpi_finalize();
// The thread level MPI granted ("MPI_THREAD_MULTIPLE", ...).
const char* mpi_thread_level_name();

}  // namespace krill::dist::detail
