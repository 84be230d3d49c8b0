#include "data/examples/synthetic_stories.h"

#include "core/error.h"
#include "core/rng.h"

typedef struct {
    const char *name;
    int she;
} Person;

static const Person people[] = {
    {"Tom", 0}, {"Mia", 1}, {"Sam", 0}, {"Lily", 1}, {"Ben", 0}, {"Anna", 1}, {"Max", 0}, {"Zoe", 1},
    {"Leo", 0}, {"Emma", 1}, {"Jack", 0}, {"Lucy", 1}, {"Noah", 0}, {"Ella", 1}, {"Finn", 0}, {"Rosa", 1},
};
static const char *const places[] = {"the park", "the garden", "the beach", "the forest", "the kitchen",
                                     "the school", "the river", "the hill", "the farm", "the library"};
static const char *const objects[] = {"ball", "kite", "book", "cat", "box", "hat", "boat", "drum", "cake", "shell",
                                      "key", "map", "cup", "bell", "star"};
static const char *const colours[] = {"red", "blue", "green", "yellow", "big", "small", "old", "shiny", "soft", "funny"};
static const char *const feelings[] = {"happy", "sad", "surprised", "tired", "proud", "scared", "excited"};
static const char *const weather[] = {"sunny", "rainy", "windy", "cold", "warm"};

#define PICK(rng, array) array[ct_rng_below(rng, (uint32_t)(sizeof array / sizeof array[0]))]

static const char *pronoun(const Person *p, int capital) {
    return p->she ? (capital ? "She" : "she") : (capital ? "He" : "he");
}

static const char *article(const char *word) {
    return word[0] == 'a' || word[0] == 'e' || word[0] == 'i' || word[0] == 'o' || word[0] == 'u' ? "an" : "a";
}

static void story(FILE *out, CtRng *rng) {
    const Person *a = &PICK(rng, people), *b = &PICK(rng, people);
    while (b == a) b = &PICK(rng, people);
    const char *place = PICK(rng, places), *object = PICK(rng, objects), *colour = PICK(rng, colours);
    fprintf(out, "One %s day, %s went to %s.", PICK(rng, weather), a->name, place);
    switch (ct_rng_below(rng, 3)) {
    case 0: fprintf(out, " %s found %s %s %s.", pronoun(a, 1), article(colour), colour, object); break;
    case 1: fprintf(out, " There %s saw %s %s %s.", pronoun(a, 0), article(colour), colour, object); break;
    default: fprintf(out, " %s was looking for %s %s %s.", pronoun(a, 1), article(colour), colour, object); break;
    }
    switch (ct_rng_below(rng, 4)) {
    case 0:
        fprintf(out, " %s met %s and showed %s the %s.", pronoun(a, 1), b->name, b->she ? "her" : "him", object);
        fprintf(out, " %s said, \"What %s %s %s!\"", b->name, article(colour), colour, object);
        break;
    case 1:
        fprintf(out, " %s gave the %s to %s.", pronoun(a, 1), object, b->name);
        fprintf(out, " %s was very %s.", b->name, PICK(rng, feelings));
        break;
    case 2:
        fprintf(out, " Then the %s fell into a hole. %s called %s for help.", object, a->name, b->name);
        fprintf(out, " Together they got the %s back.", object);
        break;
    default:
        fprintf(out, " %s and %s played with the %s all day.", a->name, b->name, object);
        break;
    }
    const char *feeling = PICK(rng, feelings);
    fprintf(out, " At the end of the day, %s felt %s.", a->name, feeling);
    if (ct_rng_below(rng, 2)) fprintf(out, " %s went home with the %s %s.", pronoun(a, 1), colour, object);
    fprintf(out, " The end.\n\n");
}

int ct_write_stories(FILE *out, uint64_t documents, uint64_t seed) {
    CtRng rng;
    ct_rng_seed(&rng, seed);
    for (uint64_t i = 0; i < documents; i++) story(out, &rng);
    if (fflush(out) != 0 || ferror(out)) return ct_error_errno("writing stories failed");
    return 0;
}
