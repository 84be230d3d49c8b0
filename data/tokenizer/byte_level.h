// GPT-2's byte-level alphabet: every byte is shown as one printable Unicode character
// (printable ASCII and Latin-1 stand for themselves; the other 68 bytes map to U+0100..U+0143),
// so token strings in encoder.json, vocab.bpe and HF tokenizer.json contain no spaces or
// control characters. "Ġ" (U+0120) is the space byte.
#pragma once
#include <stddef.h>
#include <stdint.h>

uint32_t ct_byte_level_char(uint8_t byte);  // the code point that stands for `byte`
// Converts a token string in the byte-level alphabet (UTF-8) to raw bytes in out (at least
// len bytes). Returns the number of bytes, or -1 when a character is not in the alphabet.
long ct_byte_level_decode(const char *s, size_t len, uint8_t *out);
// Converts raw bytes to the byte-level alphabet as UTF-8 into out (at least 2*n + 1 bytes,
// NUL-terminated). Returns the string length.
size_t ct_byte_level_encode(const uint8_t *bytes, size_t n, char *out);
