/* sandbox-exec-helper - runs as the parent of a command inside a local sandbox
 *
 * Usage: sandbox-exec-helper STATUS-FD CWD -- PROGRAM [ARGUMENT...]
 *
 * Reports on STATUS-FD, one line each:
 *   error chdir|exec ERRNO     the command could not be started
 *   status WAIT-STATUS         the command ended (as from waitpid)
 *
 * bubblewrap alone reports a signal as exit status 128+N and an exec failure
 * as exit status 1, both indistinguishable from a program's own exit; this
 * helper lets the library tell them apart. It is linked statically so that
 * it runs in any image root file system.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      buf += n;
      len -= (size_t) n;
    }
}

int
main (int argc, char **argv)
{
  int status_fd, errpipe[2], wstatus = 0;
  char buf[64];
  ssize_t n;
  pid_t pid;

  if (argc < 5 || strcmp (argv[3], "--") != 0)
    {
      fprintf (stderr, "usage: %s STATUS-FD CWD -- PROGRAM [ARGUMENT...]\n", argv[0]);
      return 125;
    }
  status_fd = atoi (argv[1]);

  if (pipe2 (errpipe, O_CLOEXEC) < 0)
    return 125;

  pid = fork ();
  if (pid < 0)
    return 125;
  if (pid == 0)
    {
      const char *stage = "chdir";
      int len;

      close (errpipe[0]);
      close (status_fd);
      if (chdir (argv[2]) == 0)
        {
          stage = "exec";
          execvp (argv[4], argv + 4);
        }
      len = snprintf (buf, sizeof buf, "error %s %d\n", stage, errno);
      write_all (errpipe[1], buf, (size_t) len);
      _exit (127);
    }

  close (errpipe[1]);
  do
    n = read (errpipe[0], buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    write_all (status_fd, buf, (size_t) n);
  close (errpipe[0]);

  while (waitpid (pid, &wstatus, 0) < 0)
    if (errno != EINTR)
      return 125;

  n = snprintf (buf, sizeof buf, "status %d\n", wstatus);
  write_all (status_fd, buf, (size_t) n);
  return 0;
}
