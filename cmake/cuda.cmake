# CUDA is optional: AUTO builds fastocclusion_cuda when a CUDA compiler is found, ON
# requires one, OFF never looks. The CPU library never depends on it.
#
# Target fastocclusion_cuda (STATIC, PIC): the kernels of csrc/src/cuda/*.cu and their
# launchers (csrc/include/fastocclusion/cuda/). It links fastocclusion_core (geometry, error
# types) and the static CUDA runtime PUBLIC, so a consumer (the _cuda Python module) gets
# both and the CUDA headers. Whole-program compilation (no -rdc): no device link step.
#
# Architectures: CMAKE_CUDA_ARCHITECTURES (or the CUDAARCHS environment variable) wins when
# given, e.g. -DCMAKE_CUDA_ARCHITECTURES=90 for a quick build on one card; otherwise
# machine code for Turing..Hopper plus compute_90 PTX, which newer GPUs JIT-compile.
if(FASTOCCLUSION_ENABLE_CUDA STREQUAL "OFF")
  message(STATUS "fastocclusion: FASTOCCLUSION_ENABLE_CUDA=OFF, building the CPU path only")
  return()
endif()
if(NOT FASTOCCLUSION_ENABLE_CUDA MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "FASTOCCLUSION_ENABLE_CUDA=${FASTOCCLUSION_ENABLE_CUDA}: expected AUTO, ON or OFF")
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(FASTOCCLUSION_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "FASTOCCLUSION_ENABLE_CUDA=ON but no CUDA compiler was found "
                        "(set CMAKE_CUDA_COMPILER or put nvcc on the PATH)")
  endif()
  message(STATUS "fastocclusion: no CUDA compiler found, building the CPU path only")
  return()
endif()

# Must be set before enable_language(CUDA), which would otherwise cache nvcc's default.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
  set(CMAKE_CUDA_ARCHITECTURES "75-real;80-real;86-real;89-real;90" CACHE STRING
      "CUDA architectures of fastocclusion_cuda (machine code for 7.5-9.0, PTX for 9.0)")
endif()
if(NOT DEFINED CMAKE_CUDA_STANDARD)
  set(CMAKE_CUDA_STANDARD 17)
endif()
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

file(GLOB FASTOCCLUSION_CUDA_SOURCES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/csrc/src/cuda/*.cu)
if(NOT FASTOCCLUSION_CUDA_SOURCES)
  message(FATAL_ERROR "fastocclusion: no CUDA sources under csrc/src/cuda")
endif()
message(STATUS "fastocclusion: building the CUDA kernels with ${CMAKE_CUDA_COMPILER} "
               "(CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")

add_library(fastocclusion_cuda STATIC ${FASTOCCLUSION_CUDA_SOURCES})
set_target_properties(fastocclusion_cuda PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_SEPARABLE_COMPILATION OFF
  CUDA_RUNTIME_LIBRARY Static)
target_include_directories(fastocclusion_cuda PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/csrc/include)
target_link_libraries(fastocclusion_cuda PUBLIC fastocclusion_core CUDA::cudart_static)

# Host-compiler warnings through nvcc (no -Wpedantic: nvcc's generated host code uses GNU
# line markers), and nvcc's own warnings.
set(FASTOCCLUSION_CUDA_WARNINGS
  -Xcompiler=-Wall -Xcompiler=-Wextra -Xcompiler=-Wshadow
  -Xcompiler=-Wconversion -Xcompiler=-Wno-sign-conversion
  --Wreorder --Wdefault-stream-launch)
if(FASTOCCLUSION_WARNINGS_AS_ERRORS)
  list(APPEND FASTOCCLUSION_CUDA_WARNINGS -Werror=all-warnings -Xcompiler=-Werror)
endif()
target_compile_options(fastocclusion_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:${FASTOCCLUSION_CUDA_WARNINGS}>)
