// CRC-32 (IEEE 802.3, the polynomial of zlib, PNG and gzip) for headers and indexes of our
// own binary files. Bulk data in shards is checked by zstd's frame checksum instead.
#pragma once
#include <stddef.h>
#include <stdint.h>

uint32_t ct_crc32(const void *data, size_t size);
// Continues a running CRC: crc = ct_crc32_update(crc, more, n), starting from 0.
uint32_t ct_crc32_update(uint32_t crc, const void *data, size_t size);
// FNV-1a, 64-bit: a stable fingerprint (tokenizer identity), not a defence against tampering.
uint64_t ct_fnv1a64(const void *data, size_t size);
uint64_t ct_fnv1a64_update(uint64_t hash, const void *data, size_t size);
#define CT_FNV1A64_INIT 0xcbf29ce484222325ull
