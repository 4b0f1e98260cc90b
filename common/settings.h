/*
 * settings: the worker's settings, copied from the configuration.
 *
 * proto.c's proto_settings table names, for each field of struct
 * worker_settings, the field of struct conf it comes from; the copy walks
 * that table and reads each value as its conf key's type says, so a new
 * setting needs no code here.  Enumerated keys (mode, synchronous)
 * travel as their names, so that a worker needs no enum of conf.h.
 * Strings point into c and into conf_keys: valid while c is.
 */
#ifndef MANDRILL_SETTINGS_H
#define MANDRILL_SETTINGS_H

#include "conf.h"
#include "proto.h"

/* Every setting with a conf source; the rest (gen, slot, heartbeat) 0. */
void settings_from_conf(struct worker_settings *ws, const struct conf *c);

#endif
