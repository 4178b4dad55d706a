// What the per-thread bodies of the kernels share, private to csrc/src/cuda.
//
// The bodies are __host__ __device__ and take their block/thread indices as arguments, so a
// host program (tests/cpp/test_cuda_emulated.cpp) can run them over an emulated grid and
// compare with the CPU functions; compiled by a host compiler, the macros below fall back
// to plain C++.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FASTOCCLUSION_HD __host__ __device__ __forceinline__
#else
#define FASTOCCLUSION_HD inline
#endif
#if defined(__CUDA_ARCH__)
#define FASTOCCLUSION_UNROLL _Pragma("unroll")
#else
#define FASTOCCLUSION_UNROLL
#endif

namespace fastocclusion::cuda::detail {

/// Threads per block of every kernel.
constexpr unsigned kThreads = 256;

#if defined(__CUDACC__)
/// The first element of a 64-bit grid-stride loop over a 1-D grid, and its step.
__device__ __forceinline__ std::int64_t first_index() {
  return std::int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_step() {
  return std::int64_t{gridDim.x} * blockDim.x;
}
#endif

/// A read through the read-only data cache on the device.
template <typename T>
FASTOCCLUSION_HD T load_readonly(const T* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

/// a * b rounded once, never fused with a following addition (nvcc contracts a * b + c into
/// an FMA by default), so that device sums of products equal the host's bit for bit.
FASTOCCLUSION_HD double unfused_product(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

}  // namespace fastocclusion::cuda::detail
