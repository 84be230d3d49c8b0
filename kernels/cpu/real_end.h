// Closes an instantiation opened by real_begin.h.
#undef REAL
#undef F32_OR_F64
#undef LOCAL
#undef R_EXP
#undef R_TANH
#undef R_TANH_PRECISE
#undef R_SQRT
#undef R_LOG
#undef R_ERF
#undef R_FMA
#undef CT_REAL_BITS
