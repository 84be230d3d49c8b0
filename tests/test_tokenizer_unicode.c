// The generated Unicode tables and the UTF-8 decoder.
#include <string.h>

#include "data/tokenizer/unicode_tables.h"
#include "data/input/utf8.h"
#include "tests/test.h"

TEST(tokenizer_unicode, classes_across_the_range) {
    CHECK_STR_EQ(ct_unicode_version, "15.0.0");
    CHECK_EQ_INT(ct_unicode_stage1[0], 0);  // the pre-tokenizer reads ASCII from block 0 directly
    CHECK_EQ_INT(ct_unicode_flags('A'), CT_UC_LU_LT);
    CHECK_EQ_INT(ct_unicode_flags('z'), CT_UC_LL);
    CHECK_EQ_INT(ct_unicode_flags(0x01C5), CT_UC_LU_LT);     // Dž, titlecase
    CHECK_EQ_INT(ct_unicode_flags(0x02B0), CT_UC_LM_LO);     // ʰ, modifier letter
    CHECK_EQ_INT(ct_unicode_flags(0x4E2D), CT_UC_LM_LO);     // 中 (inside a First/Last range)
    CHECK_EQ_INT(ct_unicode_flags(0x2A6DF), CT_UC_LM_LO);    // last of CJK extension B
    CHECK_EQ_INT(ct_unicode_flags(0x0301), CT_UC_MARK);      // combining acute
    CHECK_EQ_INT(ct_unicode_flags(0x20DD), CT_UC_MARK);      // enclosing circle (Me)
    CHECK_EQ_INT(ct_unicode_flags('7'), CT_UC_NUMBER);
    CHECK_EQ_INT(ct_unicode_flags(0x0663), CT_UC_NUMBER);    // Arabic-Indic 3
    CHECK_EQ_INT(ct_unicode_flags(0x216B), CT_UC_NUMBER);    // Ⅻ (Nl)
    CHECK_EQ_INT(ct_unicode_flags(0x00BD), CT_UC_NUMBER);    // ½ (No)
    CHECK_EQ_INT(ct_unicode_flags(0x1D7CE), CT_UC_NUMBER);   // mathematical bold 0 (plane 1)
    CHECK_EQ_INT(ct_unicode_flags(0x0B), CT_UC_SPACE);       // vertical tab is White_Space
    CHECK_EQ_INT(ct_unicode_flags(0x85), CT_UC_SPACE);
    CHECK_EQ_INT(ct_unicode_flags(0x3000), CT_UC_SPACE);
    CHECK_EQ_INT(ct_unicode_flags(0x200B), 0);               // zero width space is not White_Space
    CHECK_EQ_INT(ct_unicode_flags(0x1F600), 0);              // emoji: a symbol
    CHECK_EQ_INT(ct_unicode_flags(0x10FFFF), 0);
    CHECK_EQ_INT(ct_unicode_flags(0x110000), 0);
    CHECK_EQ_INT(ct_unicode_flags(0xE0100), CT_UC_MARK);     // variation selector 17 (plane 14)
}

TEST(tokenizer_unicode, strict_utf8) {
    uint32_t cp;
    CHECK_EQ_INT(ct_utf8_decode((const uint8_t *)"\xc3\xa9", 2, &cp), 2);
    CHECK_EQ_INT(cp, 0xE9);
    CHECK_EQ_INT(ct_utf8_decode((const uint8_t *)"\xf0\x9f\x98\x80", 4, &cp), 4);
    CHECK_EQ_INT(cp, 0x1F600);
    static const char *const invalid[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                          "\x80", "\xc3", "\xe2\x82", "\xff"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        CHECK_EQ_INT(ct_utf8_decode((const uint8_t *)invalid[i], strlen(invalid[i]), &cp), 1);
        CHECK(cp == CT_UTF8_INVALID);
    }
    // A valid sequence cut by the end of the buffer is invalid there.
    CHECK_EQ_INT(ct_utf8_decode((const uint8_t *)"\xf0\x9f\x98\x80", 3, &cp), 1);
}
