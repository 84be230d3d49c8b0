// Edge cases: pre-tokenization pieces and ids for whitespace runs, CR/LF mixes, contractions
// in all cases, digit runs, CJK, emoji ZWJ sequences, combining marks, NUL bytes, ASCII runs
// that meet a non-ASCII letter, mark or number (where the scanners' ASCII fast path stops), pieces
// of each kind the encoder's hot table and piece cache hold or refuse, encoded twice; invalid
// UTF-8 round trips; a 1 MB piece; special tokens; ordinary ids at the pair table's limit.
// The tables come from tests/ref/gen_tokenizer_edge_cases.py (Python's `regex` module and
// tiktoken), so they are an independent reference, not this code's own output.
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/timer.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/pretokenize.h"
#include "data/tokenizer/tokenizer_files.h"
#include "tests/test.h"

typedef struct {
    const char *name, *text;
    size_t len;
    CtPattern pattern;
    const char *pieces;  // joined by \x01
    size_t pieces_len;
} PieceCase;

static const PieceCase piece_cases[] = {
    {"empty", "", 0, CT_PATTERN_GPT2, "", 0},
    {"empty", "", 0, CT_PATTERN_CL100K, "", 0},
    {"empty", "", 0, CT_PATTERN_O200K, "", 0},
    {"spaces", "a   b    ", 9, CT_PATTERN_GPT2, "a\x01""  \x01"" b\x01""    ", 12},
    {"spaces", "a   b    ", 9, CT_PATTERN_CL100K, "a\x01""  \x01"" b\x01""    ", 12},
    {"spaces", "a   b    ", 9, CT_PATTERN_O200K, "a\x01""  \x01"" b\x01""    ", 12},
    {"ws_mix", " \x09""\x0a""  \x0a""\x09"" x", 9, CT_PATTERN_GPT2, " \x09""\x0a""  \x0a""\x09""\x01"" x", 10},
    {"ws_mix", " \x09""\x0a""  \x0a""\x09"" x", 9, CT_PATTERN_CL100K, " \x09""\x0a""  \x0a""\x01""\x09""\x01"" x", 11},
    {"ws_mix", " \x09""\x0a""  \x0a""\x09"" x", 9, CT_PATTERN_O200K, " \x09""\x0a""  \x0a""\x01""\x09""\x01"" x", 11},
    {"crlf", "a\x0d""\x0a""\x0d""\x0a""b\x0d""\x0d""\x0a"" c\x0a""\x0d""", 13, CT_PATTERN_GPT2, "a\x01""\x0d""\x0a""\x0d""\x01""\x0a""\x01""b\x01""\x0d""\x0d""\x0a""\x01"" c\x01""\x0a""\x0d""", 19},
    {"crlf", "a\x0d""\x0a""\x0d""\x0a""b\x0d""\x0d""\x0a"" c\x0a""\x0d""", 13, CT_PATTERN_CL100K, "a\x01""\x0d""\x0a""\x0d""\x0a""\x01""b\x01""\x0d""\x0d""\x0a""\x01"" c\x01""\x0a""\x0d""", 18},
    {"crlf", "a\x0d""\x0a""\x0d""\x0a""b\x0d""\x0d""\x0a"" c\x0a""\x0d""", 13, CT_PATTERN_O200K, "a\x01""\x0d""\x0a""\x0d""\x0a""\x01""b\x01""\x0d""\x0d""\x0a""\x01"" c\x01""\x0a""\x0d""", 18},
    {"contractions", "I'm he's they'RE we'Ve it'LL I'D don'T 'S '\xc5""\xbf""", 45, CT_PATTERN_GPT2, "I\x01""'m\x01"" he\x01""'s\x01"" they\x01""'\x01""RE\x01"" we\x01""'\x01""Ve\x01"" it\x01""'\x01""LL\x01"" I\x01""'\x01""D\x01"" don\x01""'\x01""T\x01"" '\x01""S\x01"" '\x01""\xc5""\xbf""", 67},
    {"contractions", "I'm he's they'RE we'Ve it'LL I'D don'T 'S '\xc5""\xbf""", 45, CT_PATTERN_CL100K, "I\x01""'m\x01"" he\x01""'s\x01"" they\x01""'RE\x01"" we\x01""'Ve\x01"" it\x01""'LL\x01"" I\x01""'D\x01"" don\x01""'T\x01"" '\x01""S\x01"" '\x01""\xc5""\xbf""", 62},
    {"contractions", "I'm he's they'RE we'Ve it'LL I'D don'T 'S '\xc5""\xbf""", 45, CT_PATTERN_O200K, "I'm\x01"" he's\x01"" they'RE\x01"" we'Ve\x01"" it'LL\x01"" I'D\x01"" don'T\x01"" '\x01""S\x01"" '\x01""\xc5""\xbf""", 55},
    {"digits", "12345 1234567 \xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\xd9""\xa6"" \xc2""\xbd""\xe2""\x85""\xab"" 3.14159", 36, CT_PATTERN_GPT2, "12345\x01"" 1234567\x01"" \xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\xd9""\xa6""\x01"" \xc2""\xbd""\xe2""\x85""\xab""\x01"" 3\x01"".\x01""14159", 42},
    {"digits", "12345 1234567 \xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\xd9""\xa6"" \xc2""\xbd""\xe2""\x85""\xab"" 3.14159", 36, CT_PATTERN_CL100K, "123\x01""45\x01"" \x01""123\x01""456\x01""7\x01"" \x01""\xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\x01""\xd9""\xa6""\x01"" \x01""\xc2""\xbd""\xe2""\x85""\xab""\x01"" \x01""3\x01"".\x01""141\x01""59", 51},
    {"digits", "12345 1234567 \xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\xd9""\xa6"" \xc2""\xbd""\xe2""\x85""\xab"" 3.14159", 36, CT_PATTERN_O200K, "123\x01""45\x01"" \x01""123\x01""456\x01""7\x01"" \x01""\xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\x01""\xd9""\xa6""\x01"" \x01""\xc2""\xbd""\xe2""\x85""\xab""\x01"" \x01""3\x01"".\x01""141\x01""59", 51},
    {"cjk", "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 45, CT_PATTERN_GPT2, "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\x01""\xe3""\x80""\x81""\x01""\xe4""\xb8""\xad""\xe6""\x96""\x87""\x01""\xe3""\x80""\x82""\x01""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 49},
    {"cjk", "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 45, CT_PATTERN_CL100K, "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\x01""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\x01""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 47},
    {"cjk", "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 45, CT_PATTERN_O200K, "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\x01""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\x01""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 47},
    {"emoji_zwj", "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 43, CT_PATTERN_GPT2, "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7""\x01"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88""\x01"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 45},
    {"emoji_zwj", "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 43, CT_PATTERN_CL100K, "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7""\x01"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88""\x01"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 45},
    {"emoji_zwj", "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 43, CT_PATTERN_O200K, "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7""\x01"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88""\x01"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 45},
    {"combining", "e\xcc""\x81""te\xcc""\x81"" x\xcc""\x83""\xcc""\x84"" \xcc""\x81""a", 17, CT_PATTERN_GPT2, "e\x01""\xcc""\x81""\x01""te\x01""\xcc""\x81""\x01"" x\x01""\xcc""\x83""\xcc""\x84""\x01"" \xcc""\x81""\x01""a", 24},
    {"combining", "e\xcc""\x81""te\xcc""\x81"" x\xcc""\x83""\xcc""\x84"" \xcc""\x81""a", 17, CT_PATTERN_CL100K, "e\x01""\xcc""\x81""te\x01""\xcc""\x81""\x01"" x\x01""\xcc""\x83""\xcc""\x84""\x01"" \xcc""\x81""\x01""a", 23},
    {"combining", "e\xcc""\x81""te\xcc""\x81"" x\xcc""\x83""\xcc""\x84"" \xcc""\x81""a", 17, CT_PATTERN_O200K, "e\xcc""\x81""te\xcc""\x81""\x01"" x\xcc""\x83""\xcc""\x84""\x01"" \xcc""\x81""a", 19},
    {"case", "HelloWORLD camelCase \xc7""\x85""ungla ALLCAPS's", 38, CT_PATTERN_GPT2, "HelloWORLD\x01"" camelCase\x01"" \xc7""\x85""ungla\x01"" ALLCAPS\x01""'s", 42},
    {"case", "HelloWORLD camelCase \xc7""\x85""ungla ALLCAPS's", 38, CT_PATTERN_CL100K, "HelloWORLD\x01"" camelCase\x01"" \xc7""\x85""ungla\x01"" ALLCAPS\x01""'s", 42},
    {"case", "HelloWORLD camelCase \xc7""\x85""ungla ALLCAPS's", 38, CT_PATTERN_O200K, "Hello\x01""WORLD\x01"" camel\x01""Case\x01"" \xc7""\x85""ungla\x01"" ALLCAPS's", 43},
    {"punct", "  !!! \x3f""!\x0a""/// a/b\x0a""", 17, CT_PATTERN_GPT2, " \x01"" !!!\x01"" \x3f""!\x01""\x0a""\x01""///\x01"" a\x01""/\x01""b\x01""\x0a""", 25},
    {"punct", "  !!! \x3f""!\x0a""/// a/b\x0a""", 17, CT_PATTERN_CL100K, " \x01"" !!!\x01"" \x3f""!\x0a""\x01""///\x01"" a\x01""/b\x01""\x0a""", 23},
    {"punct", "  !!! \x3f""!\x0a""/// a/b\x0a""", 17, CT_PATTERN_O200K, " \x01"" !!!\x01"" \x3f""!\x0a""///\x01"" a\x01""/b\x01""\x0a""", 22},
    {"nul", "a\x00""b \x00""\x00"" c", 8, CT_PATTERN_GPT2, "a\x01""\x00""\x01""b\x01"" \x00""\x00""\x01"" c", 12},
    {"nul", "a\x00""b \x00""\x00"" c", 8, CT_PATTERN_CL100K, "a\x01""\x00""b\x01"" \x00""\x00""\x01"" c", 11},
    {"nul", "a\x00""b \x00""\x00"" c", 8, CT_PATTERN_O200K, "a\x01""\x00""b\x01"" \x00""\x00""\x01"" c", 11},
    {"ascii_edges", "caf\xc3""\xa9"" Caf\xc3""\xa9""S ABC\xc3""\x89"" abc\xcc""\x81""d (\xc3""\xa9""t\xc3""\xa9"") x12\xc2""\xbd"" 1\xd9""\xa3"" 123\xd9""\xa3"" .\xc3""\xa9"" \xc3""\xa9""\x09""\xc3""\xa9"" it'\xc5""\xbf"" Mc\xc3""\x89"" /\xc3""\xa9"" ,\xcc""\x81"" 9\xcc""\x81"" A\xca""\xb0"" don't 1234", 97, CT_PATTERN_GPT2, "caf\xc3""\xa9""\x01"" Caf\xc3""\xa9""S\x01"" ABC\xc3""\x89""\x01"" abc\x01""\xcc""\x81""\x01""d\x01"" (\x01""\xc3""\xa9""t\xc3""\xa9""\x01"")\x01"" x\x01""12\xc2""\xbd""\x01"" 1\xd9""\xa3""\x01"" 123\xd9""\xa3""\x01"" .\x01""\xc3""\xa9""\x01"" \xc3""\xa9""\x01""\x09""\x01""\xc3""\xa9""\x01"" it\x01""'\x01""\xc5""\xbf""\x01"" Mc\xc3""\x89""\x01"" /\x01""\xc3""\xa9""\x01"" ,\xcc""\x81""\x01"" 9\x01""\xcc""\x81""\x01"" A\xca""\xb0""\x01"" don\x01""'t\x01"" 1234", 127},
    {"ascii_edges", "caf\xc3""\xa9"" Caf\xc3""\xa9""S ABC\xc3""\x89"" abc\xcc""\x81""d (\xc3""\xa9""t\xc3""\xa9"") x12\xc2""\xbd"" 1\xd9""\xa3"" 123\xd9""\xa3"" .\xc3""\xa9"" \xc3""\xa9""\x09""\xc3""\xa9"" it'\xc5""\xbf"" Mc\xc3""\x89"" /\xc3""\xa9"" ,\xcc""\x81"" 9\xcc""\x81"" A\xca""\xb0"" don't 1234", 97, CT_PATTERN_CL100K, "caf\xc3""\xa9""\x01"" Caf\xc3""\xa9""S\x01"" ABC\xc3""\x89""\x01"" abc\x01""\xcc""\x81""d\x01"" (\x01""\xc3""\xa9""t\xc3""\xa9""\x01"")\x01"" x\x01""12\xc2""\xbd""\x01"" \x01""1\xd9""\xa3""\x01"" \x01""123\x01""\xd9""\xa3""\x01"" .\x01""\xc3""\xa9""\x01"" \xc3""\xa9""\x01""\x09""\xc3""\xa9""\x01"" it\x01""'\xc5""\xbf""\x01"" Mc\xc3""\x89""\x01"" /\x01""\xc3""\xa9""\x01"" ,\xcc""\x81""\x01"" \x01""9\x01""\xcc""\x81""\x01"" A\xca""\xb0""\x01"" don\x01""'t\x01"" \x01""123\x01""4", 130},
    {"ascii_edges", "caf\xc3""\xa9"" Caf\xc3""\xa9""S ABC\xc3""\x89"" abc\xcc""\x81""d (\xc3""\xa9""t\xc3""\xa9"") x12\xc2""\xbd"" 1\xd9""\xa3"" 123\xd9""\xa3"" .\xc3""\xa9"" \xc3""\xa9""\x09""\xc3""\xa9"" it'\xc5""\xbf"" Mc\xc3""\x89"" /\xc3""\xa9"" ,\xcc""\x81"" 9\xcc""\x81"" A\xca""\xb0"" don't 1234", 97, CT_PATTERN_O200K, "caf\xc3""\xa9""\x01"" Caf\xc3""\xa9""\x01""S\x01"" ABC\xc3""\x89""\x01"" abc\xcc""\x81""d\x01"" (\x01""\xc3""\xa9""t\xc3""\xa9""\x01"")\x01"" x\x01""12\xc2""\xbd""\x01"" \x01""1\xd9""\xa3""\x01"" \x01""123\x01""\xd9""\xa3""\x01"" .\x01""\xc3""\xa9""\x01"" \xc3""\xa9""\x01""\x09""\xc3""\xa9""\x01"" it'\xc5""\xbf""\x01"" Mc\x01""\xc3""\x89""\x01"" /\x01""\xc3""\xa9""\x01"" ,\xcc""\x81""\x01"" \x01""9\x01""\xcc""\x81""\x01"" A\xca""\xb0""\x01"" don't\x01"" \x01""123\x01""4", 129},
    {"cached_pieces", " xqzjvkwq xqzjvkwq internationalization internationalization supercalifragilisticexpialidocious supercalifragilisticexpialidocious \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 256, CT_PATTERN_GPT2, " xqzjvkwq\x01"" xqzjvkwq\x01"" internationalization\x01"" internationalization\x01"" supercalifragilisticexpialidocious\x01"" supercalifragilisticexpialidocious\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 267},
    {"cached_pieces", " xqzjvkwq xqzjvkwq internationalization internationalization supercalifragilisticexpialidocious supercalifragilisticexpialidocious \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 256, CT_PATTERN_CL100K, " xqzjvkwq\x01"" xqzjvkwq\x01"" internationalization\x01"" internationalization\x01"" supercalifragilisticexpialidocious\x01"" supercalifragilisticexpialidocious\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 267},
    {"cached_pieces", " xqzjvkwq xqzjvkwq internationalization internationalization supercalifragilisticexpialidocious supercalifragilisticexpialidocious \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 256, CT_PATTERN_O200K, " xqzjvkwq\x01"" xqzjvkwq\x01"" internationalization\x01"" internationalization\x01"" supercalifragilisticexpialidocious\x01"" supercalifragilisticexpialidocious\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""\x01"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 267},
};

typedef struct {
    const char *name, *text;
    size_t len;
    int encoding;  // 0 gpt2, 1 cl100k_base, 2 o200k_base
    int32_t ids[192];
    size_t n_ids;
} IdCase;

static const IdCase id_cases[] = {
    {"empty", "", 0, 0, {}, 0},
    {"empty", "", 0, 1, {}, 0},
    {"empty", "", 0, 2, {}, 0},
    {"spaces", "a   b    ", 9, 0, {64,220,220,275,220,220,220,220}, 8},
    {"spaces", "a   b    ", 9, 1, {64,256,293,257}, 4},
    {"spaces", "a   b    ", 9, 2, {64,256,287,257}, 4},
    {"ws_mix", " \x09""\x0a""  \x0a""\x09"" x", 9, 0, {220,197,198,220,220,198,197,2124}, 8},
    {"ws_mix", " \x09""\x0a""  \x0a""\x09"" x", 9, 1, {17934,2355,197,865}, 4},
    {"ws_mix", " \x09""\x0a""  \x0a""\x09"" x", 9, 2, {43220,4066,197,1215}, 4},
    {"crlf", "a\x0d""\x0a""\x0d""\x0a""b\x0d""\x0d""\x0a"" c\x0a""\x0d""", 13, 0, {64,201,198,201,198,65,201,201,198,269,198,201}, 12},
    {"crlf", "a\x0d""\x0a""\x0d""\x0a""b\x0d""\x0d""\x0a"" c\x0a""\x0d""", 13, 1, {64,881,65,6053,272,198,201}, 7},
    {"crlf", "a\x0d""\x0a""\x0d""\x0a""b\x0d""\x0d""\x0a"" c\x0a""\x0d""", 13, 2, {64,1414,65,13212,274,198,201}, 7},
    {"contractions", "I'm he's they'RE we'Ve it'LL I'D don'T 'S '\xc5""\xbf""", 45, 0, {40,1101,339,338,484,6,2200,356,6,26979,340,6,3069,314,6,35,836,6,51,705,50,705,129,123}, 24},
    {"contractions", "I'm he's they'RE we'Ve it'LL I'D don'T 'S '\xc5""\xbf""", 45, 1, {40,2846,568,596,814,95253,584,6,43712,433,6,4178,358,28805,1541,17773,364,50,364,129,123}, 21},
    {"contractions", "I'm he's they'RE we'Ve it'LL I'D don'T 'S '\xc5""\xbf""", 45, 2, {15390,19016,1023,6,1099,581,6,27493,480,6,7454,3413,35,1700,51532,461,50,461,70067}, 19},
    {"digits", "12345 1234567 \xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\xd9""\xa6"" \xc2""\xbd""\xe2""\x85""\xab"" 3.14159", 36, 0, {10163,2231,17031,2231,3134,18923,96,149,97,149,98,149,99,25208,158,227,104,513,13,1415,19707}, 21},
    {"digits", "12345 1234567 \xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\xd9""\xa6"" \xc2""\xbd""\xe2""\x85""\xab"" 3.14159", 36, 1, {4513,1774,220,4513,10961,22,220,149,96,149,97,149,98,149,99,220,27154,71567,104,220,18,13,9335,2946}, 24},
    {"digits", "12345 1234567 \xd9""\xa3""\xd9""\xa4""\xd9""\xa5""\xd9""\xa6"" \xc2""\xbd""\xe2""\x85""\xab"" 3.14159", 36, 2, {7633,2548,220,7633,19354,22,220,81473,98713,97336,122513,220,27124,25371,104,220,18,13,16926,4621}, 20},
    {"cjk", "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 45, 0, {33768,98,17312,105,45739,252,5641,24336,25084,43302,23513,40792,23877,229,16764,47991,250,166,113,255,168,244,112}, 23},
    {"cjk", "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 45, 1, {9080,22656,45918,252,16144,57933,62903,71634,5486,16325,17161,1811,24486,89059,255,32179}, 16},
    {"cjk", "\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""\xe3""\x81""\xae""\xe3""\x83""\x86""\xe3""\x82""\xad""\xe3""\x82""\xb9""\xe3""\x83""\x88""\xe3""\x80""\x81""\xe4""\xb8""\xad""\xe6""\x96""\x87""\xe3""\x80""\x82""\xed""\x95""\x9c""\xea""\xb5""\xad""\xec""\x96""\xb4""", 45, 2, {9048,40909,3385,16056,18368,38236,1395,10667,788,114854,5959}, 11},
    {"emoji_zwj", "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 43, 0, {41840,101,447,235,41840,102,447,235,41840,100,12520,237,111,37929,447,235,8582,234,230,50169,235,8582,237,121,0}, 25},
    {"emoji_zwj", "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 43, 1, {9468,239,101,378,235,9468,239,102,378,235,9468,239,100,11410,237,111,31643,378,235,9468,234,230,62904,235,9468,237,121,0}, 28},
    {"emoji_zwj", "\xf0""\x9f""\x91""\xa8""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa9""\xe2""\x80""\x8d""\xf0""\x9f""\x91""\xa7"" \xf0""\x9f""\x8f""\xb3""\xef""\xb8""\x8f""\xe2""\x80""\x8d""\xf0""\x9f""\x8c""\x88"" \xf0""\x9f""\x91""\x8d""\xf0""\x9f""\x8f""\xbd""!", 43, 2, {28823,101,2524,28823,102,2524,28823,100,9552,237,111,15148,2524,64364,230,160433,52622,121,0}, 19},
    {"combining", "e\xcc""\x81""te\xcc""\x81"" x\xcc""\x83""\xcc""\x84"" \xcc""\x81""a", 17, 0, {68,136,223,660,136,223,2124,136,225,136,226,220,136,223,64}, 15},
    {"combining", "e\xcc""\x81""te\xcc""\x81"" x\xcc""\x83""\xcc""\x84"" \xcc""\x81""a", 17, 1, {68,54939,668,54939,865,136,225,136,226,220,54939,64}, 12},
    {"combining", "e\xcc""\x81""te\xcc""\x81"" x\xcc""\x83""\xcc""\x84"" \xcc""\x81""a", 17, 2, {68,13430,411,13430,1215,52279,136,226,220,13430,64}, 11},
    {"case", "HelloWORLD camelCase \xc7""\x85""ungla ALLCAPS's", 38, 0, {15496,45359,11163,41021,20448,220,131,227,2150,5031,11096,33177,50,338}, 14},
    {"case", "HelloWORLD camelCase \xc7""\x85""ungla ALLCAPS's", 38, 1, {9906,54,26001,50252,4301,220,131,227,2234,4355,13398,32500,50,596}, 14},
    {"case", "HelloWORLD camelCase \xc7""\x85""ungla ALLCAPS's", 38, 2, {13225,194435,83330,6187,220,131,227,988,1675,19465,56928,50,885}, 13},
    {"punct", "  !!! \x3f""!\x0a""/// a/b\x0a""", 17, 0, {220,220,10185,5633,0,198,20379,257,14,65,198}, 11},
    {"punct", "  !!! \x3f""!\x0a""/// a/b\x0a""", 17, 1, {220,33970,949,4999,2640,264,3554,198}, 8},
    {"punct", "  !!! \x3f""!\x0a""/// a/b\x0a""", 17, 2, {220,37421,1423,0,48235,261,7611,198}, 8},
    {"nul", "a\x00""b \x00""\x00"" c", 8, 0, {64,188,65,220,188,188,269}, 7},
    {"nul", "a\x00""b \x00""\x00"" c", 8, 1, {64,188,65,220,188,188,272}, 7},
    {"nul", "a\x00""b \x00""\x00"" c", 8, 2, {64,188,65,220,156344,274}, 6},
    {"ascii_edges", "caf\xc3""\xa9"" Caf\xc3""\xa9""S ABC\xc3""\x89"" abc\xcc""\x81""d (\xc3""\xa9""t\xc3""\xa9"") x12\xc2""\xbd"" 1\xd9""\xa3"" 123\xd9""\xa3"" .\xc3""\xa9"" \xc3""\xa9""\x09""\xc3""\xa9"" it'\xc5""\xbf"" Mc\xc3""\x89"" /\xc3""\xa9"" ,\xcc""\x81"" 9\xcc""\x81"" A\xca""\xb0"" don't 1234", 97, 0, {66,1878,2634,42151,50,9738,38351,450,66,136,223,67,357,25125,2634,8,2124,1065,23141,352,149,96,17031,149,96,764,2634,38251,197,2634,340,6,129,123,1982,38351,1220,2634,837,136,223,860,136,223,317,134,108,836,470,1105,2682}, 51},
    {"ascii_edges", "caf\xc3""\xa9"" Caf\xc3""\xa9""S ABC\xc3""\x89"" abc\xcc""\x81""d (\xc3""\xa9""t\xc3""\xa9"") x12\xc2""\xbd"" 1\xd9""\xa3"" 123\xd9""\xa3"" .\xc3""\xa9"" \xc3""\xa9""\x09""\xc3""\xa9"" it'\xc5""\xbf"" Mc\xc3""\x89"" /\xc3""\xa9"" ,\xcc""\x81"" 9\xcc""\x81"" A\xca""\xb0"" don't 1234", 97, 1, {936,59958,66771,50,19921,27887,40122,54939,67,320,39883,8,865,717,27154,220,16,149,96,220,4513,149,96,662,978,4046,197,978,433,6,129,123,4584,27887,611,978,1174,54939,220,24,54939,362,134,108,1541,956,220,4513,19}, 49},
    {"ascii_edges", "caf\xc3""\xa9"" Caf\xc3""\xa9""S ABC\xc3""\x89"" abc\xcc""\x81""d (\xc3""\xa9""t\xc3""\xa9"") x12\xc2""\xbd"" 1\xd9""\xa3"" 123\xd9""\xa3"" .\xc3""\xa9"" \xc3""\xa9""\x09""\xc3""\xa9"" it'\xc5""\xbf"" Mc\xc3""\x89"" /\xc3""\xa9"" ,\xcc""\x81"" 9\xcc""\x81"" A\xca""\xb0"" don't 1234", 97, 2, {66,103112,58639,50,33047,5859,75094,13430,67,350,16406,8,1215,899,27124,220,16,81473,220,7633,81473,887,377,1212,197,377,480,6,70067,7935,5859,820,377,1366,13430,220,24,13430,355,134,108,4128,220,7633,19}, 45},
    {"cached_pieces", " xqzjvkwq xqzjvkwq internationalization internationalization supercalifragilisticexpialidocious supercalifragilisticexpialidocious \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 256, 0, {2124,80,89,73,85,46265,80,2124,80,89,73,85,46265,80,3230,1634,3230,1634,2208,9948,361,22562,346,396,501,42372,498,312,32346,2208,9948,361,22562,346,396,501,42372,498,312,32346,2343,123,108,158,123,109,158,123,110,158,123,111,158,123,112,2343,123,108,158,123,109,158,123,110,158,123,111,158,123,112,2343,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,2343,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,2343,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,158,123,115,2343,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,158,123,115}, 160},
    {"cached_pieces", " xqzjvkwq xqzjvkwq internationalization internationalization supercalifragilisticexpialidocious supercalifragilisticexpialidocious \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 256, 1, {865,80,89,73,85,29700,80,865,80,89,73,85,29700,80,6625,2065,6625,2065,2307,5531,333,4193,321,4633,4683,532,307,78287,2307,5531,333,4193,321,4633,4683,532,307,78287,2928,123,108,158,123,109,158,123,110,158,123,111,158,123,112,2928,123,108,158,123,109,158,123,110,158,123,111,158,123,112,2928,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,2928,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,2928,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,158,123,115,2928,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,158,123,115}, 158},
    {"cached_pieces", " xqzjvkwq xqzjvkwq internationalization internationalization supercalifragilisticexpialidocious supercalifragilisticexpialidocious \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7"" \xe2""\xbf""\xb0""\xe2""\xbf""\xb1""\xe2""\xbf""\xb2""\xe2""\xbf""\xb3""\xe2""\xbf""\xb4""\xe2""\xbf""\xb5""\xe2""\xbf""\xb6""\xe2""\xbf""\xb7""", 256, 2, {1215,80,89,73,85,9500,80,1215,80,89,73,85,9500,80,7544,2860,7544,2860,2539,5842,366,17764,311,6207,8067,563,315,170661,2539,5842,366,17764,311,6207,8067,563,315,170661,2969,123,108,158,123,109,158,123,110,158,123,111,158,123,112,2969,123,108,158,123,109,158,123,110,158,123,111,158,123,112,2969,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,2969,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,2969,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,158,123,115,2969,123,108,158,123,109,158,123,110,158,123,111,158,123,112,158,123,113,158,123,114,158,123,115}, 158},
};

TEST(tokenizer_edge, pieces_match_the_regexes) {
    for (size_t k = 0; k < sizeof piece_cases / sizeof piece_cases[0]; k++) {
        const PieceCase *c = &piece_cases[k];
        char joined[1024];
        size_t n = 0, pos = 0;
        while (pos < c->len) {
            size_t end = ct_pretokenize_next(c->pattern, (const uint8_t *)c->text, c->len, pos);
            CHECK(end > pos && end <= c->len);
            if (pos) joined[n++] = '\x01';
            memcpy(joined + n, c->text + pos, end - pos);
            n += end - pos;
            pos = end;
        }
        joined[n] = '\0';
        CHECK_MSG(n == c->pieces_len && memcmp(joined, c->pieces, n) == 0, "%s (%s): pieces differ", c->name,
                  ct_pattern_name(c->pattern));
    }
}

static void load_encoding(int which, CtTokenizer *t) {
    const char *shared = ct_test_shared_data();
    static const char *const names[3] = {"gpt2", "cl100k_base", "o200k_base"};
    char path[1024];
    if (which == 0) snprintf(path, sizeof path, "%s/tokenizers/gpt2", shared);
    else snprintf(path, sizeof path, "%s/tokenizers/tiktoken/%s.tiktoken", shared, names[which]);
    if (ct_tokenizer_load(t, path, NULL) != 0) {
        ct_test_fail(__FILE__, __LINE__, "%s", ct_error_message());
        exit(1);
    }
}

TEST(tokenizer_edge, ids_match_tiktoken) {
    for (int which = 0; which < 3; which++) {
        CtTokenizer t;
        load_encoding(which, &t);
        CtEncoder *e = ct_encoder_new(&t);
        for (size_t k = 0; k < sizeof id_cases / sizeof id_cases[0]; k++) {
            const IdCase *c = &id_cases[k];
            if (c->encoding != which) continue;
            for (int again = 0; again < 2; again++) {  // again: the pieces come from the encoder's caches
                CtIds ids = {0};
                ct_encode(e, (const uint8_t *)c->text, c->len, 0, &ids);
                CHECK_MSG(ids.len == c->n_ids && (ids.len == 0 || memcmp(ids.data, c->ids, ids.len * sizeof(int32_t)) == 0),
                          "%s (encoding %d%s): %zu ids, expected %zu", c->name, which, again ? ", again" : "", ids.len,
                          c->n_ids);
                ct_ids_free(&ids);
            }
        }
        ct_encoder_free(e);
        ct_tokenizer_free(&t);
    }
}

// Decoding gives back exactly the bytes encoded.
static int round_trips(CtEncoder *e, const CtTokenizer *t, const uint8_t *text, size_t len) {
    CtIds ids = {0};
    ct_encode(e, text, len, 0, &ids);
    uint8_t *out = NULL;
    size_t out_len = 0, cap = 0;
    int ok = ct_decode(t, ids.data, ids.len, &out, &out_len, &cap) == 0 && out_len == len && (len == 0 || memcmp(out, text, len) == 0);
    ct_free(out);
    ct_ids_free(&ids);
    return ok;
}

TEST(tokenizer_edge, invalid_utf8_round_trips) {
    static const char *const samples[] = {"\xff", "a\xff" "b", "\xc3", "\xc3(", "\xe2\x82", "\xed\xa0\x80 surrogate",
                                          "\xf4\x90\x80\x80", "\xc0\xaf overlong", "\x80\x80\x80", " \xfe\xfe!x",
                                          "caf\xc3\xa9\xff\xfe\xfd", "\xf0\x9f\x98"};
    for (int which = 0; which < 3; which++) {
        CtTokenizer t;
        load_encoding(which, &t);
        CtEncoder *e = ct_encoder_new(&t);
        for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++)
            CHECK_MSG(round_trips(e, &t, (const uint8_t *)samples[k], strlen(samples[k])), "sample %zu, encoding %d", k, which);
        // Random bytes, biased toward UTF-8 lead and continuation bytes.
        uint64_t state = 12345;
        uint8_t buf[512];
        for (int r = 0; r < 300; r++) {
            size_t len = (size_t)(r % 97) + 1;
            for (size_t i = 0; i < len; i++) {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                uint8_t b = (uint8_t)(state >> 56);
                buf[i] = (state >> 40) & 1 ? (uint8_t)(0x80 | (b & 0x7f)) : b;
            }
            CHECK_MSG(round_trips(e, &t, buf, len), "random bytes %d, encoding %d", r, which);
        }
        ct_encoder_free(e);
        ct_tokenizer_free(&t);
    }
}

TEST(tokenizer_edge, invalid_bytes_split_like_symbols) {
    // An invalid byte is a unit with no class, as U+FFFD would be: it joins punctuation runs,
    // stands alone between letters in gpt2, and is a letter run's optional prefix in
    // cl100k/o200k ([^\r\n\p{L}\p{N}]?\p{L}+), exactly where U+FFFD would be.
    const uint8_t text[] = "a\xff" "b \xfe!c";
    size_t len = sizeof text - 1;
    static const size_t gpt2[] = {1, 2, 3, 6, 7, 0}, others[] = {1, 3, 6, 7, 0, 0};
    for (int p = 0; p < CT_PATTERN_COUNT; p++) {
        const size_t *expected = p == CT_PATTERN_GPT2 ? gpt2 : others;
        size_t pos = 0, n = 0;
        while (pos < len) {
            pos = ct_pretokenize_next((CtPattern)p, text, len, pos);
            CHECK_MSG(expected[n] == pos, "%s: piece %zu ends at %zu, expected %zu", ct_pattern_name((CtPattern)p), n, pos,
                      expected[n]);
            n++;
        }
        CHECK(expected[n] == 0);
    }
}

// The bound catches a quadratic merge (minutes for 1 MB), not speed: that is bench/'s job. A
// linear-time merge takes ~0.1 s idle; the slack keeps a loaded or sanitized run from failing.
#if defined(__SANITIZE_ADDRESS__)
#define SECOND 40.0
#else
#define SECOND 10.0
#endif

// A megabyte with no place to split: the heap-based merge keeps it linear.
static void check_long_piece(int which, uint8_t fill, const char *what) {
    CtTokenizer t;
    load_encoding(which, &t);
    CtEncoder *e = ct_encoder_new(&t);
    size_t len = 1 << 20;
    uint8_t *text = ct_alloc(len);
    memset(text, fill, len);
    if (fill == 'a')  // letters that are not all one byte repeated: "abcabc..." merges less evenly
        for (size_t i = 0; i < len; i++) text[i] = (uint8_t)('a' + (i * 7 + i / 3) % 26);
    double start = ct_time_now();
    CtIds ids = {0};
    ct_encode(e, text, len, 0, &ids);
    double seconds = ct_time_now() - start;
    printf("    %s: 1 MB in %.3f s\n", what, seconds);
    CHECK_MSG(seconds < SECOND, "%s: 1 MB took %.2f s", what, seconds);
    CHECK(ids.len > 0 && ids.len < len);
    uint8_t *out = NULL;
    size_t out_len = 0, cap = 0;
    CHECK(ct_decode(&t, ids.data, ids.len, &out, &out_len, &cap) == 0);
    CHECK(out_len == len && memcmp(out, text, len) == 0);
    ct_free(out);
    ct_free(text);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
}

TEST(tokenizer_edge, one_megabyte_of_letters) {
    check_long_piece(0, 'a', "gpt2 letters");
    check_long_piece(2, 'a', "o200k letters");
}

TEST(tokenizer_edge, one_megabyte_of_spaces) {
    check_long_piece(2, ' ', "o200k spaces");
    check_long_piece(1, ' ', "cl100k spaces");
}

// 1,000 pseudo-random letters: one piece, merged by the heap method (above 256 bytes); the ids
// are tiktoken's (tests/ref/gen_tokenizer_edge_cases.py prints the recipe in its comments).
static const int32_t long_piece_gpt2[] = {82,701,12303,84,559,1042,86,66,310,71,4246,83,9501,707,12337,1477,25404,6015,67,7278,280,415,6015,259,1929,22184,377,41909,4033,28202,86,1860,2503,82,687,76,1652,6649,4468,10210,76,44482,301,1453,84,86,2213,77,437,785,75,2799,5488,321,2032,18755,292,585,265,16072,433,34004,429,82,1929,21282,907,75,12769,81,354,310,388,27110,19103,4352,84,86,296,11498,77,3020,84,296,487,86,9501,2442,2528,1025,380,71,2261,316,322,2934,3099,36823,400,12647,31653,487,646,14246,368,67,2704,1904,274,1929,6359,21283,6015,518,7456,67,13481,5757,1477,77,12337,344,16115,78,4448,420,623,69,18798,368,315,487,67,354,28664,4024,21283,1696,83,301,403,71,688,1383,11400,368,34106,993,7258,44482,907,81,344,76,5013,66,7456,4449,296,5488,271,429,926,81,17179,86,16514,28803,413,261,312,6015,86,301,75,1562,6413,7252,420,3558,4402,11215,301,4598,265,86,5753,310,7718,388,494,261,21921,7278,26224,310,77,69,2616,68,322,1102,280,6571,76,69,2617,325,313,86,7109,69,1860,67,86,701,83,646,84,296,1383,69,20471,22510,4246,310,66,603,18351,1477,912,69,16762,69,707,78,4449,565,40301,1860,11840,75,76,6015,1616,76,724,7109,9501,259,518,12993,1662,16762,354,20646,372,76,1860,4997,71,3020,343,71,5439,64,324,1477,86,361,75,86,2798,21667,64,3609,14940,17062,67,86,4029,17034,315,9246,321,4352,77,69,280,310,1219,17209,21116,701,34106,9501,675,11994,36020,361,75,31522,2135,77,445,86,344,84,86,271,21283,10210,320,12993,824,9246,77,11994,1383,17209,16993,12337,76,86,377,354,76,358,1860,710,84,603,69,1385,1652,16783,84,13271,769,5907,9319,20369,14246,12993,86,993,67,258,71,36340,3046,4782,7456,13099,35906,71,704,47516,669,67,5488,417,3046,72,544,84,1505,403,430,375,86,8432,68,12968,4029,385,11215,81,325,78,321,3262,274,86,4278,67,9132,86,17179,3653,13415,42773,4449,13396,86,7109,86,4033,47516,23047,4372,82,463,358,47004,9132,21533,71,66,280,330,12491,270,69,305,7046,84,488,15573,487,84,505,1659,76,769,4449,4528,25864,4352,660,413,21283,76,1198,272,76,1039,291,31653,675,10295,31522,14485,263,1929,67,7513,78,361,2135,25404,76,993,47928,271,622,9019,84,15448,75,71,7568,274,86,912,4372,2528,84,420,3046,1453,282,494,7252,274,330,6759,76,71,69,274,44769,83,9501,1940,26841,7109,69,945,2290,377,349,418,27926,69,675,565,76,71,429,10989,3183,5700,271,16993,66};
static const int32_t long_piece_o200k[] = {82,826,176972,753,2367,51378,308,470,12704,6469,1134,27224,1116,14386,2366,67,3973,283,270,371,19562,2078,13682,361,7753,1798,27542,86,1183,3064,82,700,1560,69,4500,276,69,8301,76,36972,2277,68,6600,371,77,419,639,199230,49014,2247,86,2943,288,66967,14794,497,14617,113595,2078,19879,1782,75,23910,120456,308,394,19456,23307,470,6600,310,1133,77,4538,84,310,608,86,6469,9774,75,935,346,872,71,1601,292,384,613,1716,70552,404,24114,65719,608,698,18970,36260,1836,1821,268,2078,8102,23010,2366,466,4370,67,22880,277,696,71,5380,71,400,8899,78,2682,432,1415,69,72807,347,339,194705,332,12490,8419,77,9453,6197,302,373,71,923,1566,4578,347,2253,148062,36972,1782,2366,347,2136,66,4370,2431,310,3458,276,578,83,371,80097,12704,321,77,466,36391,315,2366,86,302,746,10353,2425,3545,432,7558,3882,7871,302,2408,266,86,13433,308,6830,394,396,263,10373,3973,21373,308,51054,86300,384,542,283,114611,54650,977,344,346,86,4541,69,1183,45201,826,83,122558,310,1566,13682,77,4571,25653,308,66,663,86,6435,470,27542,3586,69,18045,2431,565,80631,1183,2012,47525,2366,1347,44857,118894,6469,9329,17449,2878,3586,332,44083,999,76,1183,3556,71,4538,380,71,58330,324,1116,86,159492,2670,66,22314,2529,10202,110239,14168,45201,1560,6197,339,8837,313,470,51054,283,191813,470,76,10353,826,2253,6469,1772,9467,24574,159492,10812,366,2253,1291,86,400,6600,276,23010,8301,321,17449,1087,8837,5380,82,1566,23170,11252,27224,67625,361,332,76,301,1183,123926,663,69,4441,12632,86,10813,4290,662,77,69974,23170,1307,86,17449,71551,67,273,75770,394,1427,1350,185191,4761,5380,1736,85546,914,49014,296,90385,535,1866,394,373,614,117935,3549,64,2202,1560,385,7871,81,68851,313,4301,268,12704,566,67,3978,16085,31469,71,6600,384,2431,4778,86,4541,86,31447,12704,798,8559,527,301,76,594,3978,36370,75770,283,359,86,11732,143163,685,84,703,4615,608,84,690,1440,76,662,2431,1307,69282,470,411,937,23010,34579,14838,153788,291,81,1566,77,34579,10812,9966,259,2078,67,894,78,366,366,2336,75,55087,6043,276,1942,68896,2670,23395,4750,268,86,1561,9290,3199,84,432,1427,2882,60287,3545,268,359,8872,48543,134867,69,16242,6469,5956,339,3978,19314,1904,5411,361,52551,46121,69,1772,565,48543,578,67,3573,409,6162,276,11252,66};

static void long_piece_text(uint8_t *out, size_t n) {
    uint32_t x = 1;
    for (size_t i = 0; i < n; i++) {
        x = (x * 1103515245u + 12345u) & 0x7fffffffu;
        out[i] = (uint8_t)"etaoinshrdlucmfw"[(x >> 16) % 16];
    }
}

TEST(tokenizer_edge, long_piece_matches_tiktoken) {
    uint8_t text[1000];
    long_piece_text(text, sizeof text);
    for (int which = 0; which <= 2; which += 2) {
        const int32_t *expected = which == 0 ? long_piece_gpt2 : long_piece_o200k;
        size_t n_expected = which == 0 ? sizeof long_piece_gpt2 / 4 : sizeof long_piece_o200k / 4;
        CtTokenizer t;
        load_encoding(which, &t);
        CtEncoder *e = ct_encoder_new(&t);
        CtIds ids = {0};
        ct_encode(e, text, sizeof text, 0, &ids);
        CHECK_EQ_INT(ids.len, n_expected);
        CHECK(memcmp(ids.data, expected, n_expected * 4) == 0);
        ct_ids_free(&ids);
        ct_encoder_free(e);
        ct_tokenizer_free(&t);
    }
}

TEST(tokenizer_edge, special_tokens_are_text_unless_allowed) {
    CtTokenizer t;
    load_encoding(1, &t);
    CtEncoder *e = ct_encoder_new(&t);
    const char *text = "a<|endoftext|>b";
    CtIds plain = {0}, special = {0};
    ct_encode(e, (const uint8_t *)text, strlen(text), 0, &plain);
    ct_encode(e, (const uint8_t *)text, strlen(text), 1, &special);
    CHECK_EQ_INT(special.len, 3);
    CHECK_EQ_INT(special.data[1], 100257);
    CHECK(plain.len > 3);
    for (size_t i = 0; i < plain.len; i++) CHECK(plain.data[i] != 100257);
    ct_ids_free(&plain);
    ct_ids_free(&special);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
}

// The pair table packs ids in 21 bits: an ordinary token may have id CT_PAIR_MAX_ID - 1 (and
// merges at that rank), not CT_PAIR_MAX_ID; a special token's id is not limited by it.
static void byte_tokens(CtTokenizer *t) {
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        CHECK(ct_tokenizer_add(t, b, &byte, 1, CT_TOKEN_NORMAL) == 0);
    }
}

TEST(tokenizer_edge, ordinary_ids_fit_the_pair_table) {
    CtTokenizer t;
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_RANK);
    byte_tokens(&t);
    CHECK(ct_tokenizer_add(&t, CT_PAIR_MAX_ID - 1, (const uint8_t *)"ab", 2, CT_TOKEN_NORMAL) == 0);
    CHECK(ct_tokenizer_add(&t, 5000000, (const uint8_t *)"<|x|>", 5, CT_TOKEN_SPECIAL) == 0);
    CHECK_MSG(ct_tokenizer_finish(&t) == 0, "%s", ct_error_message());
    CtEncoder *e = ct_encoder_new(&t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)"xab<|x|>", 8, 1, &ids);  // "xab" merges (a, b) at the largest rank
    const int32_t expected[] = {'x', CT_PAIR_MAX_ID - 1, 5000000};
    CHECK_EQ_INT(ids.len, 3);
    CHECK(ids.len == 3 && memcmp(ids.data, expected, sizeof expected) == 0);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);

    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_RANK);
    byte_tokens(&t);
    CHECK(ct_tokenizer_add(&t, CT_PAIR_MAX_ID, (const uint8_t *)"ab", 2, CT_TOKEN_NORMAL) == 0);
    CHECK(ct_tokenizer_finish(&t) != 0);
    CHECK_CONTAINS(ct_error_message(), "token id 2097151 is too large for an ordinary token");
    ct_tokenizer_free(&t);
}
