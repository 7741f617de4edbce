# Optional libtorch adapter: zoopt::torch (header <zoopt/torch.hpp>).
#
# Included by the top-level CMakeLists.txt when ZOOPT_ENABLE_TORCH is ON.
# Defines the INTERFACE target zoopt_torch (alias zoopt::torch) only when
# libtorch's CMake package is found (Debian: libtorch-dev), and sets
# ZOOPT_HAS_TORCH accordingly. The core target zoopt::zoopt never links
# libtorch. The target is not exported: an installed zoopt's users link
# zoopt::zoopt and ${TORCH_LIBRARIES} themselves.
find_package(Torch QUIET)
if(Torch_FOUND OR TORCH_FOUND)
  add_library(zoopt_torch INTERFACE)
  add_library(zoopt::torch ALIAS zoopt_torch)
  target_link_libraries(zoopt_torch INTERFACE zoopt::zoopt ${TORCH_LIBRARIES})
  set(ZOOPT_HAS_TORCH ON)
  message(STATUS "zoopt: libtorch found; building zoopt::torch")
else()
  message(STATUS "zoopt: libtorch not found; zoopt::torch not built "
                 "(Debian: apt-get install libtorch-dev)")
endif()
