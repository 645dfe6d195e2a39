// The gated-MLP activations on the device, shared by the GLU kernels (kernels/activation.cu) and the decode GEMV's
// gate/up pairs (kernels/gemv.cu). Same formulas as the CPU reference (cpu_backend.cpp: activate).
#pragma once
#include "kernels/activation.h"

namespace lcllm {

__device__ __forceinline__ float glu_activate(float x, GluActivation act) {
  switch (act) {
    case GluActivation::GLU_SILU: return x / (1.0f + expf(-x));
    case GluActivation::GLU_GELU_TANH: {
      const float k = 0.7978845608028654f;  // sqrt(2/pi)
      return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case GluActivation::GLU_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
  }
  return x;
}

}  // namespace lcllm
