/*
 * mandrillctl: ask and steer a running mandrilld (see mandrillctl(8)).
 *
 * It reads the same configuration file as mandrilld, to find the control
 * socket and the database, sends one request per command and prints the
 * answer; history and dead read the database read-only.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "duration.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

static void
usage(FILE *f)
{
	fprintf(f, "usage: mandrillctl [-c FILE] [--json] COMMAND [ARG...]\n"
	    "commands:\n"
	    "  status                  what mandrilld is doing\n"
	    "  pause [--reason TEXT]   hold everything, also across restarts\n"
	    "  resume                  end a pause\n"
	    "  reload                  reread the configuration file\n"
	    "  drain                   finish what runs, then exit\n"
	    "  workers N               run N worker processes\n"
	    "  check HOST...           would each host be restarted now?\n"
	    "  history HOST [--limit N] every request and attempt, newest first\n"
	    "  dead [--since T] [--limit N] dead letters, newest first\n"
	    "  retry MSG_ID            give a dead letter another go\n");
}

static int
load_conf(struct ctl *c, int reload)
{
	char err[CONF_ERR_MAX + CONF_PATH_MAX], cwd[CONF_PATH_MAX];

	conf_defaults(&c->conf);
	if (conf_load(&c->conf, c->conf_path, err, sizeof(err)) < 0) {
		/* The daemon would refuse it too: no need to ask. */
		fprintf(stderr, "mandrillctl: %s%s\n", reload ? "reload "
		    "refused, configuration unchanged: " : "", err);
		return EX_CONFIG;
	}
	/* Relative paths are mandrilld's: from where it started. */
	if (c->conf.state_dir[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
		char tmp[sizeof(c->conf.state_dir)];

		if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", cwd,
		    c->conf.state_dir) < sizeof(tmp))
			memcpy(c->conf.state_dir, tmp, sizeof(tmp));
	}
	if (conf_control_path(&c->conf, c->sock, sizeof(c->sock)) < 0) {
		fprintf(stderr, "mandrillctl: %s: [mandrill] control_socket: "
		    "too long for a Unix socket\n", c->conf_path);
		return EX_CONFIG;
	}
	snprintf(c->db, sizeof(c->db), "%s/mandrill.db", c->conf.state_dir);
	return 0;
}

static void
print_json(const json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);

	if (text != NULL)
		puts(text);
	free(text);
}

static void
print_message(const json_t *ans)
{
	printf("%s\n", json_string_value(json_object_get(ans, "message")));
}

/* One request (taken); its answer for a person, or, --json, as it is. */
static int
ask(const struct ctl *c, json_t *req, void (*human)(const json_t *))
{
	json_t *ans;
	int status = ctl_request(c, req, &ans);

	json_decref(req);
	if (status != 0)
		return status;
	if (c->json)
		print_json(ans);
	else
		human(ans);
	json_decref(ans);
	return 0;
}

static int
simple(const struct ctl *c, json_t *req)
{
	return ask(c, req, print_message);
}

/* --name VALUE options after the command; 0, or EX_USAGE. */
static int
opt_after(int argc, char **argv, int *i, const char *name, const char **val)
{
	if (strcmp(argv[*i], name) != 0)
		return -1;
	if (*i + 1 >= argc) {
		fprintf(stderr, "mandrillctl: %s needs a value\n", name);
		return EX_USAGE;
	}
	*val = argv[++*i];
	return 0;
}

static int
parse_limit(const char *s, int *limit)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || n < 1 || n > 1000000) {
		fprintf(stderr, "mandrillctl: --limit %s: not a number from 1 "
		    "to 1000000\n", s);
		return EX_USAGE;
	}
	*limit = (int)n;
	return 0;
}

static int
cmd_pause(const struct ctl *c, int argc, char **argv)
{
	const char *reason = NULL;
	json_t *req;

	for (int i = 1; i < argc; i++) {
		int rc = opt_after(argc, argv, &i, "--reason", &reason);

		if (rc > 0)
			return rc;
		if (rc < 0) {
			fprintf(stderr, "mandrillctl: pause: unknown argument "
			    "%s\n", argv[i]);
			return EX_USAGE;
		}
	}
	req = reason != NULL ? json_pack("{s:s, s:s}", "cmd", "pause",
	    "reason", reason) : json_pack("{s:s}", "cmd", "pause");
	return simple(c, req);
}

static int
cmd_workers(const struct ctl *c, int argc, char **argv)
{
	char *end;
	long n;

	if (argc != 2 || (n = strtol(argv[1], &end, 10), *end != '\0') ||
	    argv[1][0] == '\0' || n < 1 || n > 256) {
		fprintf(stderr, "mandrillctl: workers N: N is a number from 1 "
		    "to 256\n");
		return EX_USAGE;
	}
	return simple(c, json_pack("{s:s, s:i}", "cmd", "workers", "n",
	    (int)n));
}

/* history HOST and dead: their options, then the query. */
static int
cmd_query(const struct ctl *c, int argc, char **argv)
{
	const char *since = NULL, *limit_s = NULL, *host = NULL;
	int history = strcmp(argv[0], "history") == 0, limit = 100, rc;

	for (int i = 1; i < argc; i++) {
		if ((rc = opt_after(argc, argv, &i, "--limit", &limit_s)) > 0 ||
		    (rc < 0 && !history && (rc = opt_after(argc, argv, &i,
		    "--since", &since)) > 0))
			return rc;
		if (rc == 0)
			continue;
		if (history && host == NULL && argv[i][0] != '-') {
			host = argv[i];
			continue;
		}
		fprintf(stderr, "mandrillctl: %s: unknown argument %s\n",
		    argv[0], argv[i]);
		return EX_USAGE;
	}
	if (limit_s != NULL && (rc = parse_limit(limit_s, &limit)) != 0)
		return rc;
	if (history && host == NULL) {
		fprintf(stderr, "mandrillctl: history needs a HOST\n");
		return EX_USAGE;
	}
	return history ? query_history(c, host, limit) :
	    query_dead(c, since, limit);
}

/* retry MSG_ID: the payload from the database, the publishing by mandrilld. */
static int
cmd_retry(const struct ctl *c, int argc, char **argv)
{
	char *payload;
	size_t len;
	int64_t dead_id = 0;
	json_t *req;
	int rc;

	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "mandrillctl: retry needs one MSG_ID\n");
		return EX_USAGE;
	}
	if ((rc = query_dead_payload(c, argv[1], &payload, &len, &dead_id)) != 0)
		return rc;
	req = json_pack("{s:s, s:s, s:s%, s:I}", "cmd", "retry", "msg_id",
	    argv[1], "payload", payload, len, "dead_id", (json_int_t)dead_id);
	free(payload);
	if (req == NULL) {
		fprintf(stderr, "mandrillctl: retry: the dead letter's payload "
		    "is not UTF-8 text\n");
		return EX_DATAERR;
	}
	return simple(c, req);
}

static int
run(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	int none = argc == 1;

	if (strcmp(cmd, "check") == 0) {
		if (argc < 2) {
			fprintf(stderr, "mandrillctl: check needs a HOST\n");
			return EX_USAGE;
		}
		return check_hosts(c, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "history") == 0 || strcmp(cmd, "dead") == 0)
		return cmd_query(c, argc, argv);
	if (strcmp(cmd, "pause") == 0)
		return cmd_pause(c, argc, argv);
	if (strcmp(cmd, "workers") == 0)
		return cmd_workers(c, argc, argv);
	if (strcmp(cmd, "retry") == 0)
		return cmd_retry(c, argc, argv);
	if (strcmp(cmd, "status") == 0 && none)
		return ask(c, json_pack("{s:s}", "cmd", "status"),
		    ctl_print_status);
	if ((strcmp(cmd, "resume") == 0 || strcmp(cmd, "reload") == 0 ||
	    strcmp(cmd, "drain") == 0) && none)
		return simple(c, json_pack("{s:s}", "cmd", cmd));
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "resume") == 0 ||
	    strcmp(cmd, "reload") == 0 || strcmp(cmd, "drain") == 0) {
		fprintf(stderr, "mandrillctl: %s takes no argument\n", cmd);
		return EX_USAGE;
	}
	fprintf(stderr, "mandrillctl: unknown command \"%s\"; try "
	    "mandrillctl --help\n", cmd);
	return EX_USAGE;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl c;
	int ch, status;

	memset(&c, 0, sizeof(c));
	c.conf_path = SYSCONFDIR "/mandrill/mandrill.conf";
	/* Options stop at the command: its own (--reason) follow it. */
	while ((ch = getopt_long(argc, argv, "+c:jh", longopts, NULL)) != -1)
		switch (ch) {
		case 'c':
			c.conf_path = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	argc -= optind;
	argv += optind;
	if (argc > 0 && strcmp(argv[argc - 1], "--json") == 0) {
		c.json = 1;		/* status --json, as the issue spells it */
		argc--;
	}
	if (argc == 0) {
		usage(stderr);
		return EX_USAGE;
	}
	if ((status = load_conf(&c, strcmp(argv[0], "reload") == 0)) != 0)
		return status;
	return run(&c, argc, argv);
}
