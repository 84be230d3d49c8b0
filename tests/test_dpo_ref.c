// DPO against TRL's DPOTrainer (tests/ref/dpo_trl_ref.py): the same tiny Llama, plain-string
// pairs (some whose prompt's last token merges with the completion) and hyperparameters give the
// same loss, rewards and log-probabilities at every step. Skipped where torch, transformers,
// datasets or trl is not importable.
#include <stdio.h>

#include "tests/hf_fixture.h"
#include "tests/test.h"

TEST(dpo_ref, plain_pairs_train_as_trl_dpo_trainer_does) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir(), *shared = ct_test_shared_data();
    if (!shared) return;
    char cmd[4096], *out;
    // A 1024-token tokenizer (tokenizer.json with <|endoftext|>) that transformers loads too.
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c 300000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && '%s' tokenizer train --input "
             "corpus.txt --vocab-size 1024 --special '<|endoftext|>' --out tok.json",
             dir, shared, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' '%s'", bin, dir);
    hf_fixture_ref("dpo_trl_ref.py", cmd);
}
