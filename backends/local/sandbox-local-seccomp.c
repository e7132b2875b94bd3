/* libsandbox - the seccomp filter of every local sandbox
 *
 * Built with libseccomp and handed to bwrap (--seccomp FD), which loads it
 * into the sandbox's pid 1 just before it runs: every process of the
 * sandbox inherits it and none can remove it. Modelled on flatpak's
 * (flatpak-run.c, setup_seccomp) and Docker's default profile; the table
 * below is the one docs/security.md documents, call by call, with the
 * errno each denied call returns.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#ifndef SANDBOX_SECCOMP_GENERATOR
#include "sandbox-local-private.h"
/* The program as built at build time (gen-seccomp-program, the same rules
 * below), and the libseccomp, architecture and kernel API it was built
 * with: used when this process has the same. */
#include "backends/local/sandbox-local-seccomp-program.h"
#else
#include <stdio.h>
#endif

#ifndef F_SETLEASE
#define F_SETLEASE 1024
#endif
/* F_SETDELEG (Linux 6.19), refused before any kernel has it. */
#define SBX_F_SETDELEG (1024 + 16)

typedef struct
{
  int         nr;
  int         errnum;
} Denied;

/* Denied whatever their arguments. */
static const Denied denied[] = {
  /* Keyrings are not namespaced: the host's keys would be in reach. */
  { SCMP_SYS (keyctl), EPERM },
  { SCMP_SYS (add_key), EPERM },
  { SCMP_SYS (request_key), EPERM },
  /* Kernel attack surface no command needs. */
  { SCMP_SYS (bpf), EPERM },
  { SCMP_SYS (perf_event_open), EPERM },
  { SCMP_SYS (userfaultfd), EPERM },
  { SCMP_SYS (open_by_handle_at), EPERM },
  { SCMP_SYS (kexec_load), EPERM },
  { SCMP_SYS (kexec_file_load), EPERM },
  { SCMP_SYS (init_module), EPERM },
  { SCMP_SYS (finit_module), EPERM },
  { SCMP_SYS (delete_module), EPERM },
  { SCMP_SYS (reboot), EPERM },
  { SCMP_SYS (swapon), EPERM },
  { SCMP_SYS (swapoff), EPERM },
  { SCMP_SYS (acct), EPERM },
  { SCMP_SYS (syslog), EPERM },
  { SCMP_SYS (quotactl), EPERM },
  /* The sandbox's mounts and namespaces are fixed once it runs. (mount
   * has a rule of its own below: pid 1 makes the tree private first.) */
  { SCMP_SYS (umount2), EPERM },
  { SCMP_SYS (pivot_root), EPERM },
  { SCMP_SYS (setns), EPERM },
  /* New mount API and io_uring: ENOSYS, so that programs fall back. */
  { SCMP_SYS (fsopen), ENOSYS },
  { SCMP_SYS (fsconfig), ENOSYS },
  { SCMP_SYS (fsmount), ENOSYS },
  { SCMP_SYS (fspick), ENOSYS },
  { SCMP_SYS (open_tree), ENOSYS },
  { SCMP_SYS (move_mount), ENOSYS },
  { SCMP_SYS (mount_setattr), ENOSYS },
  { SCMP_SYS (io_uring_setup), ENOSYS },
  { SCMP_SYS (io_uring_enter), ENOSYS },
  { SCMP_SYS (io_uring_register), ENOSYS },
  /* Its flags are behind a pointer, out of a filter's reach: ENOSYS makes
   * the C library fall back to clone, whose flags are checked below. */
  { SCMP_SYS (clone3), ENOSYS },
  /* Its mode is behind a pointer too (see set-id bits below); the C
   * library and programs fall back to openat. */
  { SCMP_SYS (openat2), ENOSYS },
};

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452   /* Linux 6.6; the same number on every architecture */
#endif

/* The calls that set a file's mode, and which argument holds it. A file
 * the sandbox makes with the set-user-ID or set-group-ID bit is one on the
 * host too, owned by the caller (the sandbox's users map to the caller's
 * uid): in a spec mount (the Metaflow datastore, say) or the workdir, a
 * set-user-ID copy of a shell would give any host user who can reach it
 * the caller's identity, root's when the caller is root. nosuid on the
 * sandbox's side would not help: the host sees the file through its own
 * mount. So no call may set either bit (EPERM), as flatpak does. */
static const struct
{
  int nr;
  unsigned int arg;
} mode_calls[] = {
  { SCMP_SYS (chmod), 1 },
  { SCMP_SYS (fchmod), 1 },
  { SCMP_SYS (fchmodat), 2 },
  { __NR_fchmodat2, 2 },
  { SCMP_SYS (open), 2 },
  { SCMP_SYS (openat), 3 },
  { SCMP_SYS (creat), 1 },
  { SCMP_SYS (mknod), 1 },
  { SCMP_SYS (mknodat), 2 },
};

/* The socket families a sandbox may use; socket() and socketpair() with
 * any other fail with EAFNOSUPPORT. */
static const int allowed_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };

/* The protocols a sandbox may ask for in those families, sorted; socket()
 * and socketpair() with any other fail with EPERM. Asking for a protocol
 * the kernel has not registered makes it load the module named after it
 * ("net-pf-2-proto-132" is SCTP), by running the host's modprobe as root,
 * for any user: SCTP, DCCP, L2TP, SMC, netlink's crypto, RDMA, iSCSI and
 * generic netlink families (gtp, wireguard, nl80211, ... loaded by name
 * through a message no filter reads) are rarely used code with a history
 * of privilege escalations. What remains is built into every kernel. */
static const scmp_datum_t inet_protocols[] = {
  0, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, IPPROTO_UDPLITE,
  IPPROTO_RAW, 262 /* IPPROTO_MPTCP, built in when there */
};
/* Not NETLINK_USERSOCK (2): any user may send to (and join the groups
 * of) another process's socket of that protocol in the same network
 * namespace, which with `network` is the host's: a host service's
 * USERSOCK socket, which no Landlock scope covers, took a sandbox's
 * messages (session sec27). Nor NETLINK_CONNECTOR (11): with `network`
 * its messages reach the host kernel's connector callbacks (process
 * events, device-mapper's userspace log, 1-wire, uvesafb...), each of
 * which has to check the sender's privileges itself; nothing a command
 * runs needs it without CAP_NET_ADMIN, which it does not have. */
static const scmp_datum_t netlink_protocols[] = {
  0 /* ROUTE */, 4 /* SOCK_DIAG */, 6 /* XFRM */, 7 /* SELINUX */,
  9 /* AUDIT */, 10 /* FIB_LOOKUP */, 15 /* KOBJECT_UEVENT */
};

/* Denies call NR (socket or socketpair) with family FAMILY and a protocol
 * (the third argument) outside ALLOWED. A rule compares an argument once,
 * so each gap between two allowed values is cut into aligned blocks, each
 * one masked comparison of all 64 bits; above the last, one GE (which also
 * catches values with high bits set: the kernel reads an int). */
static int
deny_protocols_but (scmp_filter_ctx     ctx,
                    int                 nr,
                    int                 family,
                    const scmp_datum_t *allowed,
                    guint               n_allowed)
{
  scmp_datum_t next = 0;   /* the lowest value not yet decided */
  int r = 0;

  for (guint i = 0; r == 0 && i <= n_allowed; i++)
    {
      scmp_datum_t end = i < n_allowed ? allowed[i] : next;   /* gap: [next, end) */

      while (r == 0 && next < end)
        {
          scmp_datum_t size = 1;

          /* The largest aligned block starting at NEXT that fits the gap. */
          while ((next & (size * 2 - 1)) == 0 && next + size * 2 <= end)
            size *= 2;
          r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 2,
                                SCMP_A0 (SCMP_CMP_EQ, (scmp_datum_t) family),
                                SCMP_A2 (SCMP_CMP_MASKED_EQ, ~(size - 1), next));
          next += size;
        }
      if (i < n_allowed)
        next = allowed[i] + 1;
    }
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 2,
                          SCMP_A0 (SCMP_CMP_EQ, (scmp_datum_t) family),
                          SCMP_A2 (SCMP_CMP_GE, next));
  return r;
}

static int
add_rules (scmp_filter_ctx ctx)
{
  int r = 0;

  /* mount: refused, but for the one call pid 1 makes first, with the
   * capability bwrap leaves it for that (sandbox-exec-helper.c, "The
   * sandbox's mounts receive nothing from the host"): making every mount
   * of the tree private. No other process has a capability, so the
   * kernel would refuse that call to them (EPERM) too; and pid 1 adds a
   * filter of its own that refuses every mount() before anything else of
   * the sandbox runs. */
  r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (mount), 1,
                        SCMP_A3 (SCMP_CMP_NE, (scmp_datum_t) (MS_REC | MS_PRIVATE)));

  for (guint i = 0; r == 0 && i < G_N_ELEMENTS (denied); i++)
    {
      r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (denied[i].errnum), denied[i].nr, 0);
      /* A call this architecture does not have needs no rule. */
      if (r == -EFAULT || r == -EDOM)
        r = 0;
    }

  /* No set-user-ID or set-group-ID file (mode_calls above). */
  for (guint i = 0; r == 0 && i < G_N_ELEMENTS (mode_calls); i++)
    {
      static const scmp_datum_t bits[] = { S_ISUID, S_ISGID };

      for (guint b = 0; r == 0 && b < G_N_ELEMENTS (bits); b++)
        {
          struct scmp_arg_cmp cmp = { mode_calls[i].arg, SCMP_CMP_MASKED_EQ, bits[b], bits[b] };

          r = seccomp_rule_add_array (ctx, SCMP_ACT_ERRNO (EPERM), mode_calls[i].nr, 1, &cmp);
          if (r == -EFAULT || r == -EDOM)
            r = 0;
        }
    }

  /* Faking input to a terminal (CVE-2017-5226) or driving the console. */
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                          SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, (scmp_datum_t) TIOCSTI));
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                          SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, (scmp_datum_t) TIOCLINUX));
  /* Changing a terminal's line discipline: the kernel loads the module of
   * any discipline asked for (n_gsm, n_hdlc, ...: rarely used code with a
   * history of privilege escalations) unless dev.tty.ldisc_autoload is 0.
   * A command needs none but the default (the value is behind a pointer,
   * which a filter cannot read: every change is refused). */
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                          SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, (scmp_datum_t) TIOCSETD));

  /* File leases (and their NFS-style twin, delegations, Linux 6.19) are
   * taken on an inode, not on a mount: a lease on a file of the host's
   * root, which the sandbox sees read-only, made every host process that
   * opened that file for writing (a read lease) or at all (a write lease,
   * which needs only that nobody else has the file open) wait for the
   * lease-break time, 45 s, again and again. The owner of the file may
   * take one, and the sandbox user is the caller: as root, any root-owned
   * file (/etc/passwd). Only file servers (Samba, NFS) use them. */
  {
    /* fcntl64: 32-bit architectures' second entry point (none on 64-bit
     * ones: skipped). */
    static const int fcntl_calls[] = { SCMP_SYS (fcntl), SCMP_SYS (fcntl64) };
    static const scmp_datum_t lease_cmds[] = { F_SETLEASE, SBX_F_SETDELEG };

    for (guint i = 0; r == 0 && i < G_N_ELEMENTS (fcntl_calls); i++)
      for (guint c = 0; r == 0 && c < G_N_ELEMENTS (lease_cmds); c++)
        {
          r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), fcntl_calls[i], 1,
                                SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, lease_cmds[c]));
          if (r == -EFAULT || r == -EDOM)
            r = 0;
        }
  }

  /* The sandbox's pid 1 holds its server: nothing traces it or reads its
   * memory (it is not dumpable either). Other processes stay traceable, for
   * debuggers run inside. The kernel reads a pid as 32 bits: so do these. */
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ptrace), 1,
                          SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, 1));
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (process_vm_readv), 1,
                          SCMP_A0 (SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, 1));
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (process_vm_writev), 1,
                          SCMP_A0 (SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, 1));

  /* No process sets another's resource limits: a command runs as the
   * same user as pid 1 and its helpers, which is all prlimit asks (no
   * Landlock scope covers it), and a hard RLIMIT_CPU of 1 s killed pid 1,
   * RLIMIT_NOFILE of 4 left it unable to serve (the sandbox ended). Its
   * own limits (pid 0: setrlimit, ulimit) and reading any process's stay
   * allowed. A non-zero pid in the upper 32 bits counts as another. */
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (prlimit64), 2,
                          SCMP_A0 (SCMP_CMP_NE, 0),
                          SCMP_A2 (SCMP_CMP_NE, 0));

  /* No new user namespace: the kernel's largest attack surface for an
   * unprivileged process, and a way around the rules above. But for
   * unshare (CLONE_NEWUSER) alone, which pid 1 makes first (the sandbox
   * user's namespace, sandbox-exec-helper.c, "The sandbox's mounts
   * receive nothing from the host") and then refuses with a filter of
   * its own, before anything else of the sandbox runs. */
  /* A rule compares an argument once: refused are CLONE_NEWUSER with any
   * other of the 32 low bits, one rule per bit, and any flag above them
   * (none is valid). */
  for (guint bit = 0; r == 0 && bit < 32; bit++)
    if ((1u << bit) != CLONE_NEWUSER)
      r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (unshare), 1,
                            SCMP_A0 (SCMP_CMP_MASKED_EQ, CLONE_NEWUSER | (1u << bit),
                                     CLONE_NEWUSER | (1u << bit)));
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (unshare), 1,
                          SCMP_A0 (SCMP_CMP_GE, (scmp_datum_t) 1 << 32));
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (clone), 1,
#if defined(__s390__) || defined(__s390x__)
                          SCMP_A1 (SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
#else
                          SCMP_A0 (SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
#endif

  /* Socket families: those between the allowed ones one by one, then every
   * one above the last (which also catches values with high bits set). */
  for (guint call = 0; r == 0 && call < 2; call++)
    {
      int nr = call == 0 ? SCMP_SYS (socket) : SCMP_SYS (socketpair);
      int last = -1;

      for (guint i = 0; r == 0 && i < G_N_ELEMENTS (allowed_families); i++)
        {
          for (int family = last + 1; r == 0 && family < allowed_families[i]; family++)
            r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), nr, 1,
                                  SCMP_A0 (SCMP_CMP_EQ, (scmp_datum_t) family));
          last = allowed_families[i];
        }
      if (r == 0)
        r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), nr, 1,
                              SCMP_A0 (SCMP_CMP_GE, (scmp_datum_t) (last + 1)));
      /* A UNIX datagram socket sends to a path without connect(), which is
       * where pid 1 keeps the host's sockets out of reach
       * (sandbox-exec-helper.c): none. Stream and seqpacket sockets ignore
       * a send's address. Every other type is refused, not SOCK_DGRAM
       * alone: the kernel makes SOCK_RAW a datagram socket too
       * (unix_create), and with SOCK_DGRAM alone refused, socket(AF_UNIX,
       * SOCK_RAW) then sendto() reached a host service's datagram socket
       * on the read-only root (session sec27). The kernel looks at the
       * low four bits (SOCK_TYPE_MASK); the others are flags. */
      for (scmp_datum_t type = 0; r == 0 && type <= 0xF; type++)
        if (type != SOCK_STREAM && type != SOCK_SEQPACKET)
          r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EACCES), nr, 2,
                                SCMP_A0 (SCMP_CMP_EQ, (scmp_datum_t) AF_UNIX),
                                SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xF, type));
      /* No protocol the kernel would load a module for (above). */
      if (r == 0)
        r = deny_protocols_but (ctx, nr, AF_INET, inet_protocols, G_N_ELEMENTS (inet_protocols));
      if (r == 0)
        r = deny_protocols_but (ctx, nr, AF_INET6, inet_protocols, G_N_ELEMENTS (inet_protocols));
      if (r == 0)
        r = deny_protocols_but (ctx, nr, AF_NETLINK, netlink_protocols, G_N_ELEMENTS (netlink_protocols));
    }
  return r;
}

/* The whole filter in CTX: its rules and what becomes of a call of
 * another architecture. */
static int
setup_filter (scmp_filter_ctx ctx)
{
  /* A system call of another architecture (a 32-bit one on a 64-bit
   * machine, say) would slip past rules written for this one: it kills the
   * process instead. */
  int r = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);

  /* libseccomp offers that action only once it has seen the kernel's
   * seccomp() (Linux 4.14); where it could not look (valgrind does not
   * know the call), killing the thread is the next best. */
  if (r != 0)
    r = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
  if (r == 0)
    r = add_rules (ctx);
  return r;
}

#ifndef SANDBOX_SECCOMP_GENERATOR

/* Whether the program built at build time is the one libseccomp would
 * build here: the same libseccomp, architecture and kernel API level (the
 * actions it may use). Under valgrind, say, the API level differs, and
 * the program is built at run time as before. */
static gboolean
prebuilt_usable (void)
{
#if SBX_SECCOMP_PREBUILT_LEN > 0
  const struct scmp_version *v = seccomp_version ();

  return v != NULL && v->major == SBX_SECCOMP_PREBUILT_MAJOR && v->minor == SBX_SECCOMP_PREBUILT_MINOR &&
         v->micro == SBX_SECCOMP_PREBUILT_MICRO && seccomp_arch_native () == SBX_SECCOMP_PREBUILT_ARCH &&
         seccomp_api_get () == SBX_SECCOMP_PREBUILT_API;
#else
  return FALSE;
#endif
}

/* The filter as a BPF program, once per process: the one built at build
 * time when it fits this machine (libseccomp's compile is ~0.4 ms of CPU,
 * at every `sandboxctl run`), else built now. */
static GBytes *
build_program (GError **error)
{
  static GBytes *program;
  static GMutex lock;
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&lock);
  scmp_filter_ctx ctx;
  g_autoptr(GByteArray) data = g_byte_array_new ();
  int fd = -1, r;

  if (program != NULL)
    return g_bytes_ref (program);
  if (prebuilt_usable ())
    {
      program = g_bytes_new_static (sbx_seccomp_prebuilt, SBX_SECCOMP_PREBUILT_LEN);
      return g_bytes_ref (program);
    }

  ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (ctx == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot build the sandbox's seccomp filter: out of memory."));
      return NULL;
    }
  r = setup_filter (ctx);
  if (r == 0 && (fd = memfd_create ("libsandbox-seccomp", MFD_CLOEXEC)) < 0)
    r = -errno;
  if (r == 0)
    r = seccomp_export_bpf (ctx, fd);
  if (r == 0 && lseek (fd, 0, SEEK_SET) != 0)
    r = -errno;
  for (;;)
    {
      guint8 buf[4096];
      ssize_t n;

      if (r != 0 || (n = read (fd, buf, sizeof buf)) == 0)
        break;
      if (n < 0)
        r = -errno;
      else
        g_byte_array_append (data, buf, (guint) n);
    }
  if (fd >= 0)
    close (fd);
  seccomp_release (ctx);
  if (r != 0 || data->len == 0)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot build the sandbox's seccomp filter: %s. Check that "
                     "libseccomp is installed and up to date."), g_strerror (r ? -r : EINVAL));
      return NULL;
    }
  program = g_byte_array_free_to_bytes (g_steal_pointer (&data));
  return g_bytes_ref (program);
}

/**
 * _local_seccomp_write:
 * @fd: where bwrap reads the program: our end of the socket pair whose
 *   other end is its --seccomp descriptor (the caller closes it; a socket,
 *   not a pipe, so that a bwrap that died early is an error, not SIGPIPE)
 * @error: return location for a #GError
 *
 * Writes the sandbox's seccomp program to @fd. bwrap reads it only once
 * the sandbox's mounts are made, so that the program may be built (once
 * per process) while bwrap is already at work. On error, bwrap must be
 * killed before @fd is closed: it must never see an end-of-file without
 * the whole program.
 *
 * Returns: whether all of it was written
 */
gboolean
_local_seccomp_write (int      fd,
                      GError **error)
{
  g_autoptr(GBytes) program = build_program (error);
  const char *data;
  gsize len, done = 0;

  if (program == NULL)
    return FALSE;
  data = g_bytes_get_data (program, &len);
  while (done < len)
    {
      ssize_t n = send (fd, data + done, len - done, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int errsv = n < 0 ? errno : EIO;

          /* G_IO_ERROR_BROKEN_PIPE: bubblewrap ended before it read it. */
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Cannot hand the seccomp filter to bubblewrap: %s"), g_strerror (errsv));
          return FALSE;
        }
      done += (gsize) n;
    }
  return TRUE;
}

#else /* SANDBOX_SECCOMP_GENERATOR */

/* gen-seccomp-program [--empty]: prints the header with the program that
 * build_program () would build on this machine (none with --empty, when
 * cross-compiling, or when it cannot be built here). */
int
main (int    argc,
      char **argv)
{
  scmp_filter_ctx ctx = NULL;
  GByteArray *data = g_byte_array_new ();
  int fd = -1;

  if (argc < 2 || strcmp (argv[1], "--empty") != 0)
    ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (ctx != NULL && setup_filter (ctx) == 0 &&
      (fd = memfd_create ("gen-seccomp-program", MFD_CLOEXEC)) >= 0 &&
      seccomp_export_bpf (ctx, fd) == 0 && lseek (fd, 0, SEEK_SET) == 0)
    for (;;)
      {
        guint8 buf[4096];
        ssize_t n = read (fd, buf, sizeof buf);

        if (n <= 0)
          {
            if (n < 0)
              g_byte_array_set_size (data, 0);
            break;
          }
        g_byte_array_append (data, buf, (guint) n);
      }
  if (data->len % 8 != 0)
    g_byte_array_set_size (data, 0);

  printf ("/* Generated by gen-seccomp-program from sandbox-local-seccomp.c: the local\n"
          " * sandbox's seccomp program, built at build time. Do not edit. */\n");
  if (data->len > 0)
    {
      const struct scmp_version *v = seccomp_version ();

      printf ("#define SBX_SECCOMP_PREBUILT_MAJOR %uu\n", v->major);
      printf ("#define SBX_SECCOMP_PREBUILT_MINOR %uu\n", v->minor);
      printf ("#define SBX_SECCOMP_PREBUILT_MICRO %uu\n", v->micro);
      printf ("#define SBX_SECCOMP_PREBUILT_ARCH %uu\n", seccomp_arch_native ());
      printf ("#define SBX_SECCOMP_PREBUILT_API %uu\n", seccomp_api_get ());
    }
  printf ("#define SBX_SECCOMP_PREBUILT_LEN %u\n", data->len);
  printf ("static const guint8 sbx_seccomp_prebuilt[%u] = {", MAX (data->len, 1));
  for (guint i = 0; i < MAX (data->len, 1); i++)
    printf ("%s%u,", i % 16 == 0 ? "\n  " : " ", data->len > 0 ? data->data[i] : 0);
  printf ("\n};\n");
  if (fd >= 0)
    close (fd);
  if (ctx != NULL)
    seccomp_release (ctx);
  g_byte_array_unref (data);
  return fflush (stdout) == 0 ? 0 : 1;
}

#endif /* SANDBOX_SECCOMP_GENERATOR */
