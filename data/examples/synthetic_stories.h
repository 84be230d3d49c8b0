// A deterministic corpus of short children's stories from a small grammar, for demos and tests
// on machines with no text to download: enough structure to learn (names and the pronouns that
// refer back to them, objects that come back, a fixed ending) and enough variety that a model
// must learn it rather than memorise it.
#pragma once
#include <stdint.h>
#include <stdio.h>

// Writes `documents` stories separated by blank lines. 0, or -1 + error.
int ct_write_stories(FILE *out, uint64_t documents, uint64_t seed);
