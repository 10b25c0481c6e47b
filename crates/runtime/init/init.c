/*
 * coracle-init: a minimal init for `coracle run --init`, bound into the container at
 * /sbin/docker-init and run as `docker-init -- CMD ARGS...`. It starts CMD, forwards
 * the signals it receives to it, reaps every zombie (orphans re-parented to pid 1)
 * and exits with CMD's status (128+N if CMD died of signal N). Static, so it runs in
 * any image. Our own code, in tini's spirit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    if (first >= argc) {
        fprintf(stderr, "docker-init: usage: docker-init -- COMMAND [ARG...]\n");
        return 125;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);

    pid_t child = fork();
    if (child < 0) {
        perror("docker-init: fork");
        return 125;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], &argv[first]);
        int err = errno;
        fprintf(stderr, "docker-init: exec %s: %s\n", argv[first], strerror(err));
        _exit(err == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            perror("docker-init: sigwaitinfo");
            return 125;
        }
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            if (pid != child) continue;
            /* Reap what is left, then leave with the command's status. */
            while (waitpid(-1, NULL, WNOHANG) > 0) {}
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
            return 125;
        }
    }
}
