# CUDA is optional. FASTOCCLUSION_ENABLE_CUDA decides whether fastocclusion_cuda is built:
#   AUTO (default, the developer install): only when a CUDA compiler is found AND an NVIDIA
#        driver is visible (/proc/driver/nvidia/version, or `nvidia-smi -L` succeeds, as on
#        WSL) AND CMake detects a GPU; then for that GPU's architecture only ("native"), so a
#        machine with nvcc but no GPU skips the kernels and a GPU box compiles them once.
#   ON   (release wheels, CI compile checks): always; a CUDA compiler is required, and the
#        architectures default to the release list below.
#   OFF  never looks for CUDA.
# The CPU library never depends on it.
#
# Target fastocclusion_cuda (STATIC, PIC): the kernels of csrc/src/cuda/*.cu and their
# launchers (csrc/include/fastocclusion/cuda/). It links fastocclusion_core (geometry, error
# types) and the static CUDA runtime PUBLIC, so a consumer (the _cuda Python module) gets
# both and the CUDA headers. Whole-program compilation (no -rdc): no device link step.
#
# Architectures: -DCMAKE_CUDA_ARCHITECTURES=... (or the CUDAARCHS environment variable) wins
# when given, e.g. 90 for one card; otherwise AUTO builds "native" and ON the release list:
# machine code for Turing..Hopper plus compute_90 PTX, which newer GPUs JIT-compile.
set(FASTOCCLUSION_CUDA_RELEASE_ARCHITECTURES "75-real;80-real;86-real;89-real;90")

if(FASTOCCLUSION_ENABLE_CUDA STREQUAL "OFF")
  message(STATUS "fastocclusion: FASTOCCLUSION_ENABLE_CUDA=OFF, building the CPU path only")
  return()
endif()
if(NOT FASTOCCLUSION_ENABLE_CUDA MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "FASTOCCLUSION_ENABLE_CUDA=${FASTOCCLUSION_ENABLE_CUDA}: expected AUTO, ON or OFF")
endif()

# AUTO: look for a driver first (cheap), before probing for a compiler (a test project).
if(FASTOCCLUSION_ENABLE_CUDA STREQUAL "AUTO")
  set(_fo_driver FALSE)
  if(EXISTS "/proc/driver/nvidia/version")
    set(_fo_driver TRUE)
  else()
    find_program(_fo_nvidia_smi nvidia-smi NO_CACHE)
    if(_fo_nvidia_smi)
      execute_process(COMMAND "${_fo_nvidia_smi}" -L RESULT_VARIABLE _fo_rc
                      OUTPUT_QUIET ERROR_QUIET TIMEOUT 20)
      if(_fo_rc EQUAL 0)
        set(_fo_driver TRUE)
      endif()
    endif()
  endif()
  if(NOT _fo_driver)
    message(STATUS "fastocclusion: no NVIDIA driver visible, building the CPU path only "
                   "(FASTOCCLUSION_ENABLE_CUDA=ON builds the CUDA kernels anyway)")
    return()
  endif()
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

# Architectures, set before enable_language(CUDA), which would otherwise cache nvcc's
# default. Only a user's choice lives in the cache; the mode's default is a plain variable,
# re-chosen on every configure, so switching AUTO <-> ON in one build tree follows.
if(DEFINED CACHE{CMAKE_CUDA_ARCHITECTURES})
  set(CMAKE_CUDA_ARCHITECTURES "$CACHE{CMAKE_CUDA_ARCHITECTURES}")   # -D...: keep it
elseif(DEFINED ENV{CUDAARCHS})
  set(CMAKE_CUDA_ARCHITECTURES "$ENV{CUDAARCHS}")
elseif(FASTOCCLUSION_ENABLE_CUDA STREQUAL "AUTO")
  set(CMAKE_CUDA_ARCHITECTURES "native")
else()
  set(CMAKE_CUDA_ARCHITECTURES "${FASTOCCLUSION_CUDA_RELEASE_ARCHITECTURES}")
endif()
set(_fo_archs "${CMAKE_CUDA_ARCHITECTURES}")

if(NOT DEFINED CMAKE_CUDA_STANDARD)
  set(CMAKE_CUDA_STANDARD 17)
endif()
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

# enable_language(CUDA) ran a probe on the GPU(s): CMAKE_CUDA_ARCHITECTURES_NATIVE holds no
# architecture when none answered (a driver without a usable device, e.g. a container
# without --gpus; CMake 4.4 then stores the probe's message, hence the pattern).
if(CMAKE_CUDA_ARCHITECTURES STREQUAL "native")
  if(NOT CMAKE_CUDA_ARCHITECTURES_NATIVE MATCHES "^[0-9]+[a-z]?-real(;[0-9]+[a-z]?-real)*$")
    if(FASTOCCLUSION_ENABLE_CUDA STREQUAL "AUTO")
      message(STATUS "fastocclusion: an NVIDIA driver but no usable GPU, building the CPU path only")
      return()
    endif()
    message(FATAL_ERROR "CMAKE_CUDA_ARCHITECTURES=native but no GPU was detected")
  endif()
  set(_fo_archs "native (${CMAKE_CUDA_ARCHITECTURES_NATIVE})")
endif()

file(GLOB FASTOCCLUSION_CUDA_SOURCES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/csrc/src/cuda/*.cu)
if(NOT FASTOCCLUSION_CUDA_SOURCES)
  message(FATAL_ERROR "fastocclusion: no CUDA sources under csrc/src/cuda")
endif()
message(STATUS "fastocclusion: building the CUDA kernels with ${CMAKE_CUDA_COMPILER} "
               "(CUDA ${CUDAToolkit_VERSION}, architectures ${_fo_archs})")

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
