/*
 * notify: tell systemd about the service's state (sd_notify protocol).
 *
 * When started by systemd with Type=notify, NOTIFY_SOCKET names a Unix
 * datagram socket; mandrilld sends "READY=1" once its workers are ready,
 * "RELOADING=1" on SIGHUP and "READY=1" again when the new generation is
 * ready, and "STOPPING=1" when it starts to drain.  Without the variable
 * this does nothing.  The protocol is one datagram: no library needed.
 */
#ifndef MANDRILL_NOTIFY_H
#define MANDRILL_NOTIFY_H

/* 0 sent or nothing to do, -1 with errno. */
int notify_send(const char *state);
/* RELOADING=1 with MONOTONIC_USEC, as systemd 253 and later expect. */
int notify_reloading(void);

#endif
