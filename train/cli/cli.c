#include "train/cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/version.h"
#include "train/cli/build_info.h"
#include "train/cli/command.h"
#include "train/cli/commands.h"

// The one table of commands. Later work adds a line here and a train/cli/cmd_*.c file.
static const CtCommand *const commands[] = {
    &ct_cmd_config,
    &ct_cmd_pretrain,
    &ct_cmd_sft,
    &ct_cmd_dpo,
    &ct_cmd_reward,
    &ct_cmd_grpo,
    &ct_cmd_mlm,
    &ct_cmd_classify,
    &ct_cmd_generate,
    &ct_cmd_chat,
    &ct_cmd_eval,
    &ct_cmd_tokenize,
    &ct_cmd_detokenize,
    &ct_cmd_tokenizer_train,
    &ct_cmd_shard,
    &ct_cmd_bench_loader,
    &ct_cmd_ckpt_info,
    &ct_cmd_synth_stories,
    &ct_cmd_synth_instructions,
    &ct_cmd_bench_train,
    &ct_cmd_bench_matmul,
    &ct_cmd_bench_generate,
    &ct_cmd_import_hf,
    &ct_cmd_export_hf,
    &ct_cmd_export_gguf,
    &ct_cmd_lora_export,
    &ct_cmd_lora_merge,
    &ct_cmd_peft_export,
    &ct_cmd_peft_import,
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void print_main_usage(FILE *out) {
    fprintf(out,
            "usage: ctrain <command> [options]\n"
            "       ctrain <command> --help     options of a command\n"
            "       ctrain --version            version and what this build supports\n\n"
            "commands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(out, "  %-20s %s\n", commands[i]->name, commands[i]->summary);
}

// What a command printed must have reached stdout: on a full disk (`ctrain eval ... > out.txt`)
// the last buffered line is written only now, and a failure would otherwise be lost with exit 0.
static int check_stdout(int rc) {
    int flush_failed = fflush(stdout) != 0, err = errno;
    if (!flush_failed && !ferror(stdout)) return rc;
    if (rc != 0) return rc;  // the command's own error was said already
    fprintf(stderr, "ctrain: stdout: %s (the output is incomplete)\n", flush_failed ? strerror(err) : "a write failed");
    return 1;
}

// How many leading words of argv name `cmd` (1 or 2), or 0 when they do not.
static int command_words(const CtCommand *cmd, int argc, char **argv) {
    const char *space = strchr(cmd->name, ' ');
    if (!space) return strcmp(cmd->name, argv[0]) == 0 ? 1 : 0;
    size_t group_len = (size_t)(space - cmd->name);
    if (strlen(argv[0]) != group_len || strncmp(cmd->name, argv[0], group_len) != 0) return 0;
    return argc > 1 && strcmp(space + 1, argv[1]) == 0 ? 2 : 0;
}

static int is_group(const char *word) {
    size_t len = strlen(word);
    for (int i = 0; i < n_commands; i++)
        if (strncmp(commands[i]->name, word, len) == 0 && commands[i]->name[len] == ' ') return 1;
    return 0;
}

static int unknown_command(int argc, char **argv) {
    if (is_group(argv[0])) {
        fprintf(stderr, "ctrain: %s '%s %s'; %s commands:\n", argc > 1 ? "unknown command" : "missing subcommand in",
                argv[0], argc > 1 ? argv[1] : "...", argv[0]);
        size_t len = strlen(argv[0]);
        for (int i = 0; i < n_commands; i++)
            if (strncmp(commands[i]->name, argv[0], len) == 0 && commands[i]->name[len] == ' ')
                fprintf(stderr, "  %-20s %s\n", commands[i]->name, commands[i]->summary);
        return 2;
    }
    fprintf(stderr, "ctrain: unknown command '%s'\n", argv[0]);
    print_main_usage(stderr);
    return 2;
}

int ct_cli_main(int argc, char **argv) {
    if (argc < 2) {
        print_main_usage(stderr);
        return 2;
    }
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0 || strcmp(first, "help") == 0) {
        if (argc > 2 && strcmp(first, "help") == 0)
            for (int i = 0; i < n_commands; i++)
                if (command_words(commands[i], argc - 2, argv + 2)) {
                    ct_cli_print_command_help(commands[i], stdout);
                    return 0;
                }
        if (argc > 2 && strcmp(first, "help") == 0) return unknown_command(argc - 2, argv + 2);
        print_main_usage(stdout);
        return 0;
    }
    if (strcmp(first, "--version") == 0 || strcmp(first, "-V") == 0) {
        ct_print_build_info(stdout);
        return 0;
    }
    if (first[0] == '-') {
        fprintf(stderr, "ctrain: unknown option '%s' (a command comes first)\n", first);
        print_main_usage(stderr);
        return 2;
    }
    for (int i = 0; i < n_commands; i++) {
        int words = command_words(commands[i], argc - 1, argv + 1);
        if (!words) continue;
        CtArgs args;
        int rc = ct_cli_parse(commands[i], argc - 1 - words, argv + 1 + words, &args);
        if (rc == -1) return 0;  // --help was printed
        if (rc != 0) return rc;
        return check_stdout(commands[i]->run(&args));
    }
    return unknown_command(argc - 1, argv + 1);
}
