/* What the kernels that run a user's command share (tracer, cmdtime): their options,
 * "--key=value ... -- COMMAND [ARG...]", and execvp(3)'s PATH search done once, before
 * fork, so that the command makes exactly one execve (execvp would try each PATH entry,
 * and a tracer would count every failed try) and no search is timed. */
#ifndef PERFLAB_COMMAND_H
#define PERFLAB_COMMAND_H

#include <stddef.h>

struct cmd_option {
    const char *arg;   /* the whole argument, "--key=value" */
    size_t key_len;    /* of "--key" */
    const char *value; /* after the '=' */
};

/* The option at argv[*i], advancing *i past it: 1 with *opt set; 0 at "--" (argv[*i] is
 * then the "--") or at the end of argv. An argument of another form goes to `bad`
 * (the kernel's usage message, which exits). */
int next_cmd_option(int argc, char **argv, int *i, struct cmd_option *opt,
                    void (*bad)(const char *msg, const char *arg));

/* opt's key is `name` (with its "--", e.g. "--cpu"). */
int cmd_option_is(const struct cmd_option *opt, const char *name);

/* The file execvp(3) would run for `name` (malloc'd): `name` itself when it holds a '/',
 * else the first regular executable file "DIR/name" of $PATH (confstr's default path
 * where PATH is unset or empty); NULL when there is none. */
char *path_search(const char *name);

#endif /* PERFLAB_COMMAND_H */
