#ifndef INVITES_COMMANDS_H
#define INVITES_COMMANDS_H

/*
 * The subcommands of invites-api. Each takes the loaded config and its own
 * arguments (argv[0] is the first argument after the command name), reports
 * errors on stderr and returns the process exit status.
 */

#include "config.h"

int cmd_check(const struct config *cfg, const char *cfg_path, int argc, char **argv);
int cmd_create(const struct config *cfg, const char *cfg_path, int argc, char **argv);
int cmd_delete(const struct config *cfg, const char *cfg_path, int argc, char **argv);
int cmd_list(const struct config *cfg, const char *cfg_path, int argc, char **argv);

/* Run the component and the HTTP API in the foreground until SIGTERM/SIGINT
 * (daemon.c). */
int cmd_serve(const struct config *cfg, const char *cfg_path, int argc, char **argv);

#endif
