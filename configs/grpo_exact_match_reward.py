#!/usr/bin/env python3
"""A reward command for `ctrain grpo` (grpo.reward_funcs: ["command"]): the exact-match reward of
the built-in `exact_match` source, written as users write their own. It reads one JSON line per
completion, {"prompt": ..., "completion": ..., "fields": {...}}, and prints 1 when the completion's
answer equals fields["answer"], else 0: one number per line, in order (docs/grpo.md).

The answer is the rule of data/examples/answer_extract.h: what <answer>...</answer> holds (its last
number, or its trimmed text), or else the last number of the completion; numbers compare in a
normal form (no "," thousands groups, leading zeros or trailing fraction zeros; -0 is 0)."""
import json
import sys


def is_digit(c):
    return "0" <= c <= "9"


def is_alnum(c):
    return is_digit(c) or "a" <= c <= "z" or "A" <= c <= "Z"


def number_starts(s, i):
    if is_digit(s[i]):
        return True
    return s[i] == "-" and i + 1 < len(s) and is_digit(s[i + 1]) and (i == 0 or not is_alnum(s[i - 1]))


def number_end(s, i):
    j = i + (s[i] == "-")
    while j < len(s) and is_digit(s[j]):
        j += 1
    while (j + 3 < len(s) and s[j] == "," and all(is_digit(c) for c in s[j + 1:j + 4])
           and (j + 4 == len(s) or not is_digit(s[j + 4]))):
        j += 4
    if j + 1 < len(s) and s[j] == "." and is_digit(s[j + 1]):
        j += 1
        while j < len(s) and is_digit(s[j]):
            j += 1
    return j


def last_number(s):
    found, i = None, 0
    while i < len(s):
        if not number_starts(s, i):
            i += 1
            continue
        end = number_end(s, i)
        found, i = s[i:end], end
    return found


def normalise_number(s):
    negative = s.startswith("-")
    whole, _, fraction = s.lstrip("-").partition(".")
    whole = whole.replace(",", "").lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    out = whole + ("." + fraction if fraction else "")
    return "-" + out if negative and out != "0" else out


WHITE = " \t\n\r\f\v"


def normalise_text(s):
    s = s.strip(WHITE)
    if s and number_starts(s, 0) and number_end(s, 0) == len(s):
        return normalise_number(s)
    return s


def extract(completion):
    open_at = completion.find("<answer>")
    if open_at >= 0:
        start = open_at + len("<answer>")
        close = completion.find("</answer>", start)
        if close >= 0:
            inner = completion[start:close]
            number = last_number(inner)
            return normalise_number(number) if number is not None else inner.strip(WHITE)
    number = last_number(completion)
    return normalise_number(number) if number is not None else ""


for line in sys.stdin:
    item = json.loads(line)
    answer, reference = extract(item["completion"]), item["fields"].get("answer")
    if isinstance(reference, (int, float)):
        reference = json.dumps(reference)
    print(1 if answer and reference is not None and answer == normalise_text(reference) else 0)
