/* livedump command line: what the commands share.
 *
 * One file per command (cmd_*.c), one per machine backend (machine_*.c);
 * livedump.c only dispatches. Exit status everywhere: 0 success, 1 the work
 * failed (the reason is printed, with its NTSTATUS), 2 bad arguments. */
#ifndef LIVEDUMP_CLI_H
#define LIVEDUMP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "livedump/livedump.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2 };

/* ---- commands: `livedump NAME ARGS...` (argv[0] is the first of ARGS) ---- */
typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

int cmd_capture(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_reports(int argc, char **argv);

/* ---- policy (cmd_policy.c) ---- */
#define CLI_DEFAULT_POLICY "/etc/livedump/policy.conf"
struct ld_settings;
/* Load the settings file into s (defaults first); a missing file is the
 * defaults unless must_exist. Prints why and returns an exit status. */
int cli_load_policy(const char *path, bool must_exist, struct ld_settings *s);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);

/* ---- argument parsing ---- */
/* "livedump: <message>" and a hint to run `livedump CMD --help`. */
void cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An unsigned number, decimal or 0x hex, the whole string. 0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);
/* A size with an optional K/M/G/T suffix (powers of 1024). 0 or -1. */
int cli_parse_size(const char *s, uint64_t *out);
/* A single-value option given again would silently override the first:
 * refused. *seen is the caller's flag for that option; 0, or -1 with the
 * usage error printed. */
int cli_once(const char *cmd, bool *seen, const char *opt);
/* A failure of the library, with its NTSTATUS: "livedump: <what>: <why> (0x...)". */
void cli_status_error(ld_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The summary a capture prints (not with --quiet): status, file, pages,
 * mirroring, how long the machine was stopped. */
void cli_print_summary(const ld_result *r, const char *path);

/* ---- JSON ---- */
/* s as a JSON string on stdout, escaped by the library's ld_json_string
 * (the event JSON's escaper): ill-formed UTF-8 becomes U+FFFD and control
 * characters are escaped, so the output stays valid JSON. */
void cli_json_string(const char *s);

/* ---- what a running engine prints: events and a progress line ---- */
typedef enum { CLI_EVENTS_TEXT, CLI_EVENTS_JSON, CLI_EVENTS_NONE } cli_events_mode;

typedef struct cli_output {
    cli_events_mode events;
    bool progress_tty;   /* stderr is a terminal: draw the progress line */
    bool progress_shown; /* a progress line is on screen now */
    uint64_t events_seen;  /* events delivered so far */
} cli_output;

void cli_output_init(cli_output *o);
int cli_parse_events_mode(const char *v, cli_events_mode *out);
/* ld_event_fn and ld_progress_fn with a cli_output as arg. */
void cli_on_event(void *arg, const ld_event *ev);
ld_status cli_on_progress(void *arg, const char *phase, uint64_t done, uint64_t total);
void cli_progress_clear(cli_output *o);

/* ---- machines `capture --machine NAME` can dump ----
 * Each backend parses its own options and opens a HAL. */
typedef struct cli_machine {
    const char *name;
    const char *help;       /* its options, for `capture --help` */
    bool one_at_a_time;     /* a real machine: one live dump at a time (its machine lock) */
    size_t state_size;      /* zeroed state handed to every call */
    void (*init)(void *state);
    /* 1: the option is this machine's (*used_value set if it took `value`);
     * 0: not its option; -1: a bad value (the message is printed). */
    int (*option)(void *state, const char *opt, const char *value, bool *used_value);
    /* Build the machine; on failure print why and return an exit status. */
    int (*open)(void *state, const ld_hal **hal);
    void (*close)(void *state);
    /* Optional: the machine's own figures, printed after a successful,
     * not --quiet capture (before close). */
    void (*summary)(void *state);
} cli_machine;

extern const cli_machine cli_machine_sim;
extern const cli_machine cli_machine_kcore; /* Linux only */

#endif
