/*
 * proto: the supervisor <-> worker wire protocol.
 *
 * A stream of msgpack maps over an AF_UNIX SOCK_STREAM socketpair, each
 * at most PROTO_FRAME_MAX bytes, each with a string "t" naming its type.
 * The first frame each way carries "v", the protocol version.
 *
 *   supervisor -> worker: welcome {v, settings...}, job {id, msg_id,
 *                         data, size, attempt, deadline, bury, crashes,
 *                         lost_at, retry_of}, cancel {id}, drain {}, reopen {} (the
 *                         log file), granted {id, outcome, hold, retry,
 *                         error, until} (the answer to a grant, and each
 *                         renewal of one: until is when it ends)
 *   worker -> supervisor: ready {v, pid, max_jobs, db_dev, db_ino},
 *                         started {id, pgid} (a restart command's process
 *                         group), done {id, outcome, error, attempt,
 *                         duration, host, hold, retry}, heartbeat {},
 *                         state {unsaved, store, wal} (sent when it changes),
 *                         grant {id, msg_id, host, group} (fleet mode: may
 *                         this restart start?)
 *
 * Decoding is strict and total: every key of a type is required, no
 * other key is allowed, every value has one type, and every failure is
 * reported as a one-line reason.  Strings and binaries in a decoded
 * message point into the unpacker's memory: valid until the next frame.
 */
#ifndef MANDRILL_PROTO_H
#define MANDRILL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define PROTO_VERSION	7	/* 2: job frames carry bury; 3: holds, crashes,
				   the store's state, mode and synchronous
				   as strings; 4: pause_reason; 5: retain,
				   log_format, the dry-run outcome, and
				   retry_of in job frames; 6: the window,
				   group and check settings, the window and
				   group holds; 7: fleet grants (grant,
				   granted), coordination, the fleet
				   hold */
#define PROTO_FRAME_MAX	65536
#define PROTO_DATA_MAX	32768	/* payload bytes carried in a job frame */
#define PROTO_ERR_MAX	256	/* error text carried in a done frame */
#define PROTO_MAP_MAX	64	/* keys in one frame, at most */
#define PROTO_PATH_MAX	1024	/* bytes a path setting needs, NUL included */
#define PROTO_LIST_MAX	4096	/* bytes a glob list setting needs */

enum proto_type {
	P_WELCOME, P_JOB, P_CANCEL, P_DRAIN, P_REOPEN, P_READY, P_DONE,
	P_HEARTBEAT, P_STARTED, P_STATE, P_GRANT, P_GRANTED,
};

/* What a job came to; see DESIGN.md's outcome table. */
enum outcome {
	OUT_RESTARTED, OUT_SKIPPED, OUT_DUPLICATE, OUT_FAILED, OUT_DEAD,
	OUT_INVALID, OUT_HELD, OUT_ERROR, OUT_DRY_RUN,
	OUT_COUNT
};

/*
 * Why a message waits (OUT_HELD, and the supervisor's own holds): it
 * keeps its lease and is offered again when the reason may have cleared.
 */
enum hold {
	HOLD_NONE, HOLD_PAUSED, HOLD_HOST, HOLD_MSG_ID, HOLD_CONCURRENCY,
	HOLD_RATE, HOLD_STORE, HOLD_CRASH, HOLD_WINDOW, HOLD_GROUP,
	HOLD_FLEET,	/* the fleet's Key-Value store cannot be reached */
	HOLD_COUNT
};

const char *outcome_name(enum outcome o);
int outcome_parse(const char *s, size_t len, enum outcome *out);
const char *hold_name(enum hold h);
int hold_parse(const char *s, size_t len, enum hold *out);

struct pstr {
	const char	*p;
	size_t		 len;
};

/* How a value travels. */
enum proto_kind { F_U32, F_U64, F_I64, F_DBL, F_STR, F_BIN, F_OUTCOME, F_HOLD };

/*
 * The worker's effective settings, sent in the welcome frame.  Each field
 * has one row in proto_settings (proto.c); a string points into the
 * sender's struct conf or into the unpacker's memory.
 */
struct worker_settings {
	uint32_t	 gen;		/* supervisor's worker generation */
	uint32_t	 slot;		/* worker index, for logs */
	uint32_t	 max_jobs;
	uint32_t	 log_level;
	struct pstr	 synchronous;	/* "off", "normal" or "full" */
	struct pstr	 mode;		/* "sim" or "command" */
	uint32_t	 max_attempts;
	int64_t		 busy_timeout;
	int64_t		 heartbeat;	/* send one when idle this long */
	int64_t		 sim_latency_min;
	int64_t		 sim_latency_max;
	double		 sim_failure_rate;
	uint64_t	 sim_seed;
	int64_t		 min_interval;
	int64_t		 restart_timeout;
	struct pstr	 state_dir;
	struct pstr	 domain;
	struct pstr	 allow;
	struct pstr	 deny;
	struct pstr	 log_file;	/* "": keep stderr */
	struct pstr	 command;	/* mode = command: the template */
	struct pstr	 user;		/* "": do not change user */
	uint32_t	 enabled;
	uint32_t	 dry_run;
	uint32_t	 max_concurrent;
	uint32_t	 max_per_minute;
	int64_t		 slow_iteration;	/* ms; warn above */
	uint32_t	 max_crashes;
	uint64_t	 wal_limit;
	struct pstr	 log_format;	/* "text" or "json" */
	int64_t		 retain;	/* ms; 0: prune nothing */
	uint64_t	 db_dev;	/* 0: no database seen yet, create one */
	uint64_t	 db_ino;
	struct pstr	 pause_reason;	/* "": not paused by mandrillctl */
	struct pstr	 window;	/* window.h; "": always open */
	struct pstr	 timezone;	/* "": the system's local time */
	struct pstr	 group;		/* ERE; "": groups from payloads only */
	uint32_t	 max_concurrent_per_group;
	struct pstr	 check;		/* argv template; "": no check */
	int64_t		 check_timeout;
	int64_t		 check_interval;
	struct pstr	 coordination;	/* "none" or "nats": ask for grants */
	int64_t		 fleet_lease;	/* [fleet] lease */
};

/*
 * One setting: its key in the welcome frame, its kind, its place in
 * struct worker_settings, and the place in struct conf it is copied from
 * (PROTO_NO_CONF: the sender fills it in).  The welcome encoder, its
 * decoder and settings_from_conf() all walk this one table, so a new
 * setting is a conf key, a field here and one row there.
 */
struct proto_setting {
	const char	*name;
	enum proto_kind	 kind;
	size_t		 off;
	size_t		 conf;
};
#define PROTO_NO_CONF	SIZE_MAX

extern const struct proto_setting proto_settings[];
extern const size_t proto_nsettings;

struct proto_msg {
	enum proto_type	 type;
	uint32_t	 v;
	uint64_t	 id;
	struct pstr	 msg_id;
	struct pstr	 data;
	uint64_t	 size;		/* the payload's size before truncation */
	uint32_t	 attempt;
	int64_t		 deadline;	/* wall ms when the lease ends */
	enum outcome	 outcome;
	struct pstr	 error;
	uint32_t	 pid;
	uint32_t	 max_jobs;
	uint64_t	 duration;	/* done: the restart's run time, us */
	uint32_t	 pgid;		/* started: the command's process group */
	struct pstr	 bury;		/* job: "" or why the broker gave up */
	uint32_t	 crashes;	/* job: workers lost holding it, new */
	int64_t		 lost_at;	/* job: wall ms its last worker was lost */
	uint64_t	 retry_of;	/* job: mandrillctl retry of this dead letter */
	struct pstr	 host;		/* done: the host, "" if none */
	enum hold	 hold;		/* done: why it is held */
	int64_t		 retry;		/* done: offer again after, ms; 0 */
	uint32_t	 unsaved;	/* state: known outcomes not committed */
	struct pstr	 store;		/* state: "" or why it cannot commit */
	uint64_t	 wal;		/* state: WAL bytes */
	uint64_t	 db_dev;	/* ready: the database file's identity */
	uint64_t	 db_ino;
	struct pstr	 group;		/* grant: the host's group, "" */
	int64_t		 until;		/* granted: when the grant ends, in
					   clock_now() ms (CLOCK_MONOTONIC,
					   the same in both processes) */
	struct worker_settings ws;
};

/* A done frame's contents. */
struct proto_done {
	uint64_t	 id;
	enum outcome	 outcome;
	const char	*error;
	uint32_t	 attempt;
	uint64_t	 duration;	/* us */
	const char	*host;		/* NULL: unknown */
	enum hold	 hold;
	int64_t		 retry;
};

/* A job frame's contents. */
struct proto_job {
	uint64_t	 id;
	const char	*msg_id;
	size_t		 msg_id_len;
	const char	*data;
	size_t		 len;
	uint32_t	 attempt;
	int64_t		 deadline;
	const char	*bury;		/* NULL: restart it */
	uint32_t	 crashes;
	int64_t		 lost_at;
	uint64_t	 retry_of;	/* dead_letters id retried, or 0 */
};

int proto_decode(const msgpack_object *o, struct proto_msg *m,
    char *err, size_t errlen);
/*
 * The next frame of a byte stream, checked before msgpack-c sees it: a
 * flat map (no nested array or map) of at most PROTO_MAP_MAX entries and
 * PROTO_FRAME_MAX bytes.  Declared counts are never trusted, so a hostile
 * header cannot make the unpacker allocate gigabytes.  1 with *m decoded
 * (pointing into p and res) and *used set; 0 if more bytes are needed;
 * -1 with err.
 */
int proto_next(const char *p, size_t n, msgpack_unpacked *res,
    struct proto_msg *m, size_t *used, char *err, size_t errlen);

void proto_pack_welcome(msgpack_packer *pk, const struct worker_settings *ws);
void proto_pack_job(msgpack_packer *pk, const struct proto_job *j);
void proto_pack_cancel(msgpack_packer *pk, uint64_t id);
void proto_pack_drain(msgpack_packer *pk);
void proto_pack_reopen(msgpack_packer *pk);
void proto_pack_ready(msgpack_packer *pk, uint32_t pid, uint32_t max_jobs,
    uint64_t db_dev, uint64_t db_ino);
void proto_pack_done(msgpack_packer *pk, const struct proto_done *d);
void proto_pack_state(msgpack_packer *pk, uint32_t unsaved, const char *store,
    uint64_t wal);
void proto_pack_heartbeat(msgpack_packer *pk);
void proto_pack_started(msgpack_packer *pk, uint64_t id, uint32_t pgid);

/* A grant request: may this restart start, fleet-wide? */
struct proto_grant {
	uint64_t	 id;
	const char	*msg_id;
	const char	*host;
	const char	*group;		/* "" when none */
};
/*
 * Its answer: outcome restarted (granted until, a clock_now() time), held (hold,
 * retry, error), or skipped, duplicate or invalid (error says why).
 */
struct proto_granted {
	uint64_t	 id;
	enum outcome	 outcome;
	enum hold	 hold;
	int64_t		 retry;
	const char	*error;
	int64_t		 until;
};
void proto_pack_grant(msgpack_packer *pk, const struct proto_grant *g);
void proto_pack_granted(msgpack_packer *pk, const struct proto_granted *g);

#endif
