/*
 * admit: what happens to a message, decided over a snapshot.
 *
 * Pure functions: the store gathers the facts inside its transaction
 * (the message's row, the host's restarts, the limits' counts) and
 * records the verdict; the decision itself is here, tested as a table
 * (tests/check_admit.c), the way supervisor/outcome.c holds the outcome
 * table.  Two stages, so that the host's facts are gathered only for a
 * message that gets that far:
 *   admit_row()   the message's own row: a msg_id conflict, a duplicate,
 *                 a restart in progress or lost, crashes and attempts;
 *   admit_host()  the rules: paused, outside the window, the host
 *                 busy, min_interval, max_concurrent,
 *                 max_concurrent_per_group, max_per_minute.
 * A message that waits is held (never an attempt, never a nack): the
 * verdict names the reason and when to look again.
 */
#ifndef MANDRILL_ADMIT_H
#define MANDRILL_ADMIT_H

#include <stdint.h>

#include "proto.h"

#define ADMIT_RATE_WINDOW	60000	/* ms: max_per_minute's window */
#define ADMIT_MSGID_RETRY	2000	/* ms: a msg_id in progress elsewhere */
#define ADMIT_WINDOW_RETRY	60000	/* ms: a closed window looked at again */

struct admit_rules {
	uint32_t	 max_attempts;
	uint32_t	 max_crashes;		/* 0: no limit */
	int64_t		 min_interval;		/* ms; 0: none */
	int		 enabled;		/* 0: paused */
	char		 pause_reason[256];	/* mandrillctl pause's, or "" */
	uint32_t	 max_concurrent;	/* 0: no limit */
	uint32_t	 max_per_minute;	/* 0: no limit */
	uint32_t	 max_per_group;		/* 0: no limit */
	/* The window, judged by the caller: 0 open, else ms until it opens. */
	int64_t		 window_opens;		/* -1: not within a week */
	char		 window[128];		/* its text, for the reason */
};

/* The message's row, as read in the transaction. */
struct admit_row {
	int		 found;
	const char	*state;		/* when found */
	const char	*host;		/* the row's host, when found */
	uint32_t	 attempts;
	uint32_t	 crashes;	/* recorded and newly reported, summed */
	int		 owner_alive;	/* state restarting: its worker lives */
	const char	*owner;
};

/* The host's and the limits' facts; only those the rules need. */
struct admit_host {
	int		 busy;		/* another live restart of this host */
	int64_t		 last_ok_age;	/* ms since its last success; -1 */
	const char	*last_ok;	/* that success's time, for the reason */
	uint32_t	 running;	/* live restarts, all hosts */
	uint32_t	 last_minute;	/* restarts started in the window */
	int64_t		 rate_free_in;	/* ms until one leaves the window */
	const char	*group;		/* the host's group; NULL: none */
	uint32_t	 group_running;	/* live restarts in that group */
};

enum admit_verdict {
	AV_NEXT,	/* admit_row: go on to admit_host */
	AV_GO,		/* start an attempt */
	AV_DUPLICATE,	/* final already: ack */
	AV_CONFLICT,	/* the msg_id names another host: invalid */
	AV_HELD,	/* wait: hold, retry */
	AV_LOST,	/* the last attempt's worker died: record it lost */
	AV_DEAD,	/* out of attempts or crashes */
	AV_SKIPPED,	/* within min_interval */
};

struct admit_decision {
	enum admit_verdict verdict;
	enum hold	 hold;		/* AV_HELD */
	int64_t		 retry;		/* AV_HELD: ms, 0 for no hint */
	char		 why[256];
};

int admit_is_final(const char *state);
/*
 * The check every path makes on a row that exists (admission, a bad copy,
 * a burial): final is a duplicate, restarting is held (its worker lives)
 * or lost.  1 when that decides, 0 to go on.
 */
int admit_existing(const struct admit_row *row, struct admit_decision *d);
/* The row's verdict; AV_NEXT when the rules decide. */
void admit_row(const struct admit_row *row, const char *host,
    const struct admit_rules *r, struct admit_decision *d);
/* The rules' verdict: AV_GO, AV_HELD or AV_SKIPPED. */
void admit_host(const struct admit_host *h, const char *host,
    const struct admit_rules *r, struct admit_decision *d);
/* After a lost attempt (attempts counts it): failed or dead? */
int admit_lost_is_dead(uint32_t attempts, const struct admit_rules *r);

#endif
