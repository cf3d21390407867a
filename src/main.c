/*
 * invites-api: an XMPP component that creates invites through an HTTP API.
 * This file only dispatches: options, config, then one subcommand.
 */

#include "commands.h"
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

struct command {
	const char *name;
	int n_args;
	const char *args;
	const char *help;
	int (*run)(const struct config *cfg, const char *cfg_path, int argc, char **argv);
};

/* Sorted by name. */
static const struct command commands[] = {
    {"check", 0, "", "validate the configuration", cmd_check},
    {"create", 2, " HOST NAME", "create an API key for HOST and print it once", cmd_create},
    {"delete", 2, " HOST ID", "revoke the API key ID of HOST", cmd_delete},
    {"list", 1, " HOST", "list the API keys of HOST (ID<TAB>NAME)", cmd_list},
    {"serve", 0, "", "run the component and the HTTP API in the foreground", cmd_serve},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: invites-api [-c FILE] COMMAND [ARGS]\n\n"
	             "  -c FILE   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	             "  -h        show this help\n"
	             "  -V        show the version\n\n"
	             "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char left[32];
		snprintf(left, sizeof(left), "%s%s", commands[i].name, commands[i].args);
		fprintf(out, "  %-20s %s\n", left, commands[i].help);
	}
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *cfg_path = CONFIG_DEFAULT_PATH;
	int opt;

	while ((opt = getopt(argc, argv, "+c:hV")) != -1) {
		switch (opt) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("invites-api %s\n", INVITES_API_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	const struct command *cmd = find_command(argv[optind]);
	if (cmd == NULL) {
		fprintf(stderr, "invites-api: unknown command \"%s\"\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	int n_args = argc - optind - 1;
	if (n_args != cmd->n_args) {
		fprintf(stderr, "usage: invites-api [-c FILE] %s%s\n", cmd->name, cmd->args);
		return EXIT_USAGE;
	}

	struct config cfg;
	char err[512];
	if (config_load(&cfg, cfg_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "invites-api: %s\n", err);
		return EXIT_FAILURE;
	}
	int status = cmd->run(&cfg, cfg_path, n_args, argv + optind + 1);
	config_finish(&cfg);
	return status;
}
