/* escape-helper - the attacker's side of test-local-escape, run INSIDE a
 * local sandbox (its directory is given to the sandbox by a read-only spec
 * mount, so that it is visible wherever the build tree is).
 *
 *   escape-helper swap DIR NAME-A NAME-B SECONDS
 *       In DIR, exchanges NAME-A and NAME-B (a directory and a symbolic
 *       link) with renameat2(RENAME_EXCHANGE) in a loop, until SECONDS
 *       have passed or DIR/stop exists. Prints how many swaps it made.
 *
 *   escape-helper syscall NAME...
 *       Makes each named system call, with harmless arguments, in a child
 *       of its own (so that a call that succeeds changes nothing for the
 *       next one), and prints "NAME OK" or "NAME ERRNO-NAME", one a line.
 *       Which result each call must give is the test's table, not this.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <termios.h>
#include <pty.h>

/* The newer calls have one number on every architecture. */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_fspick
#define SYS_fspick 433
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter 426
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
swap (const char *dir, const char *a, const char *b, double seconds)
{
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  double end = now () + seconds;
  unsigned long n = 0;

  if (dfd < 0)
    {
      perror (dir);
      return 1;
    }
  while (now () < end)
    {
      for (int i = 0; i < 1000; i++)
        if (syscall (SYS_renameat2, dfd, a, dfd, b, RENAME_EXCHANGE) == 0)
          n++;
      if (faccessat (dfd, "stop", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        break;
    }
  printf ("swaps %lu\n", n);
  return 0;
}

static int
has_prefix (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

static const char *
errno_name (int e)
{
  const char *name = strerrorname_np (e);

  return name ? name : "E?";
}

/* One call, in the child: returns 0 or the errno. */
static int
call (const char *name)
{
  static char buf[64];
  struct iovec local = { buf, 1 }, remote = { NULL, 1 };
  long r = -1;
  errno = 0;

#define IS(s) (strcmp (name, s) == 0)
  if (IS ("ioctl-TIOCSTI") || IS ("ioctl-TIOCLINUX"))
    {
      int master, slave;
      char c = ' ';

      if (openpty (&master, &slave, NULL, NULL, NULL) != 0)
        return 1000 + errno;   /* reported apart: no pty at all */
      if (IS ("ioctl-TIOCSTI"))
        r = syscall (SYS_ioctl, slave, TIOCSTI, &c);
      else
        {
          char sub = 7;   /* TIOCL_GETSHIFTSTATE, reads only */
          r = syscall (SYS_ioctl, slave, TIOCLINUX, &sub);
        }
    }
  else if (IS ("keyctl"))
    r = syscall (SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
  else if (IS ("add_key"))
    r = syscall (SYS_add_key, "user", "libsandbox-escape-probe", "x", 1, -2 /* process */);
  else if (IS ("request_key"))
    r = syscall (SYS_request_key, "user", "libsandbox-escape-none", NULL, 0);
  else if (IS ("ptrace-SEIZE-1"))
    r = syscall (SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, 1, 0, 0);
  else if (IS ("ptrace-PEEKUSER-1"))
    r = syscall (SYS_ptrace, 3 /* PTRACE_PEEKUSER */, 1, 0, 0);
  else if (IS ("process_vm_readv-1"))
    r = syscall (SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0);
  else if (IS ("process_vm_writev-1"))
    r = syscall (SYS_process_vm_writev, 1, &local, 1, &remote, 1, 0);
  else if (IS ("bpf"))
    r = syscall (SYS_bpf, 0, NULL, 0);
  else if (IS ("perf_event_open"))
    r = syscall (SYS_perf_event_open, NULL, 0, -1, -1, 0);
  else if (IS ("userfaultfd"))
    r = syscall (SYS_userfaultfd, O_CLOEXEC);
  else if (IS ("open_by_handle_at"))
    r = syscall (SYS_open_by_handle_at, AT_FDCWD, NULL, 0);
  else if (IS ("kexec_load"))
    r = syscall (SYS_kexec_load, 0, 0, NULL, 0);
  else if (IS ("kexec_file_load"))
    r = syscall (SYS_kexec_file_load, -1, -1, 0, "", 0);
  else if (IS ("init_module"))
    r = syscall (SYS_init_module, NULL, 0, "");
  else if (IS ("finit_module"))
    r = syscall (SYS_finit_module, -1, "", 0);
  else if (IS ("delete_module"))
    r = syscall (SYS_delete_module, "libsandbox_none", O_NONBLOCK);
  else if (IS ("reboot"))
    r = syscall (SYS_reboot, 0, 0, 0, NULL);   /* bad magic: never reboots */
  else if (IS ("swapon"))
    r = syscall (SYS_swapon, "/nonexistent", 0);
  else if (IS ("swapoff"))
    r = syscall (SYS_swapoff, "/nonexistent");
  else if (IS ("acct"))
    r = syscall (SYS_acct, NULL);
  else if (IS ("syslog"))
    r = syscall (SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
  else if (IS ("quotactl"))
    r = syscall (SYS_quotactl, 0, NULL, 0, NULL);
  else if (IS ("mount"))
    r = syscall (SYS_mount, "none", "/tmp", "tmpfs", 0, NULL);
  else if (IS ("umount2"))
    r = syscall (SYS_umount2, "/tmp", 2 /* MNT_DETACH */);
  else if (IS ("pivot_root"))
    r = syscall (SYS_pivot_root, "/tmp", "/tmp");
  else if (IS ("setns"))
    r = syscall (SYS_setns, open ("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC), 0);
  else if (IS ("unshare-NEWUSER"))
    r = syscall (SYS_unshare, CLONE_NEWUSER);
  else if (IS ("clone-NEWUSER"))
    {
      r = syscall (SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
      if (r == 0)
        _exit (0);
      if (r > 0)
        waitpid ((pid_t) r, NULL, 0);
    }
  else if (IS ("fsopen"))
    r = syscall (SYS_fsopen, "tmpfs", 0);
  else if (IS ("fsconfig"))
    r = syscall (SYS_fsconfig, -1, 0, NULL, NULL, 0);
  else if (IS ("fsmount"))
    r = syscall (SYS_fsmount, -1, 0, 0);
  else if (IS ("fspick"))
    r = syscall (SYS_fspick, AT_FDCWD, "/tmp", 0);
  else if (IS ("open_tree"))
    r = syscall (SYS_open_tree, AT_FDCWD, "/tmp", 0);
  else if (IS ("move_mount"))
    r = syscall (SYS_move_mount, -1, "", -1, "", 0);
  else if (IS ("mount_setattr"))
    r = syscall (SYS_mount_setattr, -1, "", 0, NULL, 0);
  else if (IS ("open_tree_attr"))
    r = syscall (467 /* Linux 6.15 */, AT_FDCWD, "/tmp", 0, NULL, 0);
  else if (IS ("clone3"))
    r = syscall (SYS_clone3, NULL, 0);
  else if (IS ("io_uring_setup"))
    r = syscall (SYS_io_uring_setup, 1, NULL);
  else if (IS ("io_uring_enter"))
    r = syscall (SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
  else if (IS ("io_uring_register"))
    r = syscall (SYS_io_uring_register, -1, 0, NULL, 0);
  else if (has_prefix (name, "socket-") || has_prefix (name, "socketpair-"))
    {
      static const struct { const char *name; int family, type; } families[] = {
        { "UNIX", AF_UNIX, SOCK_STREAM }, { "INET", AF_INET, SOCK_STREAM },
        { "INET6", AF_INET6, SOCK_STREAM }, { "NETLINK", AF_NETLINK, SOCK_RAW },
        { "PACKET", AF_PACKET, SOCK_DGRAM }, { "VSOCK", 40, SOCK_STREAM },
        { "ALG", 38, SOCK_SEQPACKET }, { "BLUETOOTH", 31, SOCK_STREAM },
        { "KEY", 15, SOCK_RAW },
        { "UNIXDGRAM", AF_UNIX, SOCK_DGRAM }, { "UNIXRAW", AF_UNIX, SOCK_RAW },
        { "UNIXRAW-NONBLOCK", AF_UNIX, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC },
      };
      const char *family = strchr (name, '-') + 1;
      int pair = has_prefix (name, "socketpair-");
      int sv[2];

      for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp (family, families[i].name) == 0)
          {
            if (pair)
              r = syscall (SYS_socketpair, families[i].family, families[i].type, 0, sv);
            else
              r = syscall (SYS_socket, families[i].family, families[i].type, 0);
            break;
          }
    }
  else if (IS ("fork-exec"))
    {
      pid_t pid = fork ();
      int status;

      if (pid == 0)
        {
          execl ("/bin/true", "true", (char *) NULL);
          _exit (127);
        }
      r = pid > 0 && waitpid (pid, &status, 0) == pid && WIFEXITED (status) &&
          WEXITSTATUS (status) == 0 ? 0 : -1;
    }
  else if (IS ("ptrace-own-child"))
    {
      pid_t pid = fork ();

      if (pid == 0)
        {
          pause ();
          _exit (0);
        }
      r = syscall (SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, pid, 0, 0);
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
    }
  else
    return 2000;
#undef IS
  return r < 0 ? errno : 0;
}

static int
probe (int argc, char **argv)
{
  for (int i = 0; i < argc; i++)
    {
      int pipefd[2];
      int result = 0;
      pid_t pid;

      if (pipe (pipefd) != 0)
        return 1;
      pid = fork ();
      if (pid == 0)
        {
          result = call (argv[i]);
          if (write (pipefd[1], &result, sizeof result) != sizeof result)
            _exit (1);
          _exit (0);
        }
      close (pipefd[1]);
      if (read (pipefd[0], &result, sizeof result) != sizeof result)
        result = -1;
      close (pipefd[0]);
      waitpid (pid, NULL, 0);
      if (result == 0)
        printf ("%s OK\n", argv[i]);
      else if (result == 2000)
        printf ("%s UNKNOWN\n", argv[i]);
      else if (result > 1000)
        printf ("%s NOPTY-%s\n", argv[i], errno_name (result - 1000));
      else if (result < 0)
        printf ("%s CRASHED\n", argv[i]);
      else
        printf ("%s %s\n", argv[i], errno_name (result));
      fflush (stdout);
    }
  return 0;
}

/* connect-flip ROUNDS: with egress rules, pid 1 connects a copy of the
 * command's socket itself when it finds it non-blocking, and a worker
 * does when it would wait. Processes sharing one UNIX socket keep asking
 * for a connect() to a listener whose backlog is full, after setting
 * O_NONBLOCK, while another sets and clears it in a loop: pid 1's look
 * and its call see different flags. Meanwhile a prober connects to
 * 127.0.0.1:9 (refused at once) ROUNDS times: "pid1-answers" when each
 * did within 5 s, "pid1-blocked" when one waited (pid 1 itself in a
 * connect() that waits for the backlog). */
static void
on_flip_alarm (int sig)
{
  (void) sig;
}

static int
connect_flip (int rounds)
{
  struct sockaddr_un ua = { .sun_family = AF_UNIX };
  pid_t kids[6];
  int n_kids = 0, listener, s, fl, blocked = 0;

  snprintf (ua.sun_path, sizeof ua.sun_path, "/tmp/connect-flip-%d.sock", (int) getpid ());
  unlink (ua.sun_path);
  listener = socket (AF_UNIX, SOCK_STREAM, 0);
  if (listener < 0 || bind (listener, (struct sockaddr *) &ua, sizeof ua) != 0 || listen (listener, 0) != 0)
    {
      perror ("connect-flip: listener");
      return 1;
    }
  for (int i = 0; i < 4; i++)
    {
      int c = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

      if (connect (c, (struct sockaddr *) &ua, sizeof ua) != 0 && errno != EAGAIN)
        perror ("connect-flip: fill");
    }
  s = socket (AF_UNIX, SOCK_STREAM, 0);
  fl = fcntl (s, F_GETFL) & ~O_NONBLOCK;
  for (int k = 0; k < 5; k++)
    {
      pid_t pid = fork ();

      if (pid == 0 && k == 0)
        for (;;)
          {
            fcntl (s, F_SETFL, fl | O_NONBLOCK);
            fcntl (s, F_SETFL, fl);
          }
      if (pid == 0)
        {
          /* A call that a worker makes waits for the backlog: a signal
           * ends it (EINTR) and the next one is asked for. */
          struct sigaction sa = { .sa_handler = on_flip_alarm };
          struct itimerval every = { { 0, 10 * 1000 }, { 0, 10 * 1000 } };

          sigaction (SIGALRM, &sa, NULL);
          setitimer (ITIMER_REAL, &every, NULL);
          for (;;)
            {
              fcntl (s, F_SETFL, fl | O_NONBLOCK);
              connect (s, (struct sockaddr *) &ua, sizeof ua);
            }
        }
      if (pid > 0)
        kids[n_kids++] = pid;
    }
  for (int r = 0; r < rounds && !blocked; r++)
    {
      pid_t prober = fork ();
      int waited = 0;

      if (prober == 0)
        {
          struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (9) };
          int c = socket (AF_INET, SOCK_STREAM, 0);

          a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
          connect (c, (struct sockaddr *) &a, sizeof a);
          _exit (0);
        }
      while (prober > 0 && waitpid (prober, NULL, WNOHANG) == 0)
        {
          struct timespec ts = { 0, 10 * 1000 * 1000 };

          if (++waited > 500)
            {
              blocked = 1;
              kill (prober, SIGKILL);
              break;
            }
          nanosleep (&ts, NULL);
        }
    }
  for (int k = 0; k < n_kids; k++)
    kill (kids[k], SIGKILL);
  while (wait (NULL) > 0)
    ;
  unlink (ua.sun_path);
  printf ("%s\n", blocked ? "pid1-blocked" : "pid1-answers");
  return 0;
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (argc == 6 && strcmp (argv[1], "swap") == 0)
    {
      if (chdir (argv[2]) != 0)
        return 1;
      return swap (argv[2], argv[3], argv[4], atof (argv[5]));
    }
  if (argc >= 2 && strcmp (argv[1], "syscall") == 0)
    return probe (argc - 2, argv + 2);
  if (argc == 3 && strcmp (argv[1], "connect-flip") == 0)
    return connect_flip (atoi (argv[2]));
  fprintf (stderr, "usage: %s swap DIR NAME-A NAME-B SECONDS | syscall NAME... | connect-flip ROUNDS\n",
           argv[0]);
  return 2;
}
