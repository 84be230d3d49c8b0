// See emu.h: the emulation replaces the CUDA runtime header.
#pragma once
#include "emu.h"
