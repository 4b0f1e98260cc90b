/*
 * mandrilld: argument parsing and wiring; the logic is in the modules.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "log.h"
#include "supervisor.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

#define EX_USAGE	64
#define EX_UNAVAILABLE	69
#define EX_SOFTWARE	70
#define EX_OSERR	71
#define EX_CANTCREAT	73
#define EX_CONFIG	78

struct options {
	const char	*conf_path;
	const char	*pid_file;
	const char	*level;
	int		 test;
	int		 foreground;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mandrilld [-ftV] [-c file] [-l level] [-p pidfile]\n"
	    "  -c, --config FILE    configuration file (default %s)\n"
	    "  -t, --test           check the configuration and exit\n"
	    "  -f, --foreground     do not detach; log to stderr unless log_file\n"
	    "  -p, --pid-file FILE  write the pid to FILE\n"
	    "  -l, --log-level L    debug, info, warning or error\n"
	    "  -V, --version        print the version and exit\n"
	    "  -h, --help           print this help and exit\n"
	    "      --sample-config  print every configuration key with its\n"
	    "                       default, as a sample mandrill.conf\n"
	    "See mandrilld(8) and mandrill.conf(5).\n",
	    SYSCONFDIR "/mandrill/mandrill.conf");
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "sample-config", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	o->conf_path = SYSCONFDIR "/mandrill/mandrill.conf";
	while ((ch = getopt_long(argc, argv, "c:tfp:l:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->conf_path = optarg; break;
		case 't': o->test = 1; break;
		case 'f': o->foreground = 1; break;
		case 'p': o->pid_file = optarg; break;
		case 'l': o->level = optarg; break;
		case 'V':
			printf("mandrilld (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		case 'S':
			conf_write_sample(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mandrilld: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Relative paths are taken from the directory mandrilld starts in. */
static int
absolute(char *path, size_t size)
{
	char cwd[CONF_PATH_MAX], tmp[CONF_PATH_MAX];

	if (path[0] == '/')
		return 0;
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/%s", cwd, path) >= size) {
		fprintf(stderr, "mandrilld: %s: path too long\n", path);
		return -1;
	}
	memcpy(path, tmp, strlen(tmp) + 1);
	return 0;
}

static int
load_conf(const struct options *o, struct conf *c)
{
	char err[CONF_ERR_MAX + CONF_PATH_MAX];
	enum log_level level;

	conf_defaults(c);
	if (conf_load(c, o->conf_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "mandrilld: %s\n", err);
		return -1;
	}
	if (o->level != NULL) {
		log_level_parse(o->level, &level);	/* checked in main() */
		c->log_level = level;
	}
	if (o->pid_file != NULL)
		snprintf(c->pid_file, sizeof(c->pid_file), "%s", o->pid_file);
	if (access(c->worker_path, X_OK) < 0) {
		fprintf(stderr, "mandrilld: %s: worker_path %s: %s\n",
		    o->conf_path, c->worker_path, strerror(errno));
		return -1;
	}
	if (absolute(c->worker_path, sizeof(c->worker_path)) < 0 ||
	    absolute(c->state_dir, sizeof(c->state_dir)) < 0)
		return -1;
	if (c->log_file[0] && absolute(c->log_file, sizeof(c->log_file)) < 0)
		return -1;
	if (c->pid_file[0] && absolute(c->pid_file, sizeof(c->pid_file)) < 0)
		return -1;
	return 0;
}

static int
detach(void)
{
	int fd;

	switch (fork()) {
	case -1:
		return -1;
	case 0:
		break;
	default:
		_exit(0);
	}
	if (setsid() < 0)
		return -1;
	if (chdir("/") < 0)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

static int
write_pid(const char *path)
{
	FILE *f;

	if (*path == '\0')
		return 0;
	if ((f = fopen(path, "we")) == NULL)
		return -1;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f);
}

static int
prepare_state_dir(const struct conf *c)
{
	if (mkdir(c->state_dir, 0750) < 0 && errno != EEXIST) {
		log_err("state_dir %s: %s", c->state_dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct conf c;
	struct supervisor s;
	struct ev_loop *loop;
	enum log_level level;
	int rc;

	memset(&o, 0, sizeof(o));
	if (parse_args(argc, argv, &o) < 0)
		return EX_USAGE;
	if (o.level != NULL && log_level_parse(o.level, &level) < 0) {
		fprintf(stderr, "mandrilld: -l %s: expected debug, info, warning "
		    "or error\n", o.level);
		return EX_USAGE;
	}
	if (load_conf(&o, &c) < 0)
		return EX_CONFIG;
	if (o.test) {
		printf("mandrilld: %s: configuration OK\n", o.conf_path);
		return 0;
	}
	if (!o.foreground && c.log_file[0] == '\0') {
		fprintf(stderr, "mandrilld: without -f, set log_file in %s "
		    "(a daemon has no terminal to log to)\n", o.conf_path);
		return EX_CONFIG;
	}
	log_init(NULL);
	log_set_level(c.log_level);
	if (log_open(c.log_file) < 0) {
		fprintf(stderr, "mandrilld: log_file %s: %s\n", c.log_file,
		    strerror(errno));
		return EX_CANTCREAT;
	}
	/* Everything that can fail at start-up fails before we detach. */
	if (prepare_state_dir(&c) < 0)
		return EX_CANTCREAT;
	if (!o.foreground && detach() < 0) {
		log_err("detach: %s", strerror(errno));
		return EX_OSERR;
	}
	if (c.log_file[0] != '\0' && !o.foreground)
		dup2(log_fd(), STDERR_FILENO);
	if (write_pid(c.pid_file) < 0) {
		log_err("pid_file %s: %s", c.pid_file, strerror(errno));
		return EX_CANTCREAT;
	}
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(EVFLAG_AUTO);
	log_info("mandrilld %s starting: %u workers, source %s", PACKAGE_VERSION,
	    c.workers, c.source == SOURCE_SIM ? "sim" : "nats");
	if (supervisor_init(&s, loop, &c, o.conf_path) < 0)
		rc = EX_UNAVAILABLE;
	else
		rc = supervisor_run(&s);
	supervisor_free(&s);
	if (c.pid_file[0] != '\0')
		unlink(c.pid_file);
	log_info("mandrilld exiting with status %d", rc);
	return rc;
}
