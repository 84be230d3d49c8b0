// Conversions between float32 and the 16-bit floats that model files store (IEEE half,
// bfloat16). Exact where the target can hold the value; rounding is to nearest-even, as
// PyTorch's .to(torch.float16) / .to(torch.bfloat16) do, so an export matches torch bit for bit.
#pragma once
#include <stddef.h>
#include <stdint.h>

float ct_f16_to_f32(uint16_t h);
uint16_t ct_f32_to_f16(float f);
float ct_bf16_to_f32(uint16_t b);
uint16_t ct_f32_to_bf16(float f);

// n elements of little-endian f16/bf16/f32 at `src` (any alignment) into floats.
void ct_f16_array_to_f32(const void *src, float *dst, size_t n);
void ct_bf16_array_to_f32(const void *src, float *dst, size_t n);
void ct_f32_array_from_bytes(const void *src, float *dst, size_t n);
// n floats into f16/bf16 (native byte order; ctrain only runs on little-endian machines).
// Returns how many finite values became infinite (f16 holds at most ±65504), so callers can refuse.
size_t ct_f32_array_to_f16(const float *src, uint16_t *dst, size_t n);
void ct_f32_array_to_bf16(const float *src, uint16_t *dst, size_t n);
