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
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <ev.h>

#include "log.h"
#include "preflight.h"
#include "proctree.h"
#include "reload.h"
#include "statelock.h"
#include "supervisor.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

struct options {
	struct overrides ov;
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
	struct overrides *ov = &o->ov;
	enum log_level level;
	int ch;

	snprintf(ov->conf_path, sizeof(ov->conf_path), "%s",
	    SYSCONFDIR "/mandrill/mandrill.conf");
	ov->level = -1;
	while ((ch = getopt_long(argc, argv, "c:tfp:l:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			snprintf(ov->conf_path, sizeof(ov->conf_path), "%s", optarg);
			break;
		case 't': o->test = 1; break;
		case 'f': o->foreground = 1; break;
		case 'p':
			snprintf(ov->pid_file, sizeof(ov->pid_file), "%s", optarg);
			break;
		case 'l':
			if (log_level_parse(optarg, &level) < 0) {
				fprintf(stderr, "mandrilld: -l %s: expected debug, "
				    "info, warning or error\n", optarg);
				return -1;
			}
			ov->level = (int)level;
			break;
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
	if (getcwd(ov->cwd, sizeof(ov->cwd)) == NULL) {
		fprintf(stderr, "mandrilld: getcwd: %s\n", strerror(errno));
		return -1;
	}
	/* Reloads happen after the chdir("/") of a daemon. */
	if (ov->conf_path[0] != '/') {
		char abs[sizeof(ov->conf_path) + sizeof(ov->cwd)];

		snprintf(abs, sizeof(abs), "%s/%s", ov->cwd, ov->conf_path);
		if (strlen(abs) >= sizeof(ov->conf_path)) {
			fprintf(stderr, "mandrilld: -c %s: path too long\n",
			    ov->conf_path);
			return -1;
		}
		memcpy(ov->conf_path, abs, strlen(abs) + 1);
	}
	return 0;
}

/* The daemon's end of the start-up pipe; -1 once told or in -f mode. */
static int started_fd = -1;

/*
 * Fork into the background.  The parent stays until the daemon says how
 * its start-up went (tell_parent), so that an init script or an operator
 * at a terminal sees a failure to start (say, exit 69: the broker cannot
 * be reached) as the exit status, not as a 0 and a line in a log.
 */
static int
detach(const char *log_file)
{
	int fd, p[2], status;
	unsigned char rc;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	switch ((pid = fork())) {
	case -1:
		return -1;
	case 0:
		close(p[0]);
		started_fd = p[1];
		break;
	default:
		close(p[1]);
		do
			n = read(p[0], &rc, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			/* It died before it could say: its status, if known. */
			if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
				rc = (unsigned char)WEXITSTATUS(status);
			else
				rc = EX_SOFTWARE;
		}
		if (rc != 0)
			fprintf(stderr, "mandrilld: start-up failed (status %d); "
			    "see %s\n", rc, log_file);
		_exit(rc);
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

/* Tell the waiting parent how start-up went: 0, or the exit status. */
static int
tell_parent(int rc)
{
	unsigned char b = (unsigned char)rc;

	if (started_fd >= 0) {
		(void)!write(started_fd, &b, 1);
		close(started_fd);
		started_fd = -1;
	}
	return rc;
}

/* Never through a symlink: root would overwrite whatever it names. */
static int
write_pid(const char *path)
{
	char buf[32];
	int fd, n, rc = 0;

	if (*path == '\0')
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0644);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n)
		rc = -1;
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

/* errno's text, and what ELOOP means for the pid file. */
static const char *
open_error(void)
{
	return errno == ELOOP ? "is a symlink; refusing to follow it" :
	    strerror(errno);
}

/* -t: a warning is printed, and the check still passes. */
static void
print_warning(void *arg, const char *msg)
{
	printf("mandrilld: %s: warning: %s\n", (const char *)arg, msg);
}

/* Before detaching: to the log, and to the terminal if that is not it. */
static void
startup_err(const char *msg)
{
	log_err("%s", msg);
	if (log_fd() != STDERR_FILENO)
		fprintf(stderr, "mandrilld: %s\n", msg);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct conf c;
	struct supervisor s;
	struct ev_loop *loop;
	char err[CONF_ERR_MAX + CONF_PATH_MAX];
	int rc, lockfd, busy;

	memset(&o, 0, sizeof(o));
	/*
	 * Started with 0, 1 or 2 closed, the next file opened would take its
	 * place and be clobbered by the dup2()s of detaching and logging.
	 */
	for (;;) {
		int fd = open("/dev/null", O_RDWR);

		if (fd > STDERR_FILENO)
			close(fd);
		if (fd < 0 || fd > STDERR_FILENO)
			break;
	}
	if (parse_args(argc, argv, &o) < 0)
		return EX_USAGE;
	if (config_read(&o.ov, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "mandrilld: %s\n", err);
		return EX_CONFIG;
	}
	if (o.test) {
		/* What start-up would fail on, judged now, changing nothing. */
		if (preflight_check(&c, err, sizeof(err), print_warning,
		    o.ov.conf_path) < 0) {
			fprintf(stderr, "mandrilld: %s: %s\n", o.ov.conf_path,
			    err);
			return EX_CONFIG;
		}
		if (c.allow[0] == '\0')
			printf("mandrilld: %s: warning: [restart] allow is empty, "
			    "so no host may be restarted\n", o.ov.conf_path);
		printf("mandrilld: %s: configuration OK\n", o.ov.conf_path);
		return 0;
	}
	if (!o.foreground && c.log_file[0] == '\0') {
		fprintf(stderr, "mandrilld: without -f, set log_file in %s "
		    "(a daemon has no terminal to log to)\n", o.ov.conf_path);
		return EX_CONFIG;
	}
	log_init(NULL);
	log_set_level(c.log_level);
	log_set_json(c.log_format == 1);
	if (log_open(c.log_file) < 0) {
		fprintf(stderr, "mandrilld: log_file %s: %s\n", c.log_file,
		    log_open_error(errno));
		return EX_CANTCREAT;
	}
	/* Everything that can fail at start-up fails before we detach. */
	if (preflight_state_dir(&c) < 0)
		return EX_CANTCREAT;
	/* Held until exit; before the pid file, which is the first's. */
	if ((lockfd = statelock_take(c.state_dir, &busy, err,
	    sizeof(err))) < 0) {
		startup_err(err);
		return busy ? EX_UNAVAILABLE : EX_CANTCREAT;
	}
	if (!o.foreground && detach(c.log_file) < 0) {
		log_err("detach: %s", strerror(errno));
		return EX_OSERR;
	}
	if (!o.foreground && statelock_note(lockfd) < 0) {
		log_err("lock file %s/%s: %s", c.state_dir, STATELOCK_NAME,
		    strerror(errno));
		return tell_parent(EX_CANTCREAT);
	}
	if (c.log_file[0] != '\0' && !o.foreground)
		dup2(log_fd(), STDERR_FILENO);
	if (write_pid(c.pid_file) < 0) {
		log_err("pid_file %s: %s", c.pid_file, open_error());
		return tell_parent(EX_CANTCREAT);
	}
	/*
	 * A worker is a child subreaper for its commands; when a worker dies,
	 * what is below it comes here (not to init) and is killed.  Not
	 * inherited across fork: set in the process that stays.
	 */
	if (proctree_subreaper() < 0) {
		log_err("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
		return tell_parent(EX_OSERR);
	}
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(EVFLAG_AUTO);
	log_info("mandrilld %s starting: %u workers, source %s", PACKAGE_VERSION,
	    c.workers, c.source == SOURCE_SIM ? "sim" : "nats");
	if (supervisor_init(&s, loop, &c, &o.ov) < 0)
		rc = tell_parent(EX_UNAVAILABLE);
	else {
		tell_parent(0);
		rc = supervisor_run(&s);
	}
	supervisor_free(&s);
	if (c.pid_file[0] != '\0')
		unlink(c.pid_file);
	log_info("mandrilld exiting with status %d", rc);
	return rc;
}
