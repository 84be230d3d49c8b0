#include "data/tokenizer/byte_level.h"

#include <pthread.h>

#include "data/input/utf8.h"

static int printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

uint32_t ct_byte_level_char(uint8_t byte) {
    if (printable(byte)) return byte;
    // The non-printable bytes take U+0100 onwards in byte order.
    uint32_t k = 0;
    for (int b = 0; b < byte; b++)
        if (!printable(b)) k++;
    return 256 + k;
}

static int16_t byte_of_char[256 + 68];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void init_table(void) {
    for (int i = 0; i < 256 + 68; i++) byte_of_char[i] = -1;
    for (int b = 0; b < 256; b++) byte_of_char[ct_byte_level_char((uint8_t)b)] = (int16_t)b;
}

// The byte a code point stands for, or -1.
static int byte_for_char(uint32_t cp) {
    pthread_once(&table_once, init_table);
    return cp < 256 + 68 ? byte_of_char[cp] : -1;
}

long ct_byte_level_decode(const char *s, size_t len, uint8_t *out) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = ct_utf8_decode(p + i, len - i, &cp);
        int b = cp == CT_UTF8_INVALID ? -1 : byte_for_char(cp);
        if (b < 0) return -1;
        out[n++] = (uint8_t)b;
        i += k;
    }
    return (long)n;
}

size_t ct_byte_level_encode(const uint8_t *bytes, size_t n, char *out) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += ct_utf8_encode(ct_byte_level_char(bytes[i]), (uint8_t *)out + len);
    out[len] = '\0';
    return len;
}
