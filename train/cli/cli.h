// The ctrain command line: one table of commands (train/cli/cli.c; a command's spec and parser are
// in train/cli/command.h).
#pragma once

int ct_cli_main(int argc, char **argv);
