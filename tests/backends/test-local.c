/* libsandbox - what only the local backend promises: isolation that would
 * show if it broke, resource limits, and its errors.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gio/gunixoutputstream.h>
#include <gio/gunixsocketaddress.h>

#include <libsandbox/sandbox.h>

#include "../test-util.h"

static SandboxInstance *
create (SandboxSpec *spec)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
  g_autoptr(SandboxSpec) empty = NULL;
  SandboxInstance *instance;

  g_assert_no_error (error);
  if (spec == NULL)
    spec = empty = sandbox_spec_new ();
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  return instance;
}

static void
destroy (SandboxInstance *instance)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_object_unref (instance);
}

/* Runs a shell script; returns its stdout, and its exit status in @status. */
static char *
sh (SandboxInstance *instance,
    const char      *script,
    int             *status)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = sandbox_instance_exec (instance, cmd, NULL, &error);
  GBytes *out;

  g_assert_no_error (error);
  *status = sandbox_exec_result_get_exit_code (result);
  out = sandbox_exec_result_get_stdout (result);
  return g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
}

/* ---- network ---- */

static gboolean
accept_one (GSocketService    *service,
            GSocketConnection *connection,
            GObject           *source,
            gpointer           user_data)
{
  (*(guint *) user_data)++;
  return TRUE;
}

static guint
listen_on_loopback (GSocketService *service)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) error = NULL;

  g_socket_listener_add_address (G_SOCKET_LISTENER (service), address, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &effective, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
}

static void
exec_done (GObject      *source,
           GAsyncResult *res,
           gpointer      user_data)
{
  SandboxExecResult **result = user_data;
  g_autoptr(GError) error = NULL;

  *result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &error);
  g_assert_no_error (error);
}

static int
connect_from_sandbox (gboolean network,
                      guint   *accepted)
{
  g_autoptr(GSocketService) service = g_socket_service_new ();
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxCommand) cmd = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *script = NULL;
  SandboxInstance *instance;
  int status;
  guint port;

  port = listen_on_loopback (service);
  g_signal_connect (service, "incoming", G_CALLBACK (accept_one), accepted);
  g_socket_service_start (service);

  sandbox_spec_set_network (spec, network);
  instance = create (spec);
  script = g_strdup_printf ("exec 3<>/dev/tcp/127.0.0.1/%u && echo connected", port);
  {
    const char *argv[] = { "bash", "-c", script, NULL };
    cmd = sandbox_command_new (argv);
  }
  /* Asynchronously on this context, so that the service accepts meanwhile. */
  sandbox_instance_exec_async (instance, cmd, NULL, exec_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  status = sandbox_exec_result_get_exit_code (result);
  g_socket_service_stop (service);
  destroy (instance);
  return status;
}

static void
test_network_off (void)
{
  guint accepted = 0;
  int status = connect_from_sandbox (FALSE, &accepted);

  /* The host's loopback is not the sandbox's: nothing to connect to. */
  g_assert_cmpint (status, !=, 0);
  g_assert_cmpuint (accepted, ==, 0);
}

static void
test_network_on (void)
{
  guint accepted = 0;
  int status = connect_from_sandbox (TRUE, &accepted);

  /* The same command reaches the host when the spec asks for the network,
   * which proves that the test above failed because of isolation. */
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpuint (accepted, ==, 1);
}

static void
test_network_interfaces (void)
{
  SandboxInstance *instance = create (NULL);
  int status;
  g_autofree char *ifaces = sh (instance, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", &status);

  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (ifaces, ==, "lo\n");
  destroy (instance);
}

/* ---- egress rules (sandbox_spec_set_egress_rules) ---- */

/* A listening or datagram socket on a loopback address (the sandbox with
 * the network shares the host's); its port in @port. */
static GSocket *
socket_on (const char    *host,
           GSocketType    type,
           guint         *port)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (host);
  g_autoptr(GSocketAddress) bind_to = g_inet_socket_address_new (address, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type, G_SOCKET_PROTOCOL_DEFAULT, &error);

  g_assert_no_error (error);
  g_socket_bind (socket, bind_to, FALSE, &error);
  g_assert_no_error (error);
  if (type == G_SOCKET_TYPE_STREAM)
    g_socket_listen (socket, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (socket, FALSE);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  return socket;
}

/* How many connections (stream) or datagrams reached @socket so far. */
static guint
arrivals (GSocket *socket)
{
  guint n = 0;

  for (;;)
    {
      g_autoptr(GSocket) conn = NULL;
      char buf[64];

      if (g_socket_get_socket_type (socket) == G_SOCKET_TYPE_STREAM)
        {
          conn = g_socket_accept (socket, NULL, NULL);
          if (conn == NULL)
            return n;
        }
      else if (g_socket_receive (socket, buf, sizeof buf, NULL, NULL) < 0)
        return n;
      n++;
    }
}

/* Whether a TCP connection from the sandbox to HOST:PORT is made. */
static gboolean
tcp_reaches (SandboxInstance *instance,
             const char      *host,
             guint            port)
{
  g_autofree char *script = g_strdup_printf ("bash -c 'exec 3<>/dev/tcp/%s/%u' && echo connected", host, port);
  int status;
  g_autofree char *out = sh (instance, script, &status);

  g_assert_true ((status == 0) == (g_strcmp0 (out, "connected\n") == 0));
  return status == 0;
}

static void
test_egress_rules (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GSocket) first = NULL, second = NULL, datagrams = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *send = NULL, *out = NULL;
  const char *allow[] = { "127.0.0.1", NULL };
  const char *deny_all[] = { "0.0.0.0/0", NULL };
  const char *deny_second[] = { "127.0.0.2/32", NULL };
  SandboxInstance *instance;
  guint port1, port2, udp_port;
  int status;

  first = socket_on ("127.0.0.1", G_SOCKET_TYPE_STREAM, &port1);
  second = socket_on ("127.0.0.2", G_SOCKET_TYPE_STREAM, &port2);
  datagrams = socket_on ("127.0.0.2", G_SOCKET_TYPE_DATAGRAM, &udp_port);

  /* Everything denied but one address: that one is reached, the other
   * never sees a connection. */
  sandbox_spec_set_network (spec, TRUE);
  sandbox_spec_set_egress_rules (spec, allow, deny_all);
  g_assert_cmpstr (sandbox_spec_get_egress_allow (spec)[0], ==, "127.0.0.1");
  instance = create (spec);
  g_assert_true (tcp_reaches (instance, "127.0.0.1", port1));
  g_assert_false (tcp_reaches (instance, "127.0.0.2", port2));
  /* An IPv4-mapped IPv6 address is the same destination: allowed for
   * 127.0.0.1, refused for 127.0.0.2. */
  send = g_strdup_printf ("python3 -c 'import socket; s = socket.socket(socket.AF_INET6); "
                          "s.connect((\"::ffff:127.0.0.1\", %u))' 2>&1", port1);
  g_free (sh (instance, send, &status));
  g_assert_cmpint (status, ==, 0);
  g_free (send);
  send = g_strdup_printf ("python3 -c 'import socket; s = socket.socket(socket.AF_INET6); "
                          "s.connect((\"::ffff:127.0.0.2\", %u))' 2>&1", port2);
  g_free (sh (instance, send, &status));
  g_assert_cmpint (status, !=, 0);
  g_assert_cmpuint (arrivals (first), ==, 2);
  g_assert_cmpuint (arrivals (second), ==, 0);

  /* Replaced while it runs: a deny list of one address. Datagrams sent to
   * it without connect() are refused too. */
  sandbox_instance_set_egress_rules (instance, NULL, deny_second, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (tcp_reaches (instance, "127.0.0.1", port1));
  g_assert_false (tcp_reaches (instance, "127.0.0.2", port2));
  g_assert_cmpuint (arrivals (first), ==, 1);
  /* The unspecified address reaches this machine's loopback (allowed here,
   * and the server sees it), so a rule on 127.0.0.1 covers it. */
  g_assert_true (tcp_reaches (instance, "0.0.0.0", port1));
  g_assert_cmpuint (arrivals (first), ==, 1);
  sandbox_instance_set_egress_rules (instance, NULL, allow, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (tcp_reaches (instance, "0.0.0.0", port1));
  g_assert_cmpuint (arrivals (first), ==, 0);
  sandbox_instance_set_egress_rules (instance, NULL, deny_second, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&send, g_free);
  send = g_strdup_printf ("python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                          "s.sendto(b\"x\", (\"127.0.0.2\", %u))' 2>&1", udp_port);
  out = sh (instance, send, &status);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (out, "Permission denied"));
  g_assert_cmpuint (arrivals (datagrams), ==, 0);

  /* No rules: every destination again. */
  sandbox_instance_set_egress_rules (instance, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (tcp_reaches (instance, "127.0.0.2", port2));
  g_free (sh (instance, send, &status));
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpuint (arrivals (datagrams), ==, 1);
  destroy (instance);
}

static void
test_egress_rules_refused (void)
{
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GError) error = NULL;
  const char *name[] = { "example.com", NULL };
  const char *ok[] = { "10.0.0.0/8", NULL };
  SandboxInstance *instance;

  g_assert_true (sandbox_backend_get_capabilities (backend) & SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES);
  /* Not an address: the message says what to give instead. */
  sandbox_spec_set_network (spec, TRUE);
  sandbox_spec_set_egress_rules (spec, name, NULL);
  g_assert_null (sandbox_backend_create (backend, spec, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "resolve a name"));
  g_clear_error (&error);
  /* Rules without the network. */
  sandbox_spec_set_network (spec, FALSE);
  sandbox_spec_set_egress_rules (spec, NULL, ok);
  g_assert_null (sandbox_backend_create (backend, spec, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "network on"));
  g_clear_error (&error);
  /* Nor later, on a sandbox without it. */
  instance = create (NULL);
  g_assert_false (sandbox_instance_set_egress_rules (instance, NULL, ok, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  destroy (instance);
}

/* ---- file system ---- */

static void
test_read_only (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ro_dir = g_dir_make_tmp ("local-ro-XXXXXX", &error);
  g_autofree char *rw_dir = g_dir_make_tmp ("local-rw-XXXXXX", &error);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *script = NULL;
  g_autofree char *out = NULL;
  g_autofree char *written = NULL;
  g_autofree char *from_sandbox = NULL;
  SandboxInstance *instance;
  int status;

  g_assert_no_error (error);
  sandbox_spec_add_mount (spec, ro_dir, "/data/ro", TRUE);
  sandbox_spec_add_mount (spec, rw_dir, "/data/rw", FALSE);
  instance = create (spec);

  script = g_strdup ("for p in /usr /etc /root /var /newdir /data/ro; do "
                     "  touch \"$p/libsandbox-probe\" 2>/dev/null && echo \"WROTE $p\"; "
                     "done; "
                     "for p in /workspace /tmp /data/rw; do "
                     "  touch \"$p/libsandbox-probe\" 2>/dev/null || echo \"CANNOT $p\"; "
                     "done; echo done");
  out = sh (instance, script, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "done\n");

  /* The read-write mount is the host directory itself. */
  written = g_build_filename (rw_dir, "libsandbox-probe", NULL);
  g_assert_true (g_file_test (written, G_FILE_TEST_EXISTS));
  from_sandbox = g_build_filename (ro_dir, "libsandbox-probe", NULL);
  g_assert_false (g_file_test (from_sandbox, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test ("/usr/libsandbox-probe", G_FILE_TEST_EXISTS));

  destroy (instance);
  g_unlink (written);
  g_rmdir (rw_dir);
  g_rmdir (ro_dir);
}

static void
test_private_tmp (void)
{
  SandboxInstance *a = create (NULL);
  SandboxInstance *b = create (NULL);
  g_autofree char *name = g_strdup_printf ("/tmp/libsandbox-private-%u", g_random_int ());
  g_autofree char *write = g_strdup_printf ("echo secret > %s", name);
  g_autofree char *read = g_strdup_printf ("cat %s 2>/dev/null || echo absent", name);
  g_autofree char *o1 = NULL;
  g_autofree char *o2 = NULL;
  g_autofree char *o3 = NULL;
  int status;

  o1 = sh (a, write, &status);
  g_assert_cmpint (status, ==, 0);
  o2 = sh (a, read, &status);
  g_assert_cmpstr (o2, ==, "secret\n");   /* kept within the instance */
  o3 = sh (b, read, &status);
  g_assert_cmpstr (o3, ==, "absent\n");   /* not seen by another one */
  g_assert_false (g_file_test (name, G_FILE_TEST_EXISTS));  /* nor on the host */
  destroy (a);
  destroy (b);
}

/* ---- processes, identity, environment ---- */

static void
test_pid_namespace (void)
{
  SandboxInstance *instance = create (NULL);
  g_autofree char *script = g_strdup_printf ("test -e /proc/%d && echo visible; "
                                             "ls /proc | grep -c '^[0-9]*$'", (int) getpid ());
  g_autofree char *out = NULL;
  int status;

  out = sh (instance, script, &status);
  /* This test process is invisible, and only a handful of processes exist. */
  g_assert_null (strstr (out, "visible"));
  g_assert_cmpint (atoi (out), <=, 5);
  destroy (instance);
}

static void
test_capabilities (void)
{
  SandboxInstance *instance = create (NULL);
  int status;
  g_autofree char *caps = sh (instance, "grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status | awk '{print $2}' | sort -u", &status);
  g_autofree char *host = sh (instance, "hostname", &status);
  g_autofree char *expected = g_strdup_printf ("%s\n", sandbox_instance_get_id (instance));

  g_assert_cmpstr (caps, ==, "0000000000000000\n");
  g_assert_cmpstr (host, ==, expected);   /* its own uts namespace */
  destroy (instance);
}

static void
test_environment (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  SandboxInstance *instance;
  g_autofree char *out = NULL;
  int status;

  g_setenv ("LIBSANDBOX_HOST_SECRET", "do-not-leak", TRUE);
  sandbox_spec_set_env (spec, "FROM_SPEC", "yes");
  instance = create (spec);
  out = sh (instance, "env | sort", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_null (strstr (out, "LIBSANDBOX_HOST_SECRET"));
  g_assert_null (strstr (out, "do-not-leak"));
  g_assert_nonnull (strstr (out, "FROM_SPEC=yes\n"));
  g_assert_nonnull (strstr (out, "HOME=/workspace\n"));
  g_assert_nonnull (strstr (out, "PATH="));
  g_unsetenv ("LIBSANDBOX_HOST_SECRET");
  destroy (instance);
}

static void
test_timeout_kills_tree (void)
{
  SandboxInstance *instance = create (NULL);
  g_autoptr(SandboxCommand) cmd =
    sandbox_command_new_shell ("sleep 3131 & (sleep 3132 &) ; sleep 3133");
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = NULL;

  sandbox_command_set_timeout_ms (cmd, 500);
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_exec_result_get_timed_out (result));
  g_assert_cmpint (sandbox_exec_result_get_term_signal (result), ==, 9);
  /* Children, grandchildren and daemonised ones: all gone. */
  for (int i = 0; i < 50 && test_host_has_process ("sleep 313"); i++)
    g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (test_host_has_process ("sleep 3131"));
  g_assert_false (test_host_has_process ("sleep 3132"));
  g_assert_false (test_host_has_process ("sleep 3133"));
  destroy (instance);
}

typedef struct { gboolean done; GError *error; } ExecOutcome;

static void
exec_outcome (GObject      *source,
              GAsyncResult *res,
              gpointer      user_data)
{
  ExecOutcome *outcome = user_data;
  g_autoptr(SandboxExecResult) result =
    sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &outcome->error);

  outcome->done = TRUE;
}

static void
test_destroy_kills (void)
{
  SandboxInstance *instance = create (NULL);
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("sleep 3141");
  g_autoptr(SandboxBackend) other = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxInstance) found = NULL;
  g_autoptr(GError) error = NULL;
  ExecOutcome outcome = { FALSE, NULL };

  sandbox_instance_exec_async (instance, cmd, NULL, exec_outcome, &outcome);
  for (int i = 0; i < 100 && !test_host_has_process ("sleep 3141"); i++)
    g_usleep (50 * G_TIME_SPAN_MILLISECOND);
  g_assert_true (test_host_has_process ("sleep 3141"));

  /* Destroyed through another object, as another process would. */
  found = sandbox_backend_get_instance (other, sandbox_instance_get_id (instance), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_instance_destroy (found, NULL, &error));
  g_assert_no_error (error);
  while (!outcome.done)
    g_main_context_iteration (NULL, TRUE);
  /* The running command ends with an error that says why. */
  g_assert_error (outcome.error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (outcome.error->message, "destroyed"));
  g_clear_error (&outcome.error);
  g_assert_false (test_host_has_process ("sleep 3141"));
  g_object_unref (instance);
}

static void
test_kill_right_away (void)
{
  SandboxInstance *instance = create (NULL);

  /* A time limit that runs out while bwrap is still setting up must kill
   * the sandbox all the same, and the exec must still end. */
  for (int i = 0; i < 20; i++)
    {
      g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("sleep 3151");
      g_autoptr(GError) error = NULL;
      g_autoptr(SandboxExecResult) result = NULL;

      sandbox_command_set_timeout_ms (cmd, 1 + i % 4);
      result = sandbox_instance_exec (instance, cmd, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (sandbox_exec_result_get_timed_out (result));
    }
  for (int i = 0; i < 50 && test_host_has_process ("sleep 3151"); i++)
    g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (test_host_has_process ("sleep 3151"));
  destroy (instance);
}

/* ---- limits ---- */

static void
test_limits (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  SandboxInstance *instance;
  g_autofree char *cpus = NULL;
  g_autofree char *small = NULL;
  g_autofree char *big = NULL;
  int status;

  sandbox_spec_set_cpu (spec, 1);
  sandbox_spec_set_memory_mb (spec, 256);
  instance = create (spec);
  cpus = sh (instance, "nproc", &status);
  g_assert_cmpstr (cpus, ==, "1\n");
  small = sh (instance, "python3 -c 'b = bytearray(16 << 20); print(len(b) >> 20)'", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (small, ==, "16\n");
  big = sh (instance, "python3 -c 'b = bytearray(512 << 20)' 2>/dev/null; echo $?", &status);
  g_assert_cmpstr (big, !=, "0\n");
  destroy (instance);
}

/* Sandboxes limited to one CPU do not all get the same one (they used to
 * share the machine's first CPU: a 16-way foreach ran on half of it). */
static void
test_limits_cpu_spread (void)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  cpu_set_t here;

  if (sched_getaffinity (0, sizeof here, &here) != 0 || CPU_COUNT (&here) < 2)
    {
      g_test_skip ("fewer than two CPUs to spread over");
      return;
    }
  for (guint i = 0; i < 16; i++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      SandboxInstance *instance;
      g_autofree char *cpus = NULL;
      int status;

      sandbox_spec_set_cpu (spec, 1);
      instance = create (spec);
      cpus = sh (instance, "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status", &status);
      g_assert_cmpint (status, ==, 0);
      /* One CPU each... */
      g_assert_null (strchr (cpus, ','));
      g_assert_null (strchr (cpus, '-'));
      g_hash_table_add (seen, g_steal_pointer (&cpus));
      destroy (instance);
    }
  /* ...but not the same one for all (16 random picks over 2 or more CPUs). */
  g_assert_cmpuint (g_hash_table_size (seen), >=, 2);
}

/* ---- errors ---- */

static void
test_bwrap_missing (void)
{
  g_autofree char *path = g_strdup (g_getenv ("PATH"));
  g_autofree char *bwrap_env = g_strdup (g_getenv ("SANDBOX_BWRAP"));
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;

  g_setenv ("PATH", "/nonexistent-libsandbox-dir", TRUE);
  g_unsetenv ("SANDBOX_BWRAP");
  backend = sandbox_backend_new_for_name ("local", NULL);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_setenv ("PATH", path, TRUE);
  if (bwrap_env)
    g_setenv ("SANDBOX_BWRAP", bwrap_env, TRUE);

  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_assert_nonnull (strstr (error->message, "apt-get install bubblewrap"));
  g_assert_nonnull (strstr (error->message, "dnf install bubblewrap"));
}

/* Children of this process, in any state (zombies too). */
static guint
count_children (void)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint n = 0;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc", name, "stat", NULL);
      g_autofree char *stat = NULL;
      const char *end;

      if (!g_ascii_isdigit (name[0]) || !g_file_get_contents (path, &stat, NULL, NULL) ||
          (end = strrchr (stat, ')')) == NULL)
        continue;
      /* ") S PPID ..." */
      if (strlen (end) > 4 && g_ascii_strtoll (end + 4, NULL, 10) == getpid ())
        n++;
    }
  return n;
}

static void
wait_no_children (void)
{
  /* Up to 10 s: under valgrind a sandbox's end is slow to come. */
  for (guint i = 0; i < 500 && count_children () > 0; i++)
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpuint (count_children (), ==, 0);
}

/* bwrap is this process's child (sandbox-local-spawn.c): reaped when it
 * ends, without a main context to run (nothing here runs the default one),
 * whether the sandbox was destroyed, was a one-shot run, or ended by itself
 * at its time limit. No zombie is left. */
static void
test_bwrap_reaped (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxSpec) short_lived = sandbox_spec_new ();
  SandboxInstance *ended;

  g_assert_no_error (error);
  wait_no_children ();
  {
    SandboxInstance *live = create (NULL);

    g_assert_cmpuint (count_children (), ==, 1);   /* control: its bwrap, seen */
    destroy (live);
  }
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(SandboxCommand) cmd = sandbox_command_new ((const char * const[]) { "true", NULL });
      g_autoptr(SandboxExecResult) result = sandbox_backend_run (backend, spec, cmd, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, 0);
      destroy (create (NULL));
    }
  /* (Its time limit counts from a whole second: it may end at once.) */
  sandbox_spec_set_timeout (short_lived, 1);
  ended = create (short_lived);
  g_usleep (2500 * G_TIME_SPAN_MILLISECOND);
  wait_no_children ();
  g_object_unref (ended);
}

/* A bwrap that is there but cannot be run: a clear error, nothing left. */
static void
test_bwrap_not_runnable (void)
{
  g_autofree char *bwrap_env = g_strdup (g_getenv ("SANDBOX_BWRAP"));
  g_autofree char *root_env = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));
  g_autofree char *dir = g_dir_make_tmp ("local-bwrap-XXXXXX", NULL);
  g_autofree char *fake = g_build_filename (dir, "bwrap", NULL);
  g_autofree char *root = g_build_filename (dir, "root", NULL);
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) left = NULL;

  /* Executable, but not a program: execve() fails with ENOEXEC. */
  g_assert_true (g_file_set_contents (fake, "", 0, NULL));
  g_assert_cmpint (g_chmod (fake, 0755), ==, 0);
  g_setenv ("SANDBOX_BWRAP", fake, TRUE);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  backend = sandbox_backend_new_for_name ("local", NULL);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  if (bwrap_env)
    g_setenv ("SANDBOX_BWRAP", bwrap_env, TRUE);
  else
    g_unsetenv ("SANDBOX_BWRAP");
  if (root_env)
    g_setenv ("SANDBOX_LOCAL_ROOT", root_env, TRUE);
  else
    g_unsetenv ("SANDBOX_LOCAL_ROOT");

  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_assert_nonnull (strstr (error->message, fake));
  g_assert_nonnull (strstr (error->message, g_strerror (ENOEXEC)));
  g_assert_nonnull (strstr (error->message, "SANDBOX_BWRAP"));
  /* No sandbox directory, no process. */
  left = g_dir_open (root, 0, NULL);
  g_assert_null (left != NULL ? g_dir_read_name (left) : NULL);
  wait_no_children ();
  g_assert_cmpint (g_unlink (fake), ==, 0);
  g_assert_cmpint (g_rmdir (root), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
test_bad_rootfs (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autofree char *empty = g_dir_make_tmp ("local-rootfs-XXXXXX", NULL);

  sandbox_spec_set_image (spec, "/nonexistent/rootfs");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "/nonexistent/rootfs"));
  g_clear_error (&error);

  sandbox_spec_set_image (spec, empty);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "/bin/sh"));
  g_rmdir (empty);
}

static void
test_missing_cwd (void)
{
  SandboxInstance *instance = create (NULL);
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("true");
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = NULL;

  sandbox_command_set_cwd (cmd, "/workspace/no/such/dir");
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_EXEC);
  g_assert_nonnull (strstr (error->message, "/workspace/no/such/dir"));
  destroy (instance);
}

static void
test_command_not_found (void)
{
  SandboxInstance *instance = create (NULL);
  const char *argv[] = { "no-such-command-libsandbox", "arg", NULL };
  g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = NULL;

  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_EXEC);
  g_assert_nonnull (strstr (error->message, "no-such-command-libsandbox"));
  g_assert_nonnull (strstr (error->message, "PATH"));
  destroy (instance);
}

static void
test_upload_read_only (void)
{
  SandboxInstance *instance = create (NULL);
  g_autoptr(GFile) source = g_file_new_for_path ("/etc/hostname");
  g_autoptr(GError) error = NULL;

  g_assert_false (sandbox_instance_upload (instance, source, "/usr/hostname", NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "read-only"));
  destroy (instance);
}

static void
test_download_symlink_escape (void)
{
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *name = g_strdup_printf ("test-local-escape-%d", (int) getpid ());
  g_autofree char *root = g_build_filename (cwd, name, NULL);
  g_autofree char *secret = g_build_filename (root, "secret", NULL);
  g_autofree char *old_root = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));
  g_autofree char *dest_dir = g_build_filename (g_get_tmp_dir (), name, NULL);
  g_autofree char *dest_path = g_build_filename (dest_dir, "got", NULL);
  g_autoptr(GFile) dest = g_file_new_for_path (dest_path);
  g_autoptr(GError) error = NULL;
  g_autofree char *script = NULL;
  g_autofree char *out = NULL;
  g_autofree char *inside = NULL;
  g_autofree char *got = NULL;
  SandboxInstance *instance;
  int status;

  /* The sandboxes' root, visible from the host's root but hidden inside,
   * holds a host secret; the sandbox links to it. */
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  instance = create (NULL);
  g_assert_true (g_file_set_contents (secret, "host-only-secret", -1, NULL));
  script = g_strdup_printf ("ln -s '%s' /workspace/link && ln -s /etc /workspace/etc && echo ok", root);
  out = sh (instance, script, &status);
  g_assert_cmpstr (out, ==, "ok\n");

  /* A link made inside the sandbox is followed as the sandbox sees it,
   * never on the host: the secret is not there. */
  g_assert_false (sandbox_instance_download (instance, "/workspace/link/secret", dest, NULL, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_false (g_file_test (dest_path, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  /* And where the sandbox does see something, that is what comes out. */
  inside = sh (instance, "cat /etc/hostname", &status);
  g_assert_true (sandbox_instance_download (instance, "/workspace/etc/hostname", dest, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (dest_path, &got, NULL, NULL));
  g_assert_cmpstr (got, ==, inside);

  destroy (instance);
  g_unlink (secret);
  g_rmdir (root);
  g_unlink (dest_path);
  g_rmdir (dest_dir);
  if (old_root != NULL)
    g_setenv ("SANDBOX_LOCAL_ROOT", old_root, TRUE);
  else
    g_unsetenv ("SANDBOX_LOCAL_ROOT");
}

static void
test_bad_mount_target (void)
{
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GError) error = NULL;

  /* /usr exists read-only: a new directory cannot appear inside it. */
  sandbox_spec_add_mount (spec, g_get_tmp_dir (), "/usr/libsandbox-no-such-dir", FALSE);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "/usr/libsandbox-no-such-dir"));
}

static void
test_stdin_not_inherited (void)
{
  SandboxInstance *instance = create (NULL);
  int fds[2], saved = dup (0), status;
  g_autofree char *out = NULL;

  /* Our own stdin has data; the command must not see it. */
  g_assert_cmpint (pipe (fds), ==, 0);
  g_assert_cmpint (write (fds[1], "leaked\n", 7), ==, 7);
  close (fds[1]);
  dup2 (fds[0], 0);
  close (fds[0]);
  out = sh (instance, "cat; echo end", &status);
  dup2 (saved, 0);
  close (saved);
  g_assert_cmpstr (out, ==, "end\n");
  destroy (instance);
}

static void
test_gone (void)
{
  SandboxInstance *instance = create (NULL);
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("true");
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = NULL;

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_DESTROYED);
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_object_unref (instance);
}

/* ---- the sandbox's server: one set of namespaces for every exec ---- */

static char *
instance_dir (SandboxInstance *instance)
{
  g_autofree char *root = NULL;

  g_object_get (sandbox_instance_get_backend (instance), "root-dir", &root, NULL);
  return g_build_filename (root, sandbox_instance_get_id (instance), NULL);
}

/* Whether any process on the host mentions NEEDLE in its command line:
 * the sandbox's bwrap carries its id (--hostname), its processes their
 * arguments. */
static gboolean
host_has_process_with (const char *needle)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while ((name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc", name, "cmdline", NULL);
      g_autofree char *cmdline = NULL;
      gsize len;

      if (!g_ascii_isdigit (name[0]) || atoi (name) == getpid () ||
          !g_file_get_contents (path, &cmdline, &len, NULL))
        continue;
      for (gsize i = 0; i + 1 < len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      if (strstr (cmdline, needle) != NULL)
        return TRUE;
    }
  return FALSE;
}

static void
test_server_shared_namespaces (void)
{
  SandboxInstance *instance = create (NULL);
  g_autofree char *marker = g_strdup_printf ("/tmp/marker-%s", sandbox_instance_get_id (instance));
  g_autofree char *script = g_strdup_printf ("echo one > %s; sleep 4242 >/dev/null 2>&1 & echo $!", marker);
  g_autofree char *pid = NULL;
  g_autofree char *seen = NULL;
  g_autofree char *check = NULL;
  int status;

  pid = sh (instance, script, &status);
  g_assert_cmpint (status, ==, 0);
  g_strstrip (pid);
  /* The sandbox's /tmp, not the host's. */
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));

  /* A second exec: same mount namespace (the file), same pid namespace
   * (the background process of the first exec, under the same pid), and
   * the process lives on after the exec that started it. */
  check = g_strdup_printf ("cat %s; kill -0 %s && echo alive; "
                           "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done "
                           "| grep -c '^sleep 4242'", marker, pid);
  seen = sh (instance, check, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (seen, ==, "one\nalive\n1\n");
  g_assert_true (test_host_has_process ("sleep 4242"));
  destroy (instance);
  g_assert_false (test_host_has_process ("sleep 4242"));
}

static void
test_server_output_complete (void)
{
  SandboxInstance *instance = create (NULL);

  /* The exec ends when the server reports the status; whatever the command
   * wrote before it exited must still all be there, every time. */
  for (int i = 0; i < 100; i++)
    {
      g_autofree char *script = g_strdup_printf ("echo out-%d; echo err-%d >&2", i, i);
      g_autofree char *expected = g_strdup_printf ("out-%d\n", i);
      g_autofree char *out = NULL;
      int status;

      out = sh (instance, script, &status);
      g_assert_cmpint (status, ==, 0);
      g_assert_cmpstr (out, ==, expected);
    }
  destroy (instance);
}

static void
test_server_destroy_leaves_nothing (void)
{
  SandboxInstance *instance = create (NULL);
  g_autofree char *id = g_strdup (sandbox_instance_get_id (instance));
  g_autofree char *dir = instance_dir (instance);
  g_autofree char *out = NULL;
  int status;

  /* A daemon in its own session, out of reach of the process group kill. */
  out = sh (instance, "setsid sleep 4343 </dev/null >/dev/null 2>&1 & "
                      "(sleep 4344 </dev/null >/dev/null 2>&1 &); echo started", &status);
  g_assert_cmpstr (out, ==, "started\n");
  g_assert_true (host_has_process_with (id));
  for (int i = 0; i < 100 && !test_host_has_process ("sleep 4344"); i++)
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  g_assert_true (test_host_has_process ("sleep 4344"));

  destroy (instance);
  /* Right away, without waiting: everything the sandbox ran is gone, and so
   * is the directory. */
  g_assert_false (test_host_has_process ("sleep 4343"));
  g_assert_false (test_host_has_process ("sleep 4344"));
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  /* Its bwrap and pid 1 were killed too; the kernel may still be tearing
   * down their namespaces for a moment. */
  for (int i = 0; i < 250 && host_has_process_with (id); i++)
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (host_has_process_with (id));
}

/* sandbox_backend_run: one command in a one-shot sandbox. Its pid 1 got the
 * command at start (--once), it isolates as a created sandbox does (no new
 * privileges, seccomp, no capabilities, read-only host), and when run
 * returns nothing of it is left: no process, not even one in a session of
 * its own, and no directory. */
static void
test_run_one_shot (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (
    "setsid sleep 4345 </dev/null >/dev/null 2>&1 & "
    "grep -c -- --once /proc/1/cmdline; "
    "grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status; "
    "touch /etc/one-shot 2>/dev/null || echo read-only; echo \"$RUN_ID\"; exit 3");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *root = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *expected = NULL;
  GBytes *out;

  g_assert_no_error (error);
  sandbox_command_set_id_env (cmd, "RUN_ID");
  result = sandbox_backend_run (backend, spec, cmd, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (sandbox_command_get_sandbox_id (cmd));
  g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, 3);
  out = sandbox_exec_result_get_stdout (result);
  expected = g_strdup_printf ("1\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
                              "read-only\n%s\n", sandbox_command_get_sandbox_id (cmd));
  g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out),
                   expected, strlen (expected));

  g_object_get (backend, "root-dir", &root, NULL);
  dir = g_build_filename (root, sandbox_command_get_sandbox_id (cmd), NULL);
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  g_assert_false (test_host_has_process ("sleep 4345"));
  for (int i = 0; i < 250 && host_has_process_with (sandbox_command_get_sandbox_id (cmd)); i++)
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (host_has_process_with (sandbox_command_get_sandbox_id (cmd)));
}

typedef struct
{
  SandboxExecResult *result;
  GError            *error;
  gboolean           done;
} RunOutcome;

static void
run_outcome_done (GObject      *source,
                  GAsyncResult *res,
                  gpointer      user_data)
{
  RunOutcome *outcome = user_data;

  outcome->result = sandbox_backend_run_finish (SANDBOX_BACKEND (source), res, &outcome->error);
  outcome->done = TRUE;
}

/* A one-shot command runs before its output is read: when the caller gets
 * to it (here: a caller busy for two seconds), its stdout pipe can be full,
 * and more than the output holds before it waits for the caller's stream,
 * which takes nothing (a pipe nobody reads). Cancelling the run must end
 * that wait too: it once waited without the cancellable, for ever (seen as
 * test-contract's exec-slow-reader stuck under valgrind on a busy machine). */
static void
test_run_cancel_full_pipe (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  /* A 1 MiB pipe (F_SETPIPE_SZ), filled, then more. */
  const char *argv[] = {
    "python3", "-c",
    "import fcntl, os\n"
    "fcntl.fcntl(1, 1031, 1 << 20)\n"
    "chunk = b'x' * 65536\n"
    "while True:\n"
    "    os.write(1, chunk)\n",
    NULL
  };
  g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GOutputStream) stuck = NULL;
  RunOutcome outcome = { 0 };
  int fds[2];

  g_assert_no_error (error);
  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, &error));
  g_assert_no_error (error);
  g_assert_true (g_unix_set_fd_nonblocking (fds[1], TRUE, &error));
  stuck = g_unix_output_stream_new (fds[1], TRUE);
  sandbox_command_set_stdout_stream (cmd, stuck);

  sandbox_backend_run_async (backend, spec, cmd, cancellable, run_outcome_done, &outcome);
  /* The sandbox starts and its command fills the pipe meanwhile. */
  g_usleep (2 * G_USEC_PER_SEC);
  test_iterate_until (&outcome.done, &outcome.done, 2);
  g_assert_false (outcome.done);

  g_cancellable_cancel (cancellable);
  test_iterate_until (&outcome.done, &outcome.done, 30);
  g_assert_true (outcome.done);
  g_assert_error (outcome.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (outcome.result);
  /* Nothing of the sandbox is left. */
  for (int i = 0; i < 250 && host_has_process_with (sandbox_command_get_sandbox_id (cmd)); i++)
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (host_has_process_with (sandbox_command_get_sandbox_id (cmd)));

  close (fds[0]);
  g_clear_error (&outcome.error);
}

static void
test_server_sockets_hidden (void)
{
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *name = g_strdup_printf ("test-local-root-%d", (int) getpid ());
  g_autofree char *root = g_build_filename (cwd, name, NULL);
  g_autofree char *old_root = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));
  SandboxInstance *one, *two;
  g_autofree char *script = NULL;
  g_autofree char *out = NULL;
  int status;

  /* A root the host's file system shows inside sandboxes (the build tree,
   * not /tmp):
   * no sandbox may reach its own or another one's server socket. */
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  one = create (NULL);
  two = create (NULL);
  script = g_strdup_printf ("test -e '%s/%s/sock' && echo own; test -e '%s/%s/sock' && echo other; "
                            "ls -A '%s' | wc -l",
                            root, sandbox_instance_get_id (one), root, sandbox_instance_get_id (two), root);
  out = sh (one, script, &status);
  g_assert_cmpstr (out, ==, "0\n");
  destroy (one);
  destroy (two);
  g_rmdir (root);
  if (old_root != NULL)
    g_setenv ("SANDBOX_LOCAL_ROOT", old_root, TRUE);
  else
    g_unsetenv ("SANDBOX_LOCAL_ROOT");
}

/* A leftover of a creator killed between making the sandbox's directory
 * and writing its instance.json (its work/, tmp/, var-tmp/, a socket of a
 * server that is gone, what the workdir held): rm said it never existed
 * and gc skipped it, so it stayed for ever. One older than a minute goes
 * when found (rm) or listed (ls, gc), with what was in it; one that is
 * younger (a creation under way) or whose server still answers is left
 * alone. */
static void
make_leftover (const char *root,
               const char *id,
               gboolean    old,
               gboolean    listening,
               GSocket   **keep)
{
  g_autofree char *dir = g_build_filename (root, id, NULL);
  g_autofree char *work = g_build_filename (dir, "work", NULL);
  g_autofree char *data = g_build_filename (work, "data", NULL);
  g_autofree char *tmp = g_build_filename (dir, "tmp", NULL);
  g_autofree char *sock = g_build_filename (dir, "sock", NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (sock);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GError) error = NULL;
  struct timeval times[2];

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_cmpint (g_mkdir (work, 0755), ==, 0);
  g_assert_cmpint (g_mkdir (tmp, 01777), ==, 0);
  g_assert_true (g_file_set_contents (data, "what the command left", -1, NULL));
  g_assert_true (g_socket_bind (socket, address, FALSE, &error));
  g_assert_no_error (error);
  if (listening)
    {
      g_assert_true (g_socket_listen (socket, &error));
      g_assert_no_error (error);
      *keep = g_steal_pointer (&socket);
    }
  gettimeofday (&times[0], NULL);
  times[0].tv_sec -= old ? 120 : 0;
  times[1] = times[0];
  g_assert_cmpint (utimes (dir, times), ==, 0);
}

static void
test_abandoned_directory (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp ("test-local-abandoned-XXXXXX", &error);
  g_autofree char *old_root = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxInstance) found = NULL;
  g_autolist(SandboxInstance) list = NULL;
  g_autoptr(GSocket) live = NULL;
  g_autofree char *old_one = NULL, *old_two = NULL, *young = NULL, *served = NULL;

  g_assert_no_error (error);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  backend = sandbox_backend_new_for_name ("local", &error);
  g_assert_no_error (error);
  make_leftover (root, "sbx-00000000a001", TRUE, FALSE, NULL);
  make_leftover (root, "sbx-00000000a002", TRUE, FALSE, NULL);
  make_leftover (root, "sbx-00000000a003", FALSE, FALSE, NULL);
  make_leftover (root, "sbx-00000000a004", TRUE, TRUE, &live);
  old_one = g_build_filename (root, "sbx-00000000a001", NULL);
  old_two = g_build_filename (root, "sbx-00000000a002", NULL);
  young = g_build_filename (root, "sbx-00000000a003", NULL);
  served = g_build_filename (root, "sbx-00000000a004", NULL);

  /* rm ID: found, removed, and said so. */
  found = sandbox_backend_get_instance (backend, "sbx-00000000a001", NULL, &error);
  g_assert_null (found);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "removed"));
  g_clear_error (&error);
  g_assert_false (g_file_test (old_one, G_FILE_TEST_EXISTS));

  /* ls, gc: none listed, the old one without a server gone. */
  list = sandbox_backend_list (backend, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_length (list), ==, 0);
  g_assert_false (g_file_test (old_two, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (young, G_FILE_TEST_IS_DIR));
  g_assert_true (g_file_test (served, G_FILE_TEST_IS_DIR));
  found = sandbox_backend_get_instance (backend, "sbx-00000000a003", NULL, &error);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  g_assert_null (strstr (error->message, "removed"));
  g_clear_error (&error);

  g_socket_close (live, NULL);
  {
    const char *argv[] = { "rm", "-rf", root, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                 NULL, NULL, NULL, NULL));
  }
  if (old_root != NULL)
    g_setenv ("SANDBOX_LOCAL_ROOT", old_root, TRUE);
  else
    g_unsetenv ("SANDBOX_LOCAL_ROOT");
}

static void
test_server_killed (void)
{
  SandboxInstance *instance = create (NULL);
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxInstance) found = NULL;
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("echo hi");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GHashTable) none = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = instance_dir (instance);
  g_autofree char *json = g_build_filename (dir, "instance.json", NULL);
  g_autofree char *contents = NULL;
  const char *key;
  GList *all;
  gboolean listed = FALSE;
  int init_pid;

  /* Kill the sandbox's pid 1 behind the library's back (as a reboot or
   * an OOM killer would). */
  g_assert_true (g_file_get_contents (json, &contents, NULL, NULL));
  key = strstr (contents, "\"init_pid\"");
  g_assert_nonnull (key);
  init_pid = atoi (strchr (key, ':') + 1);
  g_assert_cmpint (init_pid, >, 1);
  g_assert_cmpint (kill (init_pid, SIGKILL), ==, 0);
  for (int i = 0; i < 100 && kill (init_pid, 0) == 0; i++)
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);

  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "not running any more"));
  g_assert_nonnull (strstr (error->message, "sandboxctl rm"));
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_STOPPED);
  g_clear_error (&error);

  /* Found again, it says it is stopped; list shows it, so gc removes it. */
  found = sandbox_backend_get_instance (backend, sandbox_instance_get_id (instance), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_instance_get_state (found), ==, SANDBOX_INSTANCE_STATE_STOPPED);
  all = sandbox_backend_list (backend, none, NULL, &error);
  g_assert_no_error (error);
  for (GList *l = all; l != NULL; l = l->next)
    if (g_strcmp0 (sandbox_instance_get_id (l->data), sandbox_instance_get_id (instance)) == 0)
      {
        listed = TRUE;
        g_assert_cmpint (sandbox_instance_get_state (l->data), ==, SANDBOX_INSTANCE_STATE_STOPPED);
      }
  g_list_free_full (all, g_object_unref);
  g_assert_true (listed);
  destroy (instance);
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
}

static void
test_server_directory_removed (void)
{
  SandboxInstance *instance = create (NULL);
  g_autofree char *id = g_strdup (sandbox_instance_get_id (instance));
  g_autofree char *dir = instance_dir (instance);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);

  /* Whoever removes the directory (rm -rf of the root) ends the sandbox:
   * nobody could reach it any more. */
  g_assert_true (host_has_process_with (id));
  g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  for (int i = 0; i < 250 && host_has_process_with (id); i++)
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (host_has_process_with (id));
  destroy (instance);   /* idempotent */
}

static void
test_ttl (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxInstance) found = NULL;
  g_autoptr(GError) error = NULL;
  SandboxInstance *instance;

  sandbox_spec_set_timeout (spec, 1);
  instance = create (spec);
  g_usleep (2100 * G_TIME_SPAN_MILLISECOND);
  /* The sandbox ended at its deadline by itself, before anyone looked. */
  g_assert_false (host_has_process_with (sandbox_instance_get_id (instance)));
  found = sandbox_backend_get_instance (backend, sandbox_instance_get_id (instance), NULL, &error);
  g_assert_null (found);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND);
  destroy (instance);   /* idempotent */
}

/* A command still running when the sandbox's time to live ends: the error
 * says it was the sandbox's time limit, not a crash. */
static void
test_ttl_during_exec (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("sleep 30");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  SandboxInstance *instance;

  sandbox_spec_set_timeout (spec, 1);
  instance = create (spec);
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "time limit (1 s"));
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_STOPPED);
  destroy (instance);
}

/* A command sent after the sandbox's time ran out (a caller slower than
 * the timeout: a loaded machine, valgrind) is told so, not "remove it and
 * create a new one", and not "while the command was running". */
static void
test_ttl_before_exec (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("true");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  SandboxInstance *instance;

  sandbox_spec_set_timeout (spec, 1);
  instance = create (spec);
  g_usleep (2200 * G_TIME_SPAN_MILLISECOND);
  result = sandbox_instance_exec (instance, cmd, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "time limit (1 s"));
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "before the command “/bin/sh” could start"));
  g_assert_cmpint (sandbox_instance_get_state (instance), ==, SANDBOX_INSTANCE_STATE_STOPPED);
  destroy (instance);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/local/isolation/network-off", test_network_off);
  g_test_add_func ("/local/isolation/network-on", test_network_on);
  g_test_add_func ("/local/isolation/network-interfaces", test_network_interfaces);
  g_test_add_func ("/local/isolation/egress-rules", test_egress_rules);
  g_test_add_func ("/local/isolation/egress-rules-refused", test_egress_rules_refused);
  g_test_add_func ("/local/isolation/read-only", test_read_only);
  g_test_add_func ("/local/isolation/private-tmp", test_private_tmp);
  g_test_add_func ("/local/isolation/pid-namespace", test_pid_namespace);
  g_test_add_func ("/local/isolation/capabilities", test_capabilities);
  g_test_add_func ("/local/isolation/environment", test_environment);
  g_test_add_func ("/local/isolation/timeout-kills-tree", test_timeout_kills_tree);
  g_test_add_func ("/local/isolation/destroy-kills", test_destroy_kills);
  g_test_add_func ("/local/isolation/kill-right-away", test_kill_right_away);
  g_test_add_func ("/local/limits", test_limits);
  g_test_add_func ("/local/limits/cpu-spread", test_limits_cpu_spread);
  g_test_add_func ("/local/errors/bwrap-missing", test_bwrap_missing);
  g_test_add_func ("/local/errors/bwrap-not-runnable", test_bwrap_not_runnable);
  g_test_add_func ("/local/bwrap-reaped", test_bwrap_reaped);
  g_test_add_func ("/local/errors/bad-rootfs", test_bad_rootfs);
  g_test_add_func ("/local/errors/missing-cwd", test_missing_cwd);
  g_test_add_func ("/local/errors/command-not-found", test_command_not_found);
  g_test_add_func ("/local/errors/upload-read-only", test_upload_read_only);
  g_test_add_func ("/local/errors/download-symlink-escape", test_download_symlink_escape);
  g_test_add_func ("/local/errors/gone", test_gone);
  g_test_add_func ("/local/errors/bad-mount-target", test_bad_mount_target);
  g_test_add_func ("/local/isolation/stdin-not-inherited", test_stdin_not_inherited);
  g_test_add_func ("/local/ttl-during-exec", test_ttl_during_exec);
  g_test_add_func ("/local/ttl-before-exec", test_ttl_before_exec);
  g_test_add_func ("/local/ttl", test_ttl);
  g_test_add_func ("/local/server/shared-namespaces", test_server_shared_namespaces);
  g_test_add_func ("/local/server/destroy-leaves-nothing", test_server_destroy_leaves_nothing);
  g_test_add_func ("/local/server/output-complete", test_server_output_complete);
  g_test_add_func ("/local/server/killed", test_server_killed);
  g_test_add_func ("/local/abandoned-directory", test_abandoned_directory);
  g_test_add_func ("/local/server/sockets-hidden", test_server_sockets_hidden);
  g_test_add_func ("/local/server/directory-removed", test_server_directory_removed);
  g_test_add_func ("/local/run/one-shot", test_run_one_shot);
  g_test_add_func ("/local/run/cancel-full-pipe", test_run_cancel_full_pipe);

  return g_test_run ();
}
