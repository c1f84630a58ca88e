# Install rules and the CMake package, so that a downstream project can do
#
#   find_package(krill REQUIRED)
#   target_link_libraries(app PRIVATE krill::krill)
#
# Layout under the prefix:
#   bin/krill                       the command-line tool (target krill_cli)
#   include/krill/...               the public headers
#   lib/libkrill.a (or .so)         the library
#   lib/cmake/krill/                krillConfig.cmake, krillConfigVersion.cmake, krillTargets.cmake
#
# krill is a static library by default, so what it links PRIVATE still reaches the consumer's
# link line (CMake records it as $<LINK_ONLY:...>). What that needs, dependency by kind:
#   - header-only dependencies (KRILL_HEADER_ONLY_DEPS below) matter only to krill's own sources:
#     they are kept out of the installed interface, so a consumer never needs them installed;
#   - the other krill_deps::* targets (OpenBLAS, oneDNN: absolute Debian paths, plus the RUNPATH
#     that pins the OpenMP build of OpenBLAS) are exported with the package as krill::deps_<name>;
#   - imported targets of other packages (OpenMP::OpenMP_CXX, Threads::Threads) are found again by
#     krillConfig.cmake with find_dependency: list a new one there when krill starts linking it.
# tests/install.cmake (test install_and_consume) installs a build and links tests/consumer against it.

include(CMakePackageConfigHelpers)

set(KRILL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/krill" CACHE STRING
    "Where the krill CMake package files are installed, relative to the prefix")
set(KRILL_HEADER_ONLY_DEPS krill_deps::json krill_deps::cli11)

# Split krill's link interface: header-only dependencies become build-only, every other
# krill_deps::* target is exported with krill. This reads krill's link interface as it stands,
# so the top-level CMakeLists.txt includes this file after its last target_link_libraries(krill).
get_target_property(_krill_link_interface krill INTERFACE_LINK_LIBRARIES)
if(NOT _krill_link_interface)
  set(_krill_link_interface "")
endif()
set(_krill_install_link_interface "")
set(KRILL_EXPORTED_DEP_TARGETS "")   # the build's targets
set(KRILL_EXPORTED_DEPS "")          # their names in the package, for krillConfig.cmake
foreach(_item IN LISTS _krill_link_interface)
  if(_item MATCHES "^\\$<LINK_ONLY:(.+)>$")
    set(_dep "${CMAKE_MATCH_1}")
  else()
    set(_dep "${_item}")
  endif()
  if(_dep IN_LIST KRILL_HEADER_ONLY_DEPS)
    set(_item "$<BUILD_INTERFACE:${_item}>")
  elseif(_dep MATCHES "^krill_deps::(.+)$" AND TARGET "${_dep}")
    set(_name "${CMAKE_MATCH_1}")
    get_target_property(_real "${_dep}" ALIASED_TARGET)
    if(NOT _real)
      set(_real "${_dep}")
    endif()
    set_target_properties(${_real} PROPERTIES EXPORT_NAME deps_${_name})
    list(APPEND KRILL_EXPORTED_DEP_TARGETS ${_real})
    list(APPEND KRILL_EXPORTED_DEPS krill::deps_${_name})
  endif()
  list(APPEND _krill_install_link_interface "${_item}")
endforeach()
set_property(TARGET krill PROPERTY INTERFACE_LINK_LIBRARIES "${_krill_install_link_interface}")
list(REMOVE_DUPLICATES KRILL_EXPORTED_DEP_TARGETS)
list(REMOVE_DUPLICATES KRILL_EXPORTED_DEPS)

# Installed binaries keep the RUNPATH to the OpenMP OpenBLAS (a link directory outside the
# system's default ones: without this, install drops it, -Wl,-rpath included, and the loader
# takes whichever OpenBLAS the Debian alternatives name). With a shared libkrill, the tool also
# finds ../lib.
set_target_properties(krill krill_cli PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
get_target_property(_krill_type krill TYPE)
if(_krill_type STREQUAL "SHARED_LIBRARY")
  set_property(TARGET krill_cli APPEND PROPERTY INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
endif()

install(TARGETS krill ${KRILL_EXPORTED_DEP_TARGETS}
  EXPORT krillTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS krill_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/krill DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT krillTargets
  NAMESPACE krill::
  FILE krillTargets.cmake
  DESTINATION ${KRILL_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/krillConfig.cmake.in
  ${PROJECT_BINARY_DIR}/krillConfig.cmake
  INSTALL_DESTINATION ${KRILL_INSTALL_CMAKEDIR})
# 0.x: a minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/krillConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/krillConfig.cmake
  ${PROJECT_BINARY_DIR}/krillConfigVersion.cmake
  DESTINATION ${KRILL_INSTALL_CMAKEDIR})
