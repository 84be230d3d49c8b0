// DPO against TRL's DPOTrainer (tests/ref/dpo_trl_ref.py): the same tiny Llama, plain-string
// pairs (some whose prompt's last token merges with the completion) and hyperparameters give the
// same loss, rewards and log-probabilities at every step; so do message-list pairs through
// ChatML. Skipped where torch, transformers, datasets or trl is not importable.
#include <stdio.h>

#include "tests/hf_fixture.h"
#include "tests/test.h"

// A 1024-token tokenizer (tokenizer.json with <|endoftext|>) that transformers loads too, in dir.
static int make_tokenizer(const char *dir) {
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c 300000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && '%s' tokenizer train --input "
             "corpus.txt --vocab-size 1024 --special '<|endoftext|>' --out tok.json",
             dir, ct_test_shared_data(), ct_test_bin());
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s: %s", cmd, out);
    free(out);
    return rc;
}

static void compare_with_trl(const char *mode) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (!ct_test_shared_data() || make_tokenizer(dir) != 0) return;
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s' %s", bin, dir, mode);
    hf_fixture_ref("dpo_trl_ref.py", args);
}

TEST(dpo_ref, plain_pairs_train_as_trl_dpo_trainer_does) { compare_with_trl("plain"); }
TEST(dpo_ref, message_list_pairs_train_as_trl_dpo_trainer_does) { compare_with_trl("chat"); }
