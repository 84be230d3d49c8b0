#pragma once
#define CTRAIN_VERSION "0.1.0"
