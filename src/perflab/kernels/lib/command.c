#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int next_cmd_option(int argc, char **argv, int *i, struct cmd_option *opt,
                    void (*bad)(const char *msg, const char *arg))
{
    if (*i >= argc || !strcmp(argv[*i], "--"))
        return 0;
    const char *a = argv[*i], *eq = strchr(a, '=');
    if (strncmp(a, "--", 2) != 0 || !eq) {
        bad("expected --key=value or --", a);
        return 0; /* not reached: bad exits */
    }
    opt->arg = a;
    opt->key_len = (size_t)(eq - a);
    opt->value = eq + 1;
    (*i)++;
    return 1;
}

int cmd_option_is(const struct cmd_option *opt, const char *name)
{
    return opt->key_len == strlen(name) && !strncmp(opt->arg, name, opt->key_len);
}

char *path_search(const char *name)
{
    if (strchr(name, '/'))
        return strdup(name);
    const char *path = getenv("PATH");
    if (!path || !*path) /* execvp(3): "the default path ... /bin:/usr/bin" (glibc adds /usr/local/bin) */
        path = "/usr/local/bin:/bin:/usr/bin";
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        char *cand;
        struct stat st;
        /* an empty entry is the current directory (execvp(3), "PATH") */
        if (asprintf(&cand, "%.*s%s%s", (int)(end - p), p, end == p ? "" : "/", name) < 0)
            return NULL;
        if (access(cand, X_OK) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode))
            return cand;
        free(cand);
        if (!*end)
            return NULL;
        p = end;
    }
}
