// What the end-to-end training tests share: a small dataset made through the ctrain binary,
// and the training lines of a run's metrics.jsonl.
#pragma once
#include "optim/adamw.h"
#include "train/model/model.h"

// In the test's folder: `documents` synthetic stories -> a tokenizer (tok.json: 3,000 tokens
// trained on the stories and 200 KB of ../shared/data's corpus, ~80 KB as tokenizer.json;
// 300 tokens of the stories alone where ../shared/data is absent) -> shards in data/ with a
// 10% validation split. 0, or -1 after recording a test failure.
int train_fixture_stories(int documents);
// train_fixture_stories(documents), `config` written to run.json, and a base trained from it by
// `ctrain pretrain run.json --data.path=data --run.out_dir=base EXTRA` in the test's folder (its
// checkpoints in base/). 0, or -1 after recording a test failure.
int train_fixture_base(int documents, const char *config, const char *extra);
// Loads DIR/FILE (DIR relative to the test's folder) on the CPU with its optimizer state.
// 0, or -1 + error.
int train_fixture_load_checkpoint(const char *run_dir, const char *file, CtModel *m, CtAdamW *opt);
// The "train" lines of DIR/metrics.jsonl (DIR relative to the test's folder) from step `from`
// on, without their timing fields, so two runs can be compared as text. NULL when unreadable.
char *train_fixture_metric_lines(const char *run_dir, int from);
// The number `key` of the metrics.jsonl line (a path) of `kind` ("train", "eval") at `step`; NAN
// when no such line has it as a number.
double train_fixture_metric(const char *metrics_path, const char *kind, int step, const char *key);
// In DIR: `pairs` plain-string preference pairs (reverse a list of three fruit: chosen reversed,
// rejected as given; seed 3) in pairs.jsonl, a 1024-token tokenizer trained on 300 KB of the
// shared corpus (tok.json), the pairs sharded as dpo into DIR/pairs and the corpus as text into
// DIR/text, each with a 10% validation split. 1 when ../shared/data is absent; otherwise 0, or the
// failing status with the commands' output in *out.
int train_fixture_reverse_pairs(const char *dir, int pairs, char **out);
// `ctrain ARGS` on np ranks under mpirun in the test folder (one thread each, ASan's leak check off,
// at most 300 s): the run's exit status, its output in *out (free it).
int train_fixture_mpirun(int np, const char *args, char **out);
