// LoRA adapter products, in float and double (see real_begin.h).
#include "kernels/cpu/cpu_ops.h"

#define CT_REAL_BITS 32
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/lora.inc"
#include "kernels/cpu/real_end.h"
#define CT_REAL_BITS 64
#include "kernels/cpu/real_begin.h"
#include "kernels/cpu/lora.inc"
#include "kernels/cpu/real_end.h"
