/*
 * mandrill-worker: started by mandrilld with its socket on fd 3.
 *
 * It reads no configuration file: its settings come in the supervisor's
 * welcome frame.  Run by hand it only answers --help and --version.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <ev.h>

#include "log.h"
#include "proctree.h"
#include "store.h"
#include "worker.h"

#define WORKER_FD 3
#define EXIT_KILL_MS 2000	/* for leftovers to die */

static void
usage(FILE *f)
{
	fprintf(f, "usage: mandrill-worker\n"
	    "Runs mandrill jobs for mandrilld, which starts it with its\n"
	    "socket on file descriptor 3; see mandrill-worker(8).\n");
}

/*
 * Nothing a restart command started outlives the worker: what commands
 * left running when they ended, or what escaped a kill, goes now, and
 * what dies is reaped, so that no zombie is left to init either.
 */
static void
reap_leftovers(void)
{
	size_t killed, left;

	left = proctree_kill_all(getpid(), NULL, 0, EXIT_KILL_MS, &killed);
	if (killed > 0)
		log_warn("killed %zu processes left behind by restart "
		    "commands", killed);
	if (left > 0)
		log_err("%zu processes left behind by restart commands would "
		    "not die within %d ms (another user's?)", left,
		    EXIT_KILL_MS);
}

int
main(int argc, char **argv)
{
	struct ev_loop *loop;
	struct worker w;
	struct stat sb;

	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("mandrill-worker (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		return 0;
	}
	if (argc > 1) {
		usage(strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return strcmp(argv[1], "--help") == 0 ? 0 : EX_USAGE;
	}
	if (fstat(WORKER_FD, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
		fprintf(stderr, "mandrill-worker: fd 3 is not a socket; "
		    "this program is started by mandrilld\n");
		return EX_USAGE;
	}
	log_init("worker");
	/*
	 * Before any command runs: what a command leaves behind (setsid, a
	 * double fork) is reparented to us, not to init, and can be killed.
	 */
	if (proctree_subreaper() < 0) {
		log_err("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
		return EX_OSERR;
	}
	store_global_init();
	/* Ctrl-C belongs to the supervisor, which decides and tells us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	fcntl(WORKER_FD, F_SETFD, FD_CLOEXEC);
	fcntl(WORKER_FD, F_SETFL, fcntl(WORKER_FD, F_GETFL) | O_NONBLOCK);
	loop = ev_default_loop(EVFLAG_AUTO);
	if (worker_init(&w, loop, WORKER_FD) < 0) {
		log_err("out of memory");
		return EX_OSERR;
	}
	ev_run(loop, 0);
	worker_cleanup(&w);
	reap_leftovers();
	return w.exit_code;
}
