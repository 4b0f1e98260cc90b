/*
 * reload: read the configuration, and check a new one on SIGHUP.
 *
 * As nginx keeps its old cycle when a new one fails, a reload first
 * builds and checks a complete new configuration; if anything is wrong
 * the running one stays, untouched, and the log says why (file, line,
 * key).  A valid one is applied by supervisor.c: it starts a new
 * generation of workers with the new settings; only the new generation
 * gets jobs once it is ready; the old one is told to drain, finishes
 * what it holds (its outcomes are acted on as usual) and exits.
 * Nothing in flight is given back or sent twice.
 *
 * Settings that name where state lives (state_dir, pid_file) or what the
 * source is (type) cannot change without a restart: a reload that
 * changes them is refused as a whole.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "argv.h"
#include "log.h"
#include "natsauth.h"
#include "notify.h"
#include "reload.h"
#include "trust.h"

/*
 * A file holding a secret in the clear, and every secret file of
 * [source], read and checked as the nats source will read them at start.
 */
static int
nats_secrets_check(const struct conf *c, const char *path, char *err,
    size_t len)
{
	struct natsauth a;
	char msg[CONF_ERR_MAX];

	if (natsauth_check_conf(c, path, err, len) < 0)
		return -1;
	if (natsauth_load(&a, c, msg, sizeof(msg)) < 0) {
		snprintf(err, len, "%s: %s", path, msg);
		return -1;
	}
	natsauth_free(&a);
	return 0;
}

/*
 * What root runs and reads may be changed by nobody else, and nothing it
 * writes is reached through a symlink: checked with the rest, so that
 * mandrilld -t refuses what start-up would.
 */
static int
trust_conf(const struct conf *c, const char *path, char *err, size_t len)
{
	static const char *keys[] = { "[mandrill] pid_file",
	    "[mandrill] log_file", "[metrics] metrics_file" };
	const char *files[] = { c->pid_file, c->log_file, c->metrics_file };
	char why[CONF_ERR_MAX], msg[160], **argv;
	uid_t self = geteuid();
	int rc = 0;

	if (trust_check(path, TRUST_CONFIG, self, why, sizeof(why)) < 0) {
		snprintf(err, len, "%s: refusing this configuration file: %s",
		    path, why);
		return -1;
	}
	if (trust_check(c->worker_path, TRUST_PROGRAM, self, why,
	    sizeof(why)) < 0) {
		snprintf(err, len, "%s: [mandrill] worker_path: refusing to run "
		    "it as root: %s", path, why);
		return -1;
	}
	if (c->mode == RESTART_COMMAND &&
	    (argv = argv_split(c->command, msg, sizeof(msg))) != NULL) {
		if (argv[0] != NULL && trust_check(argv[0], TRUST_PROGRAM, self,
		    why, sizeof(why)) < 0) {
			snprintf(err, len, "%s: [restart] command: refusing to "
			    "run its program: %s", path, why);
			rc = -1;
		}
		argv_free(argv);
		if (rc < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (trust_written(files[i], why, sizeof(why)) < 0) {
			snprintf(err, len, "%s: %s: %s", path, keys[i], why);
			return -1;
		}
	return 0;
}

int
config_read(const struct overrides *ov, struct conf *c, char *err, size_t len)
{
	char msg[CONF_ERR_MAX];

	struct stat sb;

	conf_defaults(c);
	if (conf_load(c, ov->conf_path, err, len) < 0)
		return -1;
	if (ov->level >= 0)
		c->log_level = (enum log_level)ov->level;
	if (ov->pid_file[0] != '\0')
		snprintf(c->pid_file, sizeof(c->pid_file), "%s", ov->pid_file);
	if (conf_resolve(c, ov->cwd, msg, sizeof(msg)) < 0) {
		snprintf(err, len, "%s: %s", ov->conf_path, msg);
		return -1;
	}
	if (trust_conf(c, ov->conf_path, err, len) < 0)
		return -1;
	if (c->user[0] != '\0' && getpwnam(c->user) == NULL) {
		snprintf(err, len, "%s: [mandrill] user %s: no such user",
		    ov->conf_path, c->user);
		return -1;
	}
	if (c->control_group[0] != '\0' && getgrnam(c->control_group) == NULL) {
		snprintf(err, len, "%s: [mandrill] control_group %s: no such "
		    "group", ov->conf_path, c->control_group);
		return -1;
	}
	if (c->source == SOURCE_NATS && nats_secrets_check(c, ov->conf_path,
	    err, len) < 0)
		return -1;
	if (stat(c->state_dir, &sb) == 0 && (sb.st_mode & S_IWOTH)) {
		snprintf(err, len, "%s: state_dir %s is writable by everyone; "
		    "refusing it (chmod o-w)", ov->conf_path, c->state_dir);
		return -1;
	}
	return 0;
}

/* The first setting that a reload may not change, or NULL. */
static const char *
fixed_change(const struct conf *old, const struct conf *new)
{
	if (strcmp(old->state_dir, new->state_dir) != 0)
		return "[mandrill] state_dir";
	if (strcmp(old->pid_file, new->pid_file) != 0)
		return "[mandrill] pid_file";
	if (old->source != new->source)
		return "[source] type";
	if (strcmp(old->control_socket, new->control_socket) != 0)
		return "[mandrill] control_socket";
	if (strcmp(old->control_group, new->control_group) != 0)
		return "[mandrill] control_group";
	if (strcmp(old->user, new->user) != 0)
		return "[mandrill] user";
	if (old->coordination != new->coordination)
		return "[fleet] coordination";
	if (old->coordination == COORD_NATS) {
		/* The fleet's buckets, and the lifetimes they keep keys for. */
		if (strcmp(old->instance, new->instance) != 0)
			return "[fleet] instance";
		if (strcmp(old->bucket, new->bucket) != 0)
			return "[fleet] bucket";
		if (old->fleet_lease != new->fleet_lease)
			return "[fleet] lease";
		if (old->remember != new->remember)
			return "[fleet] remember";
		if (old->min_interval != new->min_interval)
			return "[restart] min_interval (with [fleet] coordination "
			    "= nats, the TTL of <bucket>-recent)";
	}
	if (old->source != SOURCE_NATS)
		return NULL;
	/* What names and shapes the durable consumer, under running work. */
	if (strcmp(old->url, new->url) != 0)
		return "[source] url";
	if (strcmp(old->stream, new->stream) != 0)
		return "[source] stream";
	if (strcmp(old->subject, new->subject) != 0)
		return "[source] subject";
	if (strcmp(old->durable, new->durable) != 0)
		return "[source] durable";
	if (old->ack_wait != new->ack_wait)
		return "[source] ack_wait";
	if (old->max_deliver != new->max_deliver)
		return "[source] max_deliver";
	if (old->max_ack_pending != new->max_ack_pending)
		return "[source] max_ack_pending";
	if (old->create != new->create)
		return "[source] create";
	if (old->replicas != new->replicas)
		return "[source] replicas";
	return NULL;
}

int
reload_prepare(const struct overrides *ov, const struct conf *old,
    struct source *src, struct conf *c, char *why, size_t whylen)
{
	char err[CONF_ERR_MAX + CONF_PATH_MAX];
	const char *fixed;

	if (config_read(ov, c, err, sizeof(err)) < 0) {
		snprintf(why, whylen, "reload failed, configuration unchanged: "
		    "%s", err);
	} else if ((fixed = fixed_change(old, c)) != NULL) {
		snprintf(why, whylen, "reload refused, configuration unchanged: "
		    "%s cannot change without restarting mandrilld", fixed);
	} else if (src->ops->reload(src, c, err, sizeof(err)) < 0) {
		snprintf(why, whylen, "reload failed, configuration unchanged: "
		    "source: %s", err);
	} else {
		if (strcmp(old->log_file, c->log_file) != 0 &&
		    log_open(c->log_file) < 0) {
			log_err("reload: log_file %s: %s; logging on where it "
			    "was", c->log_file, log_open_error(errno));
			snprintf(c->log_file, sizeof(c->log_file), "%s",
			    old->log_file);
		}
		return 0;
	}
	log_err("%s", why);
	notify_send("READY=1\nSTATUS=reload failed; see the log");
	return -1;
}
