/* livedump: command-line front end. Dispatches to one file per command.
 *
 *   livedump capture --machine sim [options] -o FILE
 *   livedump policy show|set KEY VALUE|check
 *   livedump reports list|prune
 *   livedump info FILE [--page ADDR] [--json]
 *   livedump verify FILE
 *   livedump version
 *
 * Exit status: 0 success, 1 the work failed, 2 bad arguments. */
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#endif

#include "cli.h"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("livedump %s\n", LD_VERSION_STRING);
    return CLI_EXIT_OK;
}

/* On Windows the engine runs in the driver: capture asks it
 * (cmd_capture_nt.c); the policy file and the reports folder are the
 * Linux build's (docs/windows.md). */
static const cli_command commands[] = {
#ifdef _WIN32
    {"capture", "take a live dump of this machine (through livedump.sys)", cmd_capture},
#else
    {"capture", "take a live dump of a machine", cmd_capture},
    {"policy", "show, change or check the policy settings", cmd_policy},
    {"reports", "list or prune the reports folder", cmd_reports},
#endif
    {"info", "show what a .dmp file holds", cmd_info},
    {"verify", "re-read a .dmp file and check it", cmd_verify},
    {"version", "print the version", cmd_version},
};

static void usage(FILE *f)
{
    fputs("usage: livedump COMMAND [options]\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'livedump COMMAND --help' describes a command's options.\n", f);
}

int main(int argc, char **argv)
{
#ifdef _WIN32
    /* Bytes as written: no CR before each LF, so output (the JSON above
     * all) is the same as on Linux. */
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
#endif
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 2, argv + 2);
    cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    return CLI_EXIT_USAGE;
}
