/*
 * invites-api: an XMPP component that creates invites through an HTTP API.
 * This file only dispatches: options, the command line of one subcommand,
 * config, then the subcommand.
 */

#include "commands.h"
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX 2 /* the most positional arguments any command takes */

/* Options after the command: bits of struct command.options, also the
 * struct option values. */
enum {
	OPT_EXPIRES = 1 << 8,
	OPT_LIMIT = 1 << 9,
	OPT_MAX_PER_DAY = 1 << 10,
	OPT_JSON = 1 << 11,
	OPT_ONLINE = 1 << 12,
	OPT_ALLOW = 1 << 13,
};

static const struct option long_options[] = {
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"json", no_argument, NULL, OPT_JSON},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"max-per-day", required_argument, NULL, OPT_MAX_PER_DAY},
    {"online", no_argument, NULL, OPT_ONLINE},
    {NULL, 0, NULL, 0},
};

typedef int command_fn(const struct config *cfg, const char *cfg_path,
                       const struct command_options *opts, int argc, char **argv);

struct command {
	const char *name;
	int min_args, max_args; /* positional, at most ARGS_MAX */
	int options;            /* OPT_* it accepts */
	const char *args;
	const char *help;
	command_fn *run;
};

static int serve(const struct config *cfg, const char *cfg_path, const struct command_options *opts,
                 int argc, char **argv)
{
	(void)opts;
	return cmd_serve(cfg, cfg_path, argc, argv);
}

/* Sorted by name. */
static const struct command commands[] = {
    {"check", 0, 0, OPT_ONLINE, " [--online]",
     "validate the configuration (--online: and what the server offers)", cmd_check},
    {"create", 2, 2, OPT_EXPIRES | OPT_LIMIT | OPT_MAX_PER_DAY | OPT_ALLOW,
     " HOST NAME [--expires DURATION] [--limit N/DURATION | --max-per-day N] [--allow LIST]",
     "create an API key for HOST and print it once", cmd_create},
    {"delete", 2, 2, 0, " HOST ID", "revoke the API key ID of HOST", cmd_delete},
    {"import", 2, 2, 0, " HOST PATH", "import the keys prosodyctl mod_invites_api made",
     cmd_import},
    {"list", 1, 1, OPT_JSON, " HOST [--json]", "list the API keys of HOST", cmd_list},
    {"serve", 0, 0, 0, "", "run the component and the HTTP API in the foreground", serve},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: invites-api [-c FILE] COMMAND [ARGS]\n\n"
	             "  -c, --config FILE  configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	             "  -h, --help         show this help\n"
	             "  -V, --version      show the version\n\n"
	             "commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char left[128];
		snprintf(left, sizeof(left), "%s%s", commands[i].name, commands[i].args);
		if (strlen(left) > 20)
			fprintf(out, "  %s\n  %-20s %s\n", left, "", commands[i].help);
		else
			fprintf(out, "  %-20s %s\n", left, commands[i].help);
	}
	fprintf(out, "\nDURATION is a number with a unit s, m, h, d or w (30d, 12h), or seconds.\n"
	             "N/DURATION allows N invites per DURATION (20/1d).\n"
	             "LIST is what the key may make, comma-separated: account (account invites,\n"
	             "the default), reset (password-reset invites), e.g. --allow account,reset.\n"
	             "PATH is Prosody's data_path, HOST's invite_api_keys.dat in it, or Prosody's\n"
	             "SQLite database.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void set_option(struct command_options *opts, int opt, const char *value)
{
	switch (opt) {
	case OPT_EXPIRES:
		opts->expires = value;
		break;
	case OPT_LIMIT:
		opts->limit = value;
		break;
	case OPT_MAX_PER_DAY:
		opts->max_per_day = value;
		break;
	case OPT_JSON:
		opts->json = true;
		break;
	case OPT_ONLINE:
		opts->online = true;
		break;
	case OPT_ALLOW:
		opts->allow = value;
		break;
	}
}

/* Say which option was not known, without echoing a value (someone may have
 * typed --key=ID/SECRET). */
static void unknown_option(const struct command *cmd, const char *arg)
{
	char name[41], shown[CLI_SHOWN_MAX];
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "=/"), arg);
	fprintf(stderr,
	        "invites-api: %s: unknown option %s (put -- before an argument that "
	        "starts with --)\n",
	        cmd->name, cli_shown(shown, name));
}

/* The long option arg names ("--name" or "--name=value"), or NULL. */
static const struct option *find_long_option(const char *arg)
{
	size_t len = strcspn(arg + 2, "=");
	for (const struct option *o = long_options; o->name != NULL; o++) {
		if (strlen(o->name) == len && strncmp(o->name, arg + 2, len) == 0)
			return o;
	}
	return NULL;
}

/*
 * What follows the command name (argv[0]): options anywhere, the rest into
 * args. Only "--name" words are options: key IDs are base64url and one in 64
 * starts with '-', so "-x" is always an argument (getopt would take it for an
 * option). "--" ends the options. 0, or -1 after telling the user.
 */
static int parse_command_line(const struct command *cmd, int argc, char **argv,
                              struct command_options *opts, char **args, int *n_args)
{
	int seen = 0;
	bool options_done = false;
	*n_args = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options_done || strncmp(arg, "--", 2) != 0) {
			if (*n_args >= cmd->max_args || *n_args >= ARGS_MAX)
				goto err_usage;
			args[(*n_args)++] = argv[i];
			continue;
		}
		if (arg[2] == '\0') {
			options_done = true;
			continue;
		}
		const struct option *o = find_long_option(arg);
		if (o == NULL) {
			unknown_option(cmd, arg);
			return -1;
		}
		if ((cmd->options & o->val) == 0 || (seen & o->val) != 0) {
			fprintf(stderr, "invites-api: %s %s --%s\n", cmd->name,
			        (seen & o->val) != 0 ? "takes only one" : "does not take", o->name);
			return -1;
		}
		const char *value = strchr(arg, '=');
		if (o->has_arg == no_argument && value != NULL) {
			fprintf(stderr, "invites-api: --%s takes no value\n", o->name);
			return -1;
		}
		if (o->has_arg == required_argument && value == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "invites-api: --%s needs a value\n", o->name);
				return -1;
			}
			value = argv[++i];
		} else if (value != NULL) {
			value++;
		}
		seen |= o->val;
		set_option(opts, o->val, value);
	}
	if (*n_args < cmd->min_args)
		goto err_usage;
	args[*n_args] = NULL;
	return 0;

err_usage:
	fprintf(stderr, "usage: invites-api [-c FILE] %s%s\n", cmd->name, cmd->args);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option global_options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *cfg_path = CONFIG_DEFAULT_PATH;
	int opt;

	while ((opt = getopt_long(argc, argv, "+c:hV", global_options, NULL)) != -1) {
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
		char shown[CLI_SHOWN_MAX];
		fprintf(stderr, "invites-api: unknown command \"%s\"\n",
		        cli_shown(shown, argv[optind]));
		usage(stderr);
		return EXIT_USAGE;
	}
	struct command_options opts = {0};
	char *args[ARGS_MAX + 1];
	int n_args;
	if (parse_command_line(cmd, argc - optind, argv + optind, &opts, args, &n_args) < 0)
		return EXIT_USAGE;

	/* A closed stdout must be an error return, not death: `create` revokes a
	 * key nobody could see (the daemon ignores SIGPIPE too). */
	signal(SIGPIPE, SIG_IGN);

	struct config cfg;
	char err[512];
	if (config_load(&cfg, cfg_path, err, sizeof(err)) < 0) {
		char shown[CLI_SHOWN_MAX];
		fprintf(stderr, "invites-api: %s\n", cli_shown(shown, err));
		return EXIT_FAILURE;
	}
	int status = cmd->run(&cfg, cfg_path, &opts, n_args, args);
	config_finish(&cfg);
	return status;
}
