# Debian 12 packages only: libdnnl-dev, libopenblas-openmp-dev, nlohmann-json3-dev, libcli11-dev.
# Imported as INTERFACE targets named krill_deps::* so the rest of the build names what it uses.

# krill_deps::<name>: an INTERFACE target with an include directory and the libraries (and link
# flags) that follow it, all found by path rather than through another package's imported
# target, so the exported krill package can carry them.
function(krill_interface_dep name include_dir)
  add_library(krill_deps_${name} INTERFACE)
  target_link_libraries(krill_deps_${name} INTERFACE ${ARGN})
  target_include_directories(krill_deps_${name} INTERFACE ${include_dir})
  add_library(krill_deps::${name} ALIAS krill_deps_${name})
endfunction()

# OpenBLAS: the OpenMP build, so BLAS and oneDNN share one thread pool (mixing OpenBLAS's
# pthread pool with OpenMP measured 10x slower here). The RUNPATH pins the OpenMP variant
# whatever the Debian alternatives point libopenblas.so.0 at.
set(KRILL_OPENBLAS_DIR "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp" CACHE PATH
    "Directory holding the OpenMP build of OpenBLAS")
find_library(KRILL_OPENBLAS_LIB NAMES openblas PATHS ${KRILL_OPENBLAS_DIR} NO_DEFAULT_PATH)
if(NOT KRILL_OPENBLAS_LIB)
  message(FATAL_ERROR "OpenBLAS (OpenMP build) not found in ${KRILL_OPENBLAS_DIR}: "
                      "apt-get install libopenblas-openmp-dev")
endif()
find_path(KRILL_CBLAS_INCLUDE NAMES cblas.h PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp
          /usr/include/${CMAKE_LIBRARY_ARCHITECTURE} NO_DEFAULT_PATH)
krill_interface_dep(openblas ${KRILL_CBLAS_INCLUDE} ${KRILL_OPENBLAS_LIB} "-Wl,-rpath,${KRILL_OPENBLAS_DIR}")

find_library(KRILL_DNNL_LIB NAMES dnnl)
find_path(KRILL_DNNL_INCLUDE NAMES oneapi/dnnl/dnnl.hpp)
if(NOT KRILL_DNNL_LIB OR NOT KRILL_DNNL_INCLUDE)
  message(FATAL_ERROR "oneDNN not found: apt-get install libdnnl-dev")
endif()
krill_interface_dep(dnnl ${KRILL_DNNL_INCLUDE} ${KRILL_DNNL_LIB})

find_package(nlohmann_json 3.10 REQUIRED)
add_library(krill_deps_json INTERFACE)
target_link_libraries(krill_deps_json INTERFACE nlohmann_json::nlohmann_json)
add_library(krill_deps::json ALIAS krill_deps_json)

find_path(KRILL_CLI11_INCLUDE NAMES CLI/CLI.hpp)
if(NOT KRILL_CLI11_INCLUDE)
  message(FATAL_ERROR "CLI11 not found: apt-get install libcli11-dev")
endif()
add_library(krill_deps_cli11 INTERFACE)
target_include_directories(krill_deps_cli11 INTERFACE ${KRILL_CLI11_INCLUDE})
add_library(krill_deps::cli11 ALIAS krill_deps_cli11)

# PLplot (libplplot-dev) draws the loss curves; its cairo driver (plplot-driver-cairo) writes PNG.
# Located by path (not a pkg-config imported target) so the exported package can carry it.
find_library(KRILL_PLPLOT_LIB NAMES plplot)
find_path(KRILL_PLPLOT_INCLUDE NAMES plplot.h PATH_SUFFIXES plplot)
if(NOT KRILL_PLPLOT_LIB OR NOT KRILL_PLPLOT_INCLUDE)
  message(FATAL_ERROR "PLplot not found: apt-get install libplplot-dev plplot-driver-cairo")
endif()
krill_interface_dep(plplot ${KRILL_PLPLOT_INCLUDE} ${KRILL_PLPLOT_LIB})

# MPI (Debian's OpenMPI: libopenmpi-dev) is the CPU transport of krill::dist. Located by path like
# the others (not FindMPI's imported target) so the exported package can carry it; only the C
# bindings are used (libmpi), never the deprecated C++ ones.
find_path(KRILL_MPI_INCLUDE NAMES mpi.h
          PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openmpi/include /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/mpi)
find_library(KRILL_MPI_LIB NAMES mpi PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openmpi/lib)
if(NOT KRILL_MPI_INCLUDE OR NOT KRILL_MPI_LIB)
  message(FATAL_ERROR "MPI not found: apt-get install libopenmpi-dev openmpi-bin")
endif()
krill_interface_dep(mpi ${KRILL_MPI_INCLUDE} ${KRILL_MPI_LIB})
target_compile_definitions(krill_deps_mpi INTERFACE OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)  # C bindings only
# SQLite (Debian libsqlite3-dev) is the run-tracking store of krill::track. Located by path like
# the others so the exported package can carry it.
find_path(KRILL_SQLITE_INCLUDE NAMES sqlite3.h)
find_library(KRILL_SQLITE_LIB NAMES sqlite3)
if(NOT KRILL_SQLITE_INCLUDE OR NOT KRILL_SQLITE_LIB)
  message(FATAL_ERROR "SQLite not found: apt-get install libsqlite3-dev")
endif()
krill_interface_dep(sqlite ${KRILL_SQLITE_INCLUDE} ${KRILL_SQLITE_LIB})

# The launcher the MPI tests (tests/dist.cmake) and `krill launch` run.
find_program(KRILL_MPIEXEC NAMES mpirun mpiexec)

# cpp-httplib (Debian libcpp-httplib-dev: a compiled library with OpenSSL, zlib and Brotli
# support, found through pkg-config) serves the dashboard (krill ui). Only krill_ui links it, so
# it is never part of the installed package.
find_package(PkgConfig REQUIRED)
pkg_check_modules(KRILL_HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
if(NOT KRILL_HTTPLIB_FOUND)
  message(FATAL_ERROR "cpp-httplib not found (pkg-config cpp-httplib): apt-get install libcpp-httplib-dev")
endif()
add_library(krill_deps_httplib INTERFACE)
target_link_libraries(krill_deps_httplib INTERFACE PkgConfig::KRILL_HTTPLIB)
add_library(krill_deps::httplib ALIAS krill_deps_httplib)
# zlib (Debian zlib1g-dev) reads gzip-compressed IDX files (MNIST, Fashion-MNIST) directly.
# Located by path like the others so the exported package can carry it.
find_path(KRILL_ZLIB_INCLUDE NAMES zlib.h)
find_library(KRILL_ZLIB_LIB NAMES z)
if(NOT KRILL_ZLIB_INCLUDE OR NOT KRILL_ZLIB_LIB)
  message(FATAL_ERROR "zlib not found: apt-get install zlib1g-dev")
endif()
krill_interface_dep(zlib ${KRILL_ZLIB_INCLUDE} ${KRILL_ZLIB_LIB})
