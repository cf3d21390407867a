#ifndef INVITES_COMMANDS_H
#define INVITES_COMMANDS_H

/*
 * The subcommands of invites-api. main.c parses the options after the command
 * name into struct command_options (only those the command's table row
 * allows) and checks the number of arguments; each command gets its
 * positional arguments (argv[0] is the first one), reports errors on stderr
 * and returns the process exit status.
 */

#include "config.h"

#include <stdbool.h>

#define EXIT_USAGE 2 /* bad command line; EXIT_FAILURE (1) for everything else */

/* Options given with a command, as typed; NULL or false when absent. */
struct command_options {
	const char *expires;     /* --expires DURATION */
	const char *limit;       /* --limit N/DURATION */
	const char *max_per_day; /* --max-per-day N */
	const char *allow;       /* --allow LIST */
	bool json;               /* --json */
	bool online;             /* --online */
};

/* src fit for a message on a terminal: control and non-ASCII bytes become
 * \xHH (an escape sequence in an argument or a file name must not reach the
 * terminal raw), cut with "..." to fit CLI_SHOWN_MAX. Returns dst. */
#define CLI_SHOWN_MAX 512
const char *cli_shown(char dst[CLI_SHOWN_MAX], const char *src);

int cmd_check(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
              int argc, char **argv);
int cmd_create(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
               int argc, char **argv);
int cmd_delete(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
               int argc, char **argv);
int cmd_import(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
               int argc, char **argv);
int cmd_list(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
             int argc, char **argv);

/* check --online, after the offline checks passed: connect, discover every
 * host, print what it offers and the fixes (check_online.c). */
int check_online(const struct config *cfg);

/* Run the component and the HTTP API in the foreground until SIGTERM/SIGINT
 * (daemon.c). */
int cmd_serve(const struct config *cfg, const char *cfg_path, int argc, char **argv);

#endif
