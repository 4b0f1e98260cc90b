/*
 * store: the worker's SQLite database, the audit log of every message.
 *
 * One file, <state_dir>/mandrill.db, in WAL mode, schema version in
 * PRAGMA user_version, migrated forward on open.  Callers group all the
 * changes of one loop iteration between store_begin() and store_commit()
 * (group commit); nothing that depends on a change (a restart, a done
 * frame) may happen before store_commit() returns 0.
 *
 * The store gathers what admit.c decides over, inside the transaction,
 * because only the database sees every worker, and records the verdict:
 *   - a msg_id with a final state is a duplicate; one naming another
 *     host is a conflict, dead-lettered, the first row left untouched;
 *   - a msg_id or host being restarted by a live worker is held;
 *   - a msg_id left "restarting" by a worker that died has its attempt
 *     recorded as lost (outcome unknown) and counts as a failed attempt;
 *   - workers lost while holding the message (crashes) count up to
 *     max_crashes, then it is dead;
 *   - a host restarted successfully less than min_interval ago is skipped;
 *   - paused, max_concurrent restarts running, or max_per_minute started
 *     in the last minute: held (not an attempt), with the reason and
 *     since when in the row.  Time differences use the monotonic clock
 *     of the boot that wrote a row, so wall-clock steps change nothing.
 */
#ifndef MANDRILL_STORE_H
#define MANDRILL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "admit.h"
#include "proto.h"

#define STORE_SCHEMA_VERSION 7

struct store;

/* SQLite's synchronous modes; the welcome's "off", "normal", "full". */
enum store_sync { STORE_SYNC_OFF, STORE_SYNC_NORMAL, STORE_SYNC_FULL };

struct store_opts {
	const char	*state_dir;
	int		 synchronous;	/* enum store_sync */
	int64_t		 busy_timeout;
	const char	*owner;		/* this worker: "pid:starttime" */
	/*
	 * Called every alive_interval ms while waiting for another
	 * process's lock, so that the waiter can say it is not hung.
	 */
	void		(*alive)(void *arg);
	void		*alive_arg;
	int64_t		 alive_interval;
	/* The database mandrilld saw first; 0: none yet, one may be made. */
	uint64_t	 db_dev, db_ino;
	/* Bytes the WAL is truncated to after a checkpoint resets it. */
	uint64_t	 wal_limit;
};

/* A message as the worker understood it. */
struct store_msg {
	const char	*msg_id;	/* NULL when the payload had none */
	const char	*broker_id;
	const char	*instance;
	const char	*host;
	const char	*payload;
	size_t		 payload_len;
	uint32_t	 delivery;
	uint32_t	 crashes;	/* workers lost holding it, not yet counted */
	int64_t		 lost_at;	/* wall ms its last worker was lost; 0 */
	uint64_t	 retry_of;	/* dead_letters id retried, or 0 */
	const char	*group;		/* the host's group, or NULL */
};


/* What the store decided for a message. */
struct store_verdict {
	enum outcome	 outcome;	/* OUT_RESTARTED means: go and restart */
	uint32_t	 attempts;	/* attempts made, this one included */
	int64_t		 restart_id;	/* restarts row of this attempt */
	uint32_t	 crashes;	/* the row's count, at admission */
	int		 dry_run;	/* finish: nothing was run */
	enum hold	 hold;		/* OUT_HELD: why */
	int64_t		 retry;		/* OUT_HELD: look again after, ms */
	int		 checked;	/* finish: a health check ran */
	int64_t		 check_ms;	/* how long the checks took */
	const char	*check_output;	/* the last check's output tail */
	char		 error[256];
};

/*
 * Once per process, before any other store call: a worker is one thread,
 * so SQLite needs no mutexes and no memory statistics.
 */
void store_global_init(void);
struct store *store_open(const struct store_opts *o, char *err, size_t len);
void store_close(struct store *s);
const char *store_errmsg(struct store *s);

/* The open file's device and inode, for the supervisor to pass on. */
void store_identity(const struct store *s, uint64_t *dev, uint64_t *ino);
/* The WAL's size now, in bytes. */
int64_t store_wal_bytes(struct store *s);
/*
 * Try a passive checkpoint: 1 if a reader keeps it from finishing (the
 * WAL cannot shrink while that reader lasts).  Once it finishes, a WAL
 * larger than wal_limit is truncated.
 */
int store_checkpoint_starved(struct store *s);
int64_t store_wal_limit(const struct store *s);
/*
 * retain: in one transaction, delete up to batch rows of each table
 * finished more than retain ms ago, adding how many to *deleted.  0
 * when there is nothing more to look at for now, 1 when a next batch
 * may find more, -1 on error.
 */
int store_prune(struct store *s, int64_t retain, unsigned batch,
    uint64_t *deleted);
/* Fails, with store_errmsg() saying so, if the file was deleted or replaced. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Record a message and decide; -1 on a database error. */
int store_admit(struct store *s, const struct store_msg *m,
    const struct admit_rules *r, struct store_verdict *v);
/* Record the end of an attempt; the verdict's outcome may become dead. */
int store_finish(struct store *s, const struct store_msg *m,
    const struct admit_rules *r, int exit_status, const char *output,
    struct store_verdict *v);
/* Record a message that failed validation; it may already be final. */
int store_invalid(struct store *s, const struct store_msg *m,
    const char *reason, struct store_verdict *v);
/*
 * The broker gave up on a message (reason): record it as dead, unless it
 * is final already (duplicate) or being restarted now (deferred).
 */
int store_bury(struct store *s, const struct store_msg *m,
    const char *reason, struct store_verdict *v);

/*
 * Fleet mode: the fleet settled a message without a restart here
 * (skipped: min_interval; duplicate: another instance restarted it;
 * invalid: its msg_id names another host there), reason saying why:
 * recorded, unless this database already decides it.
 */
int store_settle(struct store *s, const struct store_msg *m,
    enum outcome o, const char *reason, struct store_verdict *v);

/* Is the worker named by an owner string still running? */
int store_owner_alive(const char *owner);
/*
 * This process's owner string; -1 if /proc cannot tell (then no owner
 * could ever be judged alive, and the exactly-once rules would fail open).
 */
int store_owner_self(char *buf, size_t len);

#endif
