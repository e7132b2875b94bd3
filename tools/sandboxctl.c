/* sandboxctl - the command-line tool of libsandbox
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One program, one subcommand per invocation: backends, create, exec, cp,
 * ls, rm, run, gc. It uses only the public API of libsandbox, so everything
 * it does a program can do too. Long operations run on the default main
 * context (see await_result()) so that SIGINT, SIGTERM and SIGHUP can cancel
 * them and `run` can still remove its sandbox.
 */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <json-glib/json-glib.h>

#include <libsandbox/sandbox.h>

#include "sandbox-display-private.h"

#define PRGNAME "sandboxctl"

/* Exit statuses, as documented in --help and sandboxctl(1). */
enum {
  EXIT_OK             = 0,
  EXIT_FAILED         = 1,
  EXIT_USAGE          = 2,
  EXIT_NOT_CONFIGURED = 3,
  EXIT_NOT_FOUND      = 4,
  EXIT_EXEC           = 5,
  EXIT_TIMED_OUT      = 124,
};

/* ------------------------------------------------------------------ */
/* Options (one subcommand runs per process, so they can be static)    */

static char     *opt_backend;
static gboolean  opt_json;
static gboolean  opt_all;
static gboolean  opt_force;

/* The sandbox: --image ... --mount */
static char     *opt_image;
static char     *opt_workdir;
static double    opt_cpu;
static int       opt_memory;
static int       opt_disk;
static int       opt_gpu;
static int       opt_pids;
static int       opt_ttl;
static gboolean  opt_network;
static gboolean  opt_run_as_root;
static char    **opt_labels;
static char    **opt_mounts;
static char    **opt_volumes;

/* The command: --cwd, --env, --cmd-timeout, --stdin */
static char     *opt_cwd;
static char    **opt_env;
static char     *opt_id_env;
static gboolean  opt_raise_signal;
static double    opt_cmd_timeout;
static gboolean  opt_stdin;
static gboolean  opt_tty;

static const GOptionEntry backend_entries[] = {
  { "backend", 'b', 0, G_OPTION_ARG_STRING, &opt_backend,
    N_("The backend to use (default: $SANDBOX_BACKEND, or “local”)"), N_("NAME") },
  G_OPTION_ENTRY_NULL
};

static const GOptionEntry json_entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json,
    N_("Print JSON for scripts instead of text for people"), NULL },
  G_OPTION_ENTRY_NULL
};

static const GOptionEntry spec_entries[] = {
  { "image", 0, 0, G_OPTION_ARG_STRING, &opt_image,
    N_("The image (local: a root file system directory, or “host”)"), N_("IMAGE") },
  { "workdir", 0, 0, G_OPTION_ARG_STRING, &opt_workdir,
    N_("The sandbox's working directory (default: /workspace)"), N_("PATH") },
  { "cpu", 0, 0, G_OPTION_ARG_DOUBLE, &opt_cpu,
    N_("CPUs to give the sandbox"), N_("N") },
  { "memory", 0, 0, G_OPTION_ARG_INT, &opt_memory,
    N_("Memory limit in MiB"), N_("MIB") },
  { "disk", 0, 0, G_OPTION_ARG_INT, &opt_disk,
    N_("Disk size in MiB"), N_("MIB") },
  { "gpu", 0, 0, G_OPTION_ARG_INT, &opt_gpu,
    N_("GPUs to give the sandbox"), N_("N") },
  { "pids", 0, 0, G_OPTION_ARG_INT, &opt_pids,
    N_("The most processes the sandbox may run"), N_("N") },
  { "timeout", 0, 0, G_OPTION_ARG_INT, &opt_ttl,
    N_("Remove the sandbox after this many seconds, where the backend can"), N_("SECONDS") },
  { "network", 0, 0, G_OPTION_ARG_NONE, &opt_network,
    N_("Give the sandbox network access (off by default)"), NULL },
  { "run-as-root", 0, 0, G_OPTION_ARG_NONE, &opt_run_as_root,
    N_("Run commands as root inside the sandbox (off by default)"), NULL },
  { "label", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &opt_labels,
    N_("Label the sandbox (repeatable)"), N_("KEY=VALUE") },
  { "mount", 'm', 0, G_OPTION_ARG_STRING_ARRAY, &opt_mounts,
    N_("Mount a host path into the sandbox (repeatable); “nolinks”: the sandbox may make "
       "no link, FIFO or socket in it"), N_("HOST[:SANDBOX][:ro|:nolinks]") },
  { "volume", 'v', 0, G_OPTION_ARG_STRING_ARRAY, &opt_volumes,
    N_("Mount a named volume (see “volume create”) read-write at PATH (repeatable)"),
    N_("NAME:PATH") },
  G_OPTION_ENTRY_NULL
};

static const GOptionEntry command_entries[] = {
  { "cwd", 'C', 0, G_OPTION_ARG_STRING, &opt_cwd,
    N_("Run the command in this directory of the sandbox"), N_("PATH") },
  { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opt_env,
    N_("Set an environment variable for the command (repeatable; the last of a NAME "
       "wins); a bare NAME passes sandboxctl's own value, if it has one (else unsets "
       "it), so that a secret stays off the command line"),
    N_("NAME[=VALUE]") },
  { "tty", 't', 0, G_OPTION_ARG_NONE, &opt_tty,
    N_("Run the command on a terminal of the sandbox, connected to this one (which must "
       "be a terminal): keys, window size and Ctrl-C reach the command"), NULL },
  { "cmd-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &opt_cmd_timeout,
    N_("Kill the command after this many seconds and exit with 124"), N_("SECONDS") },
  { "stdin", 'i', 0, G_OPTION_ARG_NONE, &opt_stdin,
    N_("Read standard input to its end and give it to the command"), NULL },
  G_OPTION_ENTRY_NULL
};

/* run only: the sandbox's id is known once it exists */
static const GOptionEntry run_entries[] = {
  { "id-env", 0, 0, G_OPTION_ARG_STRING, &opt_id_env,
    N_("Give the command the sandbox's id in this environment variable"), N_("NAME") },
  { "raise-signal", 0, 0, G_OPTION_ARG_NONE, &opt_raise_signal,
    N_("When a signal kills the command, end by the same signal (once the sandbox is "
       "removed) instead of exiting with 128+N"), NULL },
  G_OPTION_ENTRY_NULL
};

static const GOptionEntry filter_entries[] = {
  { "label", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &opt_labels,
    N_("Only sandboxes with this label (repeatable)"), N_("KEY=VALUE") },
  G_OPTION_ENTRY_NULL
};

static const GOptionEntry gc_entries[] = {
  { "all", 0, 0, G_OPTION_ARG_NONE, &opt_all,
    N_("Without --label: remove every sandbox of the backend"), NULL },
  G_OPTION_ENTRY_NULL
};

static char     *opt_name;

static const GOptionEntry image_entries[] = {
  { "name", 'n', 0, G_OPTION_ARG_STRING, &opt_name,
    N_("Name the imported image NAME:TAG (default: the names in the archive)"), N_("NAME:TAG") },
  G_OPTION_ENTRY_NULL
};

static gboolean  opt_progress;

static const GOptionEntry cp_entries[] = {
  { "progress", 0, 0, G_OPTION_ARG_NONE, &opt_progress,
    N_("Show progress from the start, not only for a copy that takes more than "
       "2 seconds (on a terminal, and not with --json)"), NULL },
  G_OPTION_ENTRY_NULL
};

static const GOptionEntry rm_entries[] = {
  { "force", 'f', 0, G_OPTION_ARG_NONE, &opt_force,
    N_("Do not fail for sandboxes that do not exist"), NULL },
  G_OPTION_ENTRY_NULL
};

/* ------------------------------------------------------------------ */
/* Errors and exit statuses                                            */

static int
exit_status_for_error (const GError *error)
{
  if (error->domain == G_OPTION_ERROR)
    return EXIT_USAGE;
  if (error->domain == SANDBOX_ERROR)
    {
      switch ((SandboxError) error->code)
        {
        case SANDBOX_ERROR_NOT_CONFIGURED:
        case SANDBOX_ERROR_UNKNOWN_BACKEND:
          return EXIT_NOT_CONFIGURED;
        case SANDBOX_ERROR_NOT_FOUND:
          return EXIT_NOT_FOUND;
        case SANDBOX_ERROR_EXEC:
          return EXIT_EXEC;
        case SANDBOX_ERROR_INVALID_ARGUMENT:
          return EXIT_USAGE;
        case SANDBOX_ERROR_FAILED:
        case SANDBOX_ERROR_AUTHENTICATION:
        case SANDBOX_ERROR_RATE_LIMITED:
        case SANDBOX_ERROR_QUOTA:
        case SANDBOX_ERROR_TIMEOUT:
        case SANDBOX_ERROR_PROTOCOL:
        case SANDBOX_ERROR_UNAVAILABLE:
        case SANDBOX_ERROR_NOT_SUPPORTED:
        default:
          return EXIT_FAILED;
        }
    }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return EXIT_NOT_FOUND;
  return EXIT_FAILED;
}

/* Prints `sandboxctl: MESSAGE` and returns the exit status for @error. */
static int
report_error (const GError *error)
{
  g_printerr ("%s: %s\n", PRGNAME, error->message);
  return exit_status_for_error (error);
}

static int
usage_error (const char *command,
             const char *message)
{
  g_printerr ("%s: %s\n", PRGNAME, message);
  if (command != NULL)
    g_printerr (_("Try “%s %s --help” for more information.\n"), PRGNAME, command);
  else
    g_printerr (_("Try “%s --help” for more information.\n"), PRGNAME);
  return EXIT_USAGE;
}

static const char *
exit_status_help (void)
{
  return _("Exit status:\n"
           "  0      success\n"
           "  1      failure\n"
           "  2      usage error (bad option, argument or sandbox spec)\n"
           "  3      backend unknown or not configured\n"
           "  4      sandbox or file not found\n"
           "  5      the command could not be started in the sandbox\n"
           "  N      exec, run: the command's own exit status\n"
           "  124    exec, run: the command timed out (--cmd-timeout)\n"
           "  128+N  exec, run: the command, or sandboxctl, was killed by signal N\n"
           "         (130 for SIGINT, 143 for SIGTERM)");
}

/* ------------------------------------------------------------------ */
/* Waiting on the main context, and signals                            */

static int           exec_term_signal;   /* the signal that killed the command */
static GCancellable *interrupt_cancellable;
static int           interrupt_signal;
static char         *cleanup_id;   /* the sandbox `run` must remove */
static SandboxCommand *run_command; /* `run`'s command, whose sandbox-id is its sandbox */

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **slot = user_data;

  *slot = g_object_ref (result);
}

/* Iterates the default main context (dispatching signal sources) until
 * the operation that was given store_result() and @slot completes. */
static GAsyncResult *
await_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static void tty_restore (void);

static gboolean
on_unix_signal (gpointer user_data)
{
  int signum = GPOINTER_TO_INT (user_data);

  if (cleanup_id == NULL && run_command != NULL)
    cleanup_id = g_strdup (sandbox_command_get_sandbox_id (run_command));
  if (interrupt_signal != 0 && cleanup_id != NULL)
    {
      /* A second signal while removing the sandbox: give up on it. */
      tty_restore ();
      g_printerr (_("%s: interrupted again; sandbox %s may be left behind. "
                    "Remove it with “%s rm %s”.\n"),
                  PRGNAME, cleanup_id, PRGNAME, cleanup_id);
      _exit (128 + interrupt_signal);
    }
  if (interrupt_signal == 0)
    interrupt_signal = signum;
  g_cancellable_cancel (interrupt_cancellable);
  return G_SOURCE_CONTINUE;
}

static void
catch_signals (void)
{
  static const int signals[] = { SIGINT, SIGTERM, SIGHUP };

  if (interrupt_cancellable == NULL)
    interrupt_cancellable = g_cancellable_new ();
  for (guint i = 0; i < G_N_ELEMENTS (signals); i++)
    g_unix_signal_add (signals[i], on_unix_signal, GINT_TO_POINTER (signals[i]));
  /* A closed output must not kill us before the sandbox is cleaned up. */
  signal (SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------ */
/* --tty: our terminal in raw mode, connected to the command's          */
/*
 * Our terminal is put in raw mode while the command runs, so that every key
 * (Ctrl-C and Ctrl-Z among them) goes to the command's terminal in the
 * sandbox, which interprets them; it is restored when the command ends, on
 * every path out (errors, signals, exit). SIGWINCH resizes the command's
 * terminal.
 */

static struct termios tty_saved;
static gboolean       tty_raw;

static void
tty_restore (void)
{
  if (!tty_raw)
    return;
  tcsetattr (STDIN_FILENO, TCSADRAIN, &tty_saved);
  tty_raw = FALSE;
}

static gboolean
tty_get_size (guint *rows,
              guint *cols)
{
  struct winsize ws;

  if (ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0)
    return FALSE;
  *rows = ws.ws_row;
  *cols = ws.ws_col;
  return TRUE;
}

static gboolean
on_sigwinch (gpointer user_data)
{
  SandboxCommand *command = user_data;
  guint rows, cols;

  if (tty_get_size (&rows, &cols))
    sandbox_command_resize_tty (command, rows, cols);
  return G_SOURCE_CONTINUE;
}

/* Our keys, as they come, to the command's terminal. */
static gboolean
on_tty_input (int          fd,
              GIOCondition condition,
              gpointer     user_data)
{
  SandboxCommand *command = user_data;
  char buf[4096];
  ssize_t n = read (fd, buf, sizeof buf);

  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    return G_SOURCE_REMOVE;
  {
    g_autoptr(GBytes) bytes = g_bytes_new (buf, (gsize) n);

    sandbox_command_send_input (command, bytes);
  }
  return G_SOURCE_CONTINUE;
}

/* Puts our terminal in raw mode and connects it to @command's; returns the
 * sources to remove once the command has ended. */
static void
tty_connect (SandboxCommand *command,
             guint           sources[2])
{
  struct termios raw;

  if (tcgetattr (STDIN_FILENO, &tty_saved) == 0)
    {
      static gboolean registered;

      if (!registered)
        atexit (tty_restore);
      registered = TRUE;
      raw = tty_saved;
      cfmakeraw (&raw);
      if (tcsetattr (STDIN_FILENO, TCSADRAIN, &raw) == 0)
        tty_raw = TRUE;
    }
  /* Above the keys: a resize that happened before a key reaches the
   * command before it. */
  sources[0] = g_unix_signal_add_full (G_PRIORITY_HIGH, SIGWINCH, on_sigwinch, command, NULL);
  sources[1] = g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_tty_input, command);
}

static void
tty_disconnect (guint sources[2])
{
  for (guint i = 0; i < 2; i++)
    if (sources[i] != 0)
      g_source_remove (sources[i]);
  tty_restore ();
}

/* ------------------------------------------------------------------ */
/* Option parsing                                                      */

typedef struct _Command
{
  const char *name;
  const char *parameters;   /* after “sandboxctl NAME [OPTION…]” */
  const char *summary;
  int       (*run) (const struct _Command *self, int argc, char **argv);
} Command;

static GOptionContext *
command_context (const Command *command)
{
  GOptionContext *context = g_option_context_new (_(command->parameters));

  g_option_context_set_summary (context, _(command->summary));
  g_option_context_set_description (context, exit_status_help ());
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  return context;
}

/* Parses the options of @command in @argv (argv[0] is the subcommand).
 * Everything after the first “--” is the command to run, returned in
 * @command_argv when it is not NULL; without a “--” and with @command_argv,
 * option parsing stops at the first word that is not an option. The other
 * words are left in @argc/@argv, starting at argv[1]. */
static gboolean
parse_options (const Command   *command,
               GOptionContext  *context,
               int             *argc,
               char          ***argv,
               char          ***command_argv,
               GError         **error)
{
  g_autofree char *prgname = g_strdup_printf ("%s %s", PRGNAME, command->name);
  gboolean ok;
  int i;

  if (command_argv != NULL)
    {
      *command_argv = NULL;
      for (i = 1; i < *argc; i++)
        if (strcmp ((*argv)[i], "--") == 0)
          break;
      if (i < *argc)
        {
          *command_argv = g_strdupv (*argv + i + 1);
          g_clear_pointer (&(*argv)[i], g_free);
          for (int j = i + 1; j < *argc; j++)
            g_clear_pointer (&(*argv)[j], g_free);
          *argc = i;
        }
      else
        g_option_context_set_strict_posix (context, TRUE);
    }

  /* So that --help says “sandboxctl run [OPTION…] …”. */
  g_set_prgname (prgname);
  ok = g_option_context_parse_strv (context, argv, error);
  g_set_prgname (PRGNAME);
  *argc = g_strv_length (*argv);
  return ok;
}

static gboolean
parse_key_value (const char  *arg,
                 const char  *option,
                 char       **key,
                 char       **value,
                 GError     **error)
{
  const char *eq = strchr (arg, '=');

  if (eq == NULL || eq == arg)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s needs KEY=VALUE, not “%s”."), option, arg);
      return FALSE;
    }
  *key = g_strndup (arg, eq - arg);
  *value = g_strdup (eq + 1);
  return TRUE;
}

static GHashTable *
labels_from_options (GError **error)
{
  g_autoptr(GHashTable) labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (guint i = 0; opt_labels != NULL && opt_labels[i] != NULL; i++)
    {
      char *key, *value;

      const char *earlier;

      if (!parse_key_value (opt_labels[i], "--label", &key, &value, error))
        return NULL;
      /* A sandbox has one value per label: two values could only be the
       * last silently winning (create) or a filter that no sandbox
       * matches (ls, gc select sandboxes carrying all the labels). */
      earlier = g_hash_table_lookup (labels, key);
      if (earlier != NULL && strcmp (earlier, value) != 0)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("--label %s is given twice, as %s=%s and %s=%s; a sandbox has one "
                         "value per label. Give the label once."),
                       key, key, earlier, key, value);
          g_free (key);
          g_free (value);
          return NULL;
        }
      g_hash_table_replace (labels, key, value);
    }
  return g_steal_pointer (&labels);
}

static gboolean
check_non_negative (int          value,
                    const char  *option,
                    GError     **error)
{
  if (value < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s cannot be negative."), option);
      return FALSE;
    }
  return TRUE;
}

static gboolean
add_mount (SandboxSpec  *spec,
           const char   *arg,
           GError      **error)
{
  g_auto(GStrv) parts = g_strsplit (arg, ":", 4);
  guint n = g_strv_length (parts);
  SandboxMountFlags flags = SANDBOX_MOUNT_NONE;
  const char *sandbox_path = NULL;
  g_autofree char *host = NULL;
  gboolean rw = FALSE;

  /* Any of ro, rw and nolinks, last. */
  while (n >= 2 && (strcmp (parts[n - 1], "ro") == 0 || strcmp (parts[n - 1], "rw") == 0 ||
                    strcmp (parts[n - 1], "nolinks") == 0))
    {
      if (strcmp (parts[n - 1], "ro") == 0)
        flags |= SANDBOX_MOUNT_READ_ONLY;
      else if (strcmp (parts[n - 1], "nolinks") == 0)
        flags |= SANDBOX_MOUNT_NO_LINKS;
      else
        rw = TRUE;
      n--;
    }
  /* Both: one of them would be ignored (ro won). */
  if (rw && (flags & SANDBOX_MOUNT_READ_ONLY))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--mount “%s” is both :ro and :rw; give one of them."), arg);
      return FALSE;
    }
  if (n == 2)
    sandbox_path = parts[1];
  if (n < 1 || n > 2 || *parts[0] == '\0' || (sandbox_path != NULL && *sandbox_path == '\0'))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--mount needs HOST[:SANDBOX][:ro|:nolinks], not “%s”."), arg);
      return FALSE;
    }
  if (sandbox_path != NULL && !g_path_is_absolute (sandbox_path))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("The sandbox path of --mount “%s” must be absolute, such as /data."), arg);
      return FALSE;
    }

  host = g_canonicalize_filename (parts[0], NULL);
  sandbox_spec_add_mount_full (spec, host, sandbox_path, flags);
  return TRUE;
}

static SandboxSpec *
spec_from_options (GError **error)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GHashTable) labels = NULL;
  GHashTableIter iter;
  gpointer key, value;

  if (!check_non_negative (opt_memory, "--memory", error) ||
      !check_non_negative (opt_disk, "--disk", error) ||
      !check_non_negative (opt_gpu, "--gpu", error) ||
      !check_non_negative (opt_pids, "--pids", error) ||
      !check_non_negative (opt_ttl, "--timeout", error))
    return NULL;
  if (opt_cpu < 0 || isnan (opt_cpu))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s cannot be negative."), "--cpu");
      return NULL;
    }
  /* GOption reads “inf”: no backend has that many, and 0 is “no limit”. */
  if (isinf (opt_cpu))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--cpu needs a number of CPUs, such as 2 or 0.5; leave it out (or give 0) "
                     "for no limit."));
      return NULL;
    }

  if (opt_image != NULL)
    sandbox_spec_set_image (spec, opt_image);
  if (opt_workdir != NULL)
    sandbox_spec_set_workdir (spec, opt_workdir);
  sandbox_spec_set_cpu (spec, opt_cpu);
  sandbox_spec_set_memory_mb (spec, opt_memory);
  sandbox_spec_set_disk_mb (spec, opt_disk);
  sandbox_spec_set_gpu (spec, opt_gpu);
  sandbox_spec_set_pids_max (spec, opt_pids);
  sandbox_spec_set_timeout (spec, opt_ttl);
  sandbox_spec_set_network (spec, opt_network);
  sandbox_spec_set_run_as_root (spec, opt_run_as_root);

  if ((labels = labels_from_options (error)) == NULL)
    return NULL;
  g_hash_table_iter_init (&iter, labels);
  while (g_hash_table_iter_next (&iter, &key, &value))
    sandbox_spec_set_label (spec, key, value);

  for (guint i = 0; opt_mounts != NULL && opt_mounts[i] != NULL; i++)
    if (!add_mount (spec, opt_mounts[i], error))
      return NULL;

  for (guint i = 0; opt_volumes != NULL && opt_volumes[i] != NULL; i++)
    {
      const char *colon = strchr (opt_volumes[i], ':');
      g_autofree char *name = colon ? g_strndup (opt_volumes[i], colon - opt_volumes[i]) : NULL;

      if (name == NULL || !sandbox_volume_name_is_valid (name) || !g_path_is_absolute (colon + 1))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("--volume needs NAME:PATH with a volume name and an absolute path, "
                         "such as data:/data, not “%s”."), opt_volumes[i]);
          return NULL;
        }
      /* A sandbox mounts a volume once: a second path replaced the first. */
      if (g_hash_table_contains (sandbox_spec_get_volumes (spec), name) &&
          g_strcmp0 (g_hash_table_lookup (sandbox_spec_get_volumes (spec), name), colon + 1) != 0)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("--volume %s is given twice, at %s and at %s; a sandbox mounts a "
                         "volume at one path. Give it once."),
                       name, (const char *) g_hash_table_lookup (sandbox_spec_get_volumes (spec), name),
                       colon + 1);
          return NULL;
        }
      sandbox_spec_add_volume (spec, name, colon + 1);
    }

  return g_steal_pointer (&spec);
}

static GBytes *
read_stdin (GError **error)
{
  g_autoptr(GInputStream) in = g_unix_input_stream_new (STDIN_FILENO, FALSE);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, error) < 0)
    return NULL;
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* The command from @argv and the command options. Unless --json, its
 * output streams live into our own standard output and error. */
static SandboxCommand *
command_from_options (char   **argv,
                      GError **error)
{
  g_autoptr(SandboxCommand) command = sandbox_command_new ((const char * const *) argv);
  g_autoptr(GHashTable) env = NULL;
  GHashTableIter iter;
  gpointer env_name, env_value;

  /* The library takes an absolute path; a relative one was resolved from
   * the sandbox's / on the local backend (--cwd tmp ran in /tmp), not from
   * its workdir. As docker exec -w, refused. */
  if (opt_cwd != NULL && !g_path_is_absolute (opt_cwd))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--cwd needs an absolute path in the sandbox, such as /workspace/%s, "
                     "not “%s”."), opt_cwd, opt_cwd);
      return NULL;
    }
  if (opt_cwd != NULL)
    sandbox_command_set_cwd (command, opt_cwd);

  /* The last --env of a name wins, as with env(1) and docker run -e: a
   * bare NAME after NAME=VALUE with NAME not set here drops that value. */
  env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; opt_env != NULL && opt_env[i] != NULL; i++)
    {
      char *name = NULL;
      char *value = NULL;

      /* A bare NAME: our own value (unset: not set), as docker run -e NAME. */
      if (strchr (opt_env[i], '=') == NULL && *opt_env[i] != '\0')
        {
          const char *own = g_getenv (opt_env[i]);

          if (own != NULL)
            g_hash_table_replace (env, g_strdup (opt_env[i]), g_strdup (own));
          else
            g_hash_table_remove (env, opt_env[i]);
          continue;
        }
      if (!parse_key_value (opt_env[i], "--env", &name, &value, error))
        return NULL;
      g_hash_table_replace (env, name, value);
    }
  g_hash_table_iter_init (&iter, env);
  while (g_hash_table_iter_next (&iter, &env_name, &env_value))
    sandbox_command_set_env (command, env_name, env_value);

  if (opt_cmd_timeout < 0 || isnan (opt_cmd_timeout) || opt_cmd_timeout > G_MAXUINT / 1000.0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--cmd-timeout needs a number of seconds between 0 and %u."),
                   G_MAXUINT / 1000);
      return NULL;
    }
  if (opt_cmd_timeout > 0)
    sandbox_command_set_timeout_ms (command, (guint) MAX (1.0, ceil (opt_cmd_timeout * 1000.0)));

  if (opt_tty)
    {
      guint rows, cols;

      /* As docker exec -t without a terminal, but an error, not a warning:
       * raw mode and window size need one. */
      if (!isatty (STDIN_FILENO))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                       _("--tty needs a terminal on standard input, and standard input is "
                         "not one. Run without -t (and with -i to pass input), or from a "
                         "terminal."));
          return NULL;
        }
      if (opt_stdin || opt_json)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                       _("--tty cannot be combined with %s: the terminal is the command's "
                         "input and output."), opt_stdin ? "--stdin" : "--json");
          return NULL;
        }
      sandbox_command_set_tty (command, TRUE);
      if (tty_get_size (&rows, &cols))
        sandbox_command_resize_tty (command, rows, cols);
    }

  if (opt_stdin)
    {
      g_autoptr(GBytes) input = read_stdin (error);

      if (input == NULL)
        return NULL;
      sandbox_command_set_stdin (command, input);
    }

  if (!opt_json)
    {
      g_autoptr(GOutputStream) out = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
      g_autoptr(GOutputStream) err = g_unix_output_stream_new (STDERR_FILENO, FALSE);

      sandbox_command_set_stdout_stream (command, out);
      sandbox_command_set_stderr_stream (command, err);
    }

  return g_steal_pointer (&command);
}

static SandboxBackend *
open_backend (GError **error)
{
  const char *name = opt_backend;

  if (name == NULL || *name == '\0')
    name = g_getenv ("SANDBOX_BACKEND");
  if (name == NULL || *name == '\0')
    name = "local";
  return sandbox_backend_new_for_name (name, error);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

static const char *
state_name (SandboxInstanceState state)
{
  GEnumClass *klass = g_type_class_ref (SANDBOX_TYPE_INSTANCE_STATE);
  GEnumValue *value = g_enum_get_value (klass, state);

  g_type_class_unref (klass);   /* static type: stays alive */
  return value != NULL ? value->value_nick : "unknown";
}

static gint
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static GPtrArray *
sorted_keys (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  if (table != NULL)
    {
      g_hash_table_iter_init (&iter, table);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        g_ptr_array_add (keys, key);
    }
  g_ptr_array_sort (keys, compare_strings);
  return keys;
}

static char *
format_labels (GHashTable *labels)
{
  g_autoptr(GPtrArray) keys = sorted_keys (labels);
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);

      g_string_append_printf (out, "%s%s=%s", i > 0 ? "," : "", key,
                              (const char *) g_hash_table_lookup (labels, key));
    }
  return g_string_free (out, FALSE);
}

static void
print_json (JsonNode *root)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autofree char *data = NULL;

  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, root);
  data = json_generator_to_data (generator, NULL);
  fputs (data, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
}

static void
add_instance_json (JsonBuilder     *builder,
                   SandboxInstance *instance)
{
  GHashTable *labels = sandbox_instance_get_labels (instance);
  g_autoptr(GPtrArray) keys = sorted_keys (labels);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, sandbox_instance_get_id (instance));
  json_builder_set_member_name (builder, "backend");
  json_builder_add_string_value (builder,
                                 sandbox_backend_get_name (sandbox_instance_get_backend (instance)));
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder, state_name (sandbox_instance_get_state (instance)));
  json_builder_set_member_name (builder, "labels");
  json_builder_begin_object (builder);
  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);

      json_builder_set_member_name (builder, key);
      json_builder_add_string_value (builder, g_hash_table_lookup (labels, key));
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
}

static void
add_bytes_member (JsonBuilder *builder,
                  const char  *name,
                  GBytes      *bytes)
{
  g_autofree char *text = NULL;
  gsize size = 0;
  const char *data = bytes != NULL ? g_bytes_get_data (bytes, &size) : NULL;

  text = g_utf8_make_valid (data != NULL ? data : "", size);
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, text);
}

static void
print_result_json (SandboxInstance   *instance,
                   SandboxExecResult *result,
                   int                exit_status)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, sandbox_instance_get_id (instance));
  json_builder_set_member_name (builder, "exit_code");
  json_builder_add_int_value (builder, exit_status);
  json_builder_set_member_name (builder, "exit_status");
  json_builder_add_int_value (builder, sandbox_exec_result_get_exit_status (result));
  json_builder_set_member_name (builder, "term_signal");
  json_builder_add_int_value (builder, sandbox_exec_result_get_term_signal (result));
  json_builder_set_member_name (builder, "timed_out");
  json_builder_add_boolean_value (builder, sandbox_exec_result_get_timed_out (result));
  json_builder_set_member_name (builder, "elapsed");
  json_builder_add_double_value (builder, sandbox_exec_result_get_elapsed (result));
  add_bytes_member (builder, "stdout", sandbox_exec_result_get_stdout (result));
  add_bytes_member (builder, "stderr", sandbox_exec_result_get_stderr (result));
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  print_json (root);
}

/* A table's cells may hold what a provider or another user of the
 * account chose (a remote sandbox's id and labels, a volume's name):
 * printed as it came, its escape sequences reached the terminal (a window
 * title, erased lines, the clipboard through OSC 52). So a cell is shown
 * as the library's messages show a sandbox's names, by the same function
 * (_sandbox_display_text(), compiled in: tools/Makefile.am): control
 * characters and bytes that are not UTF-8 as \xNN, bidirectional
 * formatting characters as \uNNNN, a backslash as \\ (--json keeps the
 * text whole, escaped by JSON). */

/* How many columns print_cell() takes for TEXT. */
static gsize
cell_width (const char *text)
{
  g_autofree char *shown = _sandbox_display_text (text);

  return g_utf8_strlen (shown, -1);
}

static void
print_cell (const char *text,
            gsize       width,
            gboolean    last)
{
  g_autofree char *shown = _sandbox_display_text (text);

  fputs (shown, stdout);
  if (last)
    fputc ('\n', stdout);
  else
    for (gsize n = g_utf8_strlen (shown, -1); n < width + 2; n++)
      fputc (' ', stdout);
}

/* ------------------------------------------------------------------ */
/* Running a command                                                   */

/* Runs @command in @instance, cancelled by a signal. Returns the exit
 * status sandboxctl should end with. */
static int exec_status (SandboxInstance   *instance,
                        SandboxExecResult *result,
                        GError            *error);

static int
exec_in (SandboxInstance *instance,
         SandboxCommand  *command)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint tty_sources[2] = { 0, 0 };

  fflush (stdout);
  if (sandbox_command_get_tty (command))
    tty_connect (command, tty_sources);
  sandbox_instance_exec_async (instance, command, interrupt_cancellable, store_result, &res);
  await_result (&res);
  if (sandbox_command_get_tty (command))
    tty_disconnect (tty_sources);
  result = sandbox_instance_exec_finish (instance, res, &error);
  return exec_status (instance, result, error);
}

/* The exit status sandboxctl should end with, for a command that ended
 * with RESULT (or ERROR). INSTANCE: for --json. */
static int
exec_status (SandboxInstance   *instance,
             SandboxExecResult *result,
             GError            *error)
{
  int status;

  if (interrupt_signal != 0)
    return 128 + interrupt_signal;
  if (result == NULL)
    return report_error (error);

  status = sandbox_exec_result_get_exit_code (result);
  if (!sandbox_exec_result_get_timed_out (result))
    exec_term_signal = sandbox_exec_result_get_term_signal (result);
  if (sandbox_exec_result_get_timed_out (result))
    {
      status = EXIT_TIMED_OUT;
      if (!opt_json)
        g_printerr (_("%s: the command timed out after %g seconds and was killed.\n"),
                    PRGNAME, opt_cmd_timeout);
    }

  if (opt_json)
    print_result_json (instance, result, status);
  return status;
}

/* ------------------------------------------------------------------ */
/* Subcommands                                                         */

static int
cmd_backends (const Command *self,
              int            argc,
              char         **argv);
static int
cmd_create (const Command *self,
            int            argc,
            char         **argv);
static int
cmd_exec (const Command *self,
          int            argc,
          char         **argv);
static int
cmd_cp (const Command *self,
        int            argc,
        char         **argv);
static int
cmd_ls (const Command *self,
        int            argc,
        char         **argv);
static int
cmd_rm (const Command *self,
        int            argc,
        char         **argv);
static int
cmd_run (const Command *self,
         int            argc,
         char         **argv);
static int
cmd_gc (const Command *self,
        int            argc,
        char         **argv);
static int
cmd_image (const Command *self,
           int            argc,
           char         **argv);
static int
cmd_port_url (const Command *self,
              int            argc,
              char         **argv);
static int
cmd_volume (const Command *self,
            int            argc,
            char         **argv);
static int
cmd_pause (const Command *self,
           int            argc,
           char         **argv);
static int
cmd_metrics (const Command *self,
             int            argc,
             char         **argv);

static const Command commands[] = {
  { "backends", N_("- list the backends"),
    N_("List the backends and whether each is ready to use here."), cmd_backends },
  { "create", N_("- create a sandbox"),
    N_("Create a sandbox and print its id."), cmd_create },
  { "exec", N_("ID -- COMMAND [ARG…]"),
    N_("Run a command in a sandbox, streaming its output, and exit with its status."), cmd_exec },
  { "cp", N_("SOURCE DESTINATION"),
    N_("Copy a file or directory into or out of a sandbox.\n\n"
       "One of SOURCE and DESTINATION is a local path, the other ID:/absolute/path.\n"
       "A DESTINATION ending in “/”, or a local DESTINATION that is a directory,\n"
       "receives the source under its own name."), cmd_cp },
  { "ls", N_("- list sandboxes"),
    N_("List the sandboxes of the backend: ID, STATE and LABELS."), cmd_ls },
  { "rm", N_("ID…"),
    N_("Remove sandboxes and everything in them."), cmd_rm },
  { "run", N_("-- COMMAND [ARG…]"),
    N_("Create a sandbox, run a command in it, and remove it, also when interrupted.\n"
       "Exits with the command's status."), cmd_run },
  { "gc", N_("- remove labelled sandboxes"),
    N_("Remove every sandbox of the backend that carries all the given labels."), cmd_gc },
  { "image", N_("import FILE|DIR [--name NAME:TAG] | ls | rm REF… | inspect REF"),
    N_("Manage the OCI images of the local backend.\n\n"
       "import  import an OCI image layout (directory or tar) or a docker save archive\n"
       "ls      list the imported images: ID, NAMES and SIZE\n"
       "rm      remove a name, or an image that no running sandbox uses\n"
       "inspect print an image's layers and configuration as JSON\n\n"
       "The store is $SANDBOX_IMAGE_STORE, else “images” beside the local sandboxes'\n"
       "directory. A sandbox runs an image with --image NAME:TAG."), cmd_image },
  { "port-url", N_("ID PORT"),
    N_("Print the URL at which a server listening on PORT in the sandbox is reached\n"
       "from outside, and the token to send with each request where the backend\n"
       "needs one (Daytona: the x-daytona-preview-token header)."), cmd_port_url },
  { "volume", N_("create NAME… | ls | rm NAME…"),
    N_("Manage the backend's named volumes: storage that outlives sandboxes.\n\n"
       "create  create volumes (an existing one is kept)\n"
       "ls      list the volumes' names\n"
       "rm      remove volumes and every file in them\n\n"
       "A sandbox mounts a volume with --volume NAME:PATH."), cmd_volume },
  { "pause", N_("ID…"),
    N_("Pause sandboxes: their processes stop, their files are kept, and they run\n"
       "no commands until resumed (on Daytona: stop)."), cmd_pause },
  { "resume", N_("ID…"),
    N_("Let paused sandboxes run again (on Daytona: start)."), cmd_pause },
  { "metrics", N_("ID"),
    N_("Print what a sandbox uses: processor, memory and disk."), cmd_metrics },
};

static const Command *
find_command (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static void
add_capabilities_json (JsonBuilder                *builder,
                       SandboxBackendCapabilities  capabilities)
{
  GFlagsClass *klass = g_type_class_ref (SANDBOX_TYPE_BACKEND_CAPABILITIES);

  json_builder_begin_array (builder);
  for (guint i = 0; i < klass->n_values; i++)
    if (klass->values[i].value != 0 && (capabilities & klass->values[i].value) == klass->values[i].value)
      {
        g_autofree char *name = g_ascii_strup (klass->values[i].value_nick, -1);

        g_strdelimit (name, "-", '_');
        json_builder_add_string_value (builder, name);
      }
  json_builder_end_array (builder);
  g_type_class_unref (klass);
}

static int
cmd_backends (const Command *self,
              int            argc,
              char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  const char *chosen = opt_backend;
  gsize width = g_utf8_strlen (_("NAME"), -1);

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error ("backends", error->message);
  if (chosen == NULL || *chosen == '\0')
    chosen = g_getenv ("SANDBOX_BACKEND");
  if (chosen == NULL || *chosen == '\0')
    chosen = "local";

  /* Named backends only: the others are not loaded (listing them all loads
   * the remote backends' module). */
  if (argc > 1)
    {
      for (int i = 1; i < argc; i++)
        {
          g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name (argv[i], &error);

          if (backend == NULL &&
              g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_UNKNOWN_BACKEND))
            return report_error (error);
          g_clear_error (&error);
        }
      names = g_strdupv (argv + 1);
    }
  else
    names = sandbox_backend_list_names ();
  for (guint i = 0; names[i] != NULL; i++)
    width = MAX (width, (gsize) g_utf8_strlen (names[i], -1) + 2);

  if (opt_json)
    json_builder_begin_array (builder);
  else
    {
      print_cell (_("NAME"), width, FALSE);
      print_cell (_("STATUS"), 0, TRUE);
    }

  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autoptr(SandboxBackend) backend = NULL;
      g_autoptr(GError) backend_error = NULL;
      gboolean ready;
      gboolean is_default = strcmp (names[i], chosen) == 0;

      backend = sandbox_backend_new_for_name (names[i], &backend_error);
      ready = backend != NULL && sandbox_backend_check_configured (backend, &backend_error);

      if (opt_json)
        {
          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "name");
          json_builder_add_string_value (builder, names[i]);
          json_builder_set_member_name (builder, "default");
          json_builder_add_boolean_value (builder, is_default);
          json_builder_set_member_name (builder, "configured");
          json_builder_add_boolean_value (builder, ready);
          json_builder_set_member_name (builder, "message");
          if (ready)
            json_builder_add_null_value (builder);
          else
            json_builder_add_string_value (builder, backend_error->message);
          /* What it can do, as Sandbox.BackendCapabilities' names (such as
           * SHARES_HOST_FS): a script (the Metaflow extension) need not load
           * the library to ask. */
          json_builder_set_member_name (builder, "capabilities");
          if (backend == NULL)
            json_builder_add_null_value (builder);
          else
            add_capabilities_json (builder, sandbox_backend_get_capabilities (backend));
          /* Where its sandboxes work without a workdir in their spec (null:
           * only a sandbox can tell). */
          json_builder_set_member_name (builder, "workdir");
          {
            g_autofree char *workdir = backend ? sandbox_backend_dup_default_workdir (backend) : NULL;

            if (workdir != NULL)
              json_builder_add_string_value (builder, workdir);
            else
              json_builder_add_null_value (builder);
          }
          json_builder_end_object (builder);
        }
      else
        {
          g_autofree char *name = g_strdup_printf ("%s%s", names[i], is_default ? " *" : "");
          g_autofree char *status = NULL;

          if (ready)
            status = g_strdup (_("ready"));
          else
            status = g_strdup_printf (_("not configured: %s"), backend_error->message);
          print_cell (name, width, FALSE);
          /* The library's own words, as they are. */
          puts (status);
        }
    }

  if (opt_json)
    {
      g_autoptr(JsonNode) root = NULL;

      json_builder_end_array (builder);
      root = json_builder_get_root (builder);
      print_json (root);
    }
  return EXIT_OK;
}

static int
cmd_create (const Command *self,
            int            argc,
            char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GAsyncResult) res = NULL;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, spec_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc > 1)
    return usage_error (self->name, _("create takes no arguments."));

  if ((spec = spec_from_options (&error)) == NULL)
    return usage_error (self->name, error->message);
  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);

  catch_signals ();
  sandbox_backend_create_async (backend, spec, interrupt_cancellable, store_result, &res);
  instance = sandbox_backend_create_finish (backend, await_result (&res), &error);
  if (instance != NULL && interrupt_signal != 0)
    {
      /* Interrupted too late to stop the creation: undo it. */
      g_autoptr(GAsyncResult) destroyed = NULL;

      cleanup_id = g_strdup (sandbox_instance_get_id (instance));
      sandbox_instance_destroy_async (instance, NULL, store_result, &destroyed);
      sandbox_instance_destroy_finish (instance, await_result (&destroyed), NULL);
    }
  if (interrupt_signal != 0)
    return 128 + interrupt_signal;
  if (instance == NULL)
    return report_error (error);

  if (opt_json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      add_instance_json (builder, instance);
      root = json_builder_get_root (builder);
      print_json (root);
    }
  else
    {
      fputs (sandbox_instance_get_id (instance), stdout);
      fputc ('\n', stdout);
    }
  return EXIT_OK;
}

static SandboxInstance *
find_instance (SandboxBackend  *backend,
               const char      *id,
               GError         **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  g_autoptr(GError) local_error = NULL;
  SandboxInstance *instance;
  const char *env_backend = g_getenv ("SANDBOX_BACKEND");

  sandbox_backend_get_instance_async (backend, id, interrupt_cancellable, store_result, &res);
  instance = sandbox_backend_get_instance_finish (backend, await_result (&res), &local_error);
  if (instance != NULL)
    return instance;
  /* The id may be another backend's: the user did not choose one. */
  if (g_error_matches (local_error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND) &&
      opt_backend == NULL && (env_backend == NULL || *env_backend == '\0'))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                   _("%s If it is a sandbox of another backend, name it with --backend "
                     "(or set SANDBOX_BACKEND)."),
                   local_error->message);
      return NULL;
    }
  g_propagate_error (error, g_steal_pointer (&local_error));
  return NULL;
}

static int
cmd_exec (const Command *self,
          int            argc,
          char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) command_argv = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxCommand) command = NULL;
  const char *id;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, command_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, &command_argv, &error))
    return usage_error (self->name, error->message);

  if (argc < 2)
    return usage_error (self->name, _("exec needs the id of a sandbox and a command."));
  id = argv[1];
  if (command_argv == NULL)
    command_argv = g_strdupv (argv + 2);
  else if (argc > 2)
    return usage_error (self->name, _("exec takes one sandbox id before “--”."));
  if (command_argv[0] == NULL)
    return usage_error (self->name, _("exec needs a command to run after the sandbox id."));

  if ((command = command_from_options (command_argv, &error)) == NULL)
    return usage_error (self->name, error->message);
  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);

  catch_signals ();
  if ((instance = find_instance (backend, id, &error)) == NULL)
    return interrupt_signal != 0 ? 128 + interrupt_signal : report_error (error);
  return exec_in (instance, command);
}

/* ------------------------------------------------------------------ */
/* cp: progress on a terminal                                          */

/* A copy that takes longer than this shows its progress. */
#define PROGRESS_DELAY_US  (2 * G_USEC_PER_SEC)
#define PROGRESS_PERIOD_MS 250

typedef struct
{
  SandboxInstance *instance;
  gint64           start;       /* monotonic µs */
  gint64           local_total; /* the upload's size, counted here; -1 if unknown */
  gboolean         shown;       /* a progress line is on the terminal */
  gsize            width;       /* of the line last drawn */
} Progress;

/* The bytes of the regular files at PATH (a file or a tree), as the copy
 * will move them; symbolic links and special files count nothing. */
static gint64
local_size (const char *path)
{
  GStatBuf st;
  gint64 total = 0;

  if (g_lstat (path, &st) != 0)
    return 0;
  if (S_ISREG (st.st_mode))
    return st.st_size;
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          total += local_size (child);
        }
    }
  return total;
}

static void
progress_draw (Progress *progress,
               gboolean  last)
{
  guint64 done;
  gint64 total;
  double seconds = (g_get_monotonic_time () - progress->start) / (double) G_USEC_PER_SEC;
  g_autofree char *done_str = NULL;
  g_autofree char *rate_str = NULL;
  g_autofree char *line = NULL;
  gsize width;

  sandbox_instance_get_transfer_progress (progress->instance, &done, &total);
  if (total < 0)
    total = progress->local_total;
  if (last && total >= 0 && done < (guint64) total)
    done = total;  /* a backend that reports nothing (or only part) */
  done_str = g_format_size (done);
  rate_str = g_format_size (seconds > 0.05 ? (guint64) (done / seconds) : 0);
  if (total >= 0)
    {
      g_autofree char *total_str = g_format_size (total);
      int percent = total > 0 ? (int) MIN (done * 100 / (guint64) total, 100) : 100;

      /* TRANSLATORS: cp's progress: bytes copied, of the size of the copy
       * (percent), and the rate, as in “12.5 MB of 100.0 MB (12%), 4.2 MB/s”. */
      line = g_strdup_printf (_("%s of %s (%d%%), %s/s"), done_str, total_str, percent, rate_str);
    }
  else
    /* TRANSLATORS: cp's progress when the size of the copy is unknown:
     * bytes copied and the rate, as in “12.5 MB, 4.2 MB/s”. */
    line = g_strdup_printf (_("%s, %s/s"), done_str, rate_str);

  /* Over the previous line, padded so that nothing of a longer one stays. */
  width = g_utf8_strlen (line, -1);
  g_printerr ("\r%s%*s%s", line, (int) (progress->width > width ? progress->width - width : 0), "",
              last ? "\n" : "");
  progress->width = width;
  progress->shown = !last;
}

static gboolean
progress_tick (gpointer user_data)
{
  Progress *progress = user_data;

  if (progress->shown || g_get_monotonic_time () - progress->start >= PROGRESS_DELAY_US)
    progress_draw (progress, FALSE);
  return G_SOURCE_CONTINUE;
}

/* Shows the progress of the copy on INSTANCE that is starting (of
 * LOCAL_SOURCE for an upload) on stderr, updated in place, once it has
 * taken PROGRESS_DELAY_US (at once with --progress). Returns the timeout
 * to give progress_end(), or 0 when the copy is quiet: stderr is not a
 * terminal, or --json. */
static guint
progress_begin (Progress        *progress,
                SandboxInstance *instance,
                const char      *local_source)
{
  progress->instance = instance;
  progress->start = g_get_monotonic_time ();
  progress->local_total = local_source != NULL ? local_size (local_source) : -1;
  progress->shown = FALSE;
  progress->width = 0;
  if (opt_json || !isatty (STDERR_FILENO))
    return 0;
  if (opt_progress)
    progress_draw (progress, FALSE);
  return g_timeout_add (PROGRESS_PERIOD_MS, progress_tick, progress);
}

/* Ends the line of a copy that showed progress: complete after a
 * success, as far as it came otherwise. */
static void
progress_end (Progress *progress,
              guint     source_id,
              gboolean  ok)
{
  if (source_id == 0)
    return;
  g_source_remove (source_id);
  if (!progress->shown)
    return;
  progress_draw (progress, ok);
  if (!ok)
    g_printerr ("\n");
  progress->shown = FALSE;
}

/* Splits “ID:/path” into its parts. Anything else is a local path. */
static gboolean
parse_remote (const char  *arg,
              char       **id,
              const char **path)
{
  const char *colon = strchr (arg, ':');

  if (colon == NULL || colon == arg)
    return FALSE;
  for (const char *p = arg; p < colon; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  *id = g_strndup (arg, colon - arg);
  *path = colon + 1;
  return TRUE;
}

static int
cmd_cp (const Command *self,
        int            argc,
        char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autofree char *src_id = NULL;
  g_autofree char *dst_id = NULL;
  g_autofree char *destination_str = NULL;
  const char *src_path = NULL, *dst_path = NULL;
  gboolean src_remote, dst_remote;
  const char *remote_path;
  Progress progress;
  guint progress_id;
  gboolean ok;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, cp_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc != 3)
    return usage_error (self->name, _("cp needs a SOURCE and a DESTINATION."));

  src_remote = parse_remote (argv[1], &src_id, &src_path);
  dst_remote = parse_remote (argv[2], &dst_id, &dst_path);
  if (src_remote == dst_remote)
    return usage_error (self->name,
                        _("cp copies between this machine and a sandbox: exactly one of "
                          "SOURCE and DESTINATION must be ID:/path (use ./NAME for a "
                          "local path with a colon)."));
  remote_path = src_remote ? src_path : dst_path;
  if (!g_path_is_absolute (remote_path))
    return usage_error (self->name,
                        _("The path in the sandbox must be absolute, such as ID:/workspace/file."));

  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);
  if ((instance = find_instance (backend, src_remote ? src_id : dst_id, &error)) == NULL)
    return report_error (error);

  catch_signals ();
  if (dst_remote)
    {
      g_autoptr(GFile) source = g_file_new_for_path (argv[1]);

      if (g_str_has_suffix (dst_path, "/"))
        {
          g_autofree char *base = g_file_get_basename (source);
          destination_str = g_build_filename (dst_path, base, NULL);
        }
      else
        destination_str = g_strdup (dst_path);
      progress_id = progress_begin (&progress, instance, argv[1]);
      sandbox_instance_upload_async (instance, source, destination_str, interrupt_cancellable,
                                     store_result, &res);
      ok = sandbox_instance_upload_finish (instance, await_result (&res), &error);
    }
  else
    {
      g_autoptr(GFile) destination = NULL;

      if (g_str_has_suffix (argv[2], "/") || g_file_test (argv[2], G_FILE_TEST_IS_DIR))
        {
          g_autofree char *base = g_path_get_basename (src_path);
          destination_str = g_build_filename (argv[2], base, NULL);
        }
      else
        destination_str = g_strdup (argv[2]);
      destination = g_file_new_for_path (destination_str);
      progress_id = progress_begin (&progress, instance, NULL);
      sandbox_instance_download_async (instance, src_path, destination, interrupt_cancellable,
                                       store_result, &res);
      ok = sandbox_instance_download_finish (instance, await_result (&res), &error);
    }
  progress_end (&progress, progress_id, ok);

  if (!ok)
    return interrupt_signal != 0 ? 128 + interrupt_signal : report_error (error);
  if (opt_json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, sandbox_instance_get_id (instance));
      json_builder_set_member_name (builder, "direction");
      json_builder_add_string_value (builder, dst_remote ? "upload" : "download");
      json_builder_set_member_name (builder, "source");
      json_builder_add_string_value (builder, src_remote ? src_path : argv[1]);
      json_builder_set_member_name (builder, "destination");
      json_builder_add_string_value (builder, destination_str);
      json_builder_end_object (builder);
      root = json_builder_get_root (builder);
      print_json (root);
    }
  return EXIT_OK;
}

static gint
compare_instances (gconstpointer a,
                   gconstpointer b)
{
  return strcmp (sandbox_instance_get_id ((SandboxInstance *) a),
                 sandbox_instance_get_id ((SandboxInstance *) b));
}

static GList *
list_instances (SandboxBackend  *backend,
                GHashTable      *labels,
                GError         **error)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) local_error = NULL;
  GList *list;

  sandbox_backend_list_async (backend, labels, NULL, store_result, &res);
  list = sandbox_backend_list_finish (backend, await_result (&res), &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  return g_list_sort (list, compare_instances);
}

static int
cmd_ls (const Command *self,
        int            argc,
        char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(GHashTable) labels = NULL;
  g_autolist(SandboxInstance) instances = NULL;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, filter_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc > 1)
    return usage_error (self->name, _("ls takes no arguments; filter with --label."));
  if ((labels = labels_from_options (&error)) == NULL)
    return usage_error (self->name, error->message);

  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);
  instances = list_instances (backend, labels, &error);
  if (error != NULL)
    return report_error (error);

  if (opt_json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_array (builder);
      for (GList *l = instances; l != NULL; l = l->next)
        add_instance_json (builder, l->data);
      json_builder_end_array (builder);
      root = json_builder_get_root (builder);
      print_json (root);
    }
  else if (instances != NULL)
    {
      gsize id_width = g_utf8_strlen (_("ID"), -1);
      gsize state_width = g_utf8_strlen (_("STATE"), -1);

      for (GList *l = instances; l != NULL; l = l->next)
        {
          id_width = MAX (id_width, cell_width (sandbox_instance_get_id (l->data)));
          state_width = MAX (state_width,
                             strlen (state_name (sandbox_instance_get_state (l->data))));
        }

      print_cell (_("ID"), id_width, FALSE);
      print_cell (_("STATE"), state_width, FALSE);
      print_cell (_("LABELS"), 0, TRUE);
      for (GList *l = instances; l != NULL; l = l->next)
        {
          g_autofree char *text = format_labels (sandbox_instance_get_labels (l->data));

          print_cell (sandbox_instance_get_id (l->data), id_width, FALSE);
          print_cell (state_name (sandbox_instance_get_state (l->data)), state_width, FALSE);
          print_cell (text, 0, TRUE);
        }
    }
  return EXIT_OK;
}

static gboolean
destroy_instance (SandboxInstance  *instance,
                  GError          **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  sandbox_instance_destroy_async (instance, NULL, store_result, &res);
  return sandbox_instance_destroy_finish (instance, await_result (&res), error);
}

static int
cmd_rm (const Command *self,
        int            argc,
        char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  int status = EXIT_OK;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, rm_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc < 2)
    return usage_error (self->name, _("rm needs the id of at least one sandbox."));

  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);

  for (int i = 1; i < argc; i++)
    {
      g_autoptr(SandboxInstance) instance = NULL;
      g_autoptr(GError) rm_error = NULL;

      instance = find_instance (backend, argv[i], &rm_error);
      if (instance != NULL && destroy_instance (instance, &rm_error))
        {
          g_print (_("Removed %s\n"), argv[i]);
          continue;
        }
      if (opt_force && g_error_matches (rm_error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND))
        continue;
      /* Keep going; end with the status of the first failure. */
      if (status == EXIT_OK)
        status = report_error (rm_error);
      else
        report_error (rm_error);
    }
  return status;
}

/* ------------------------------------------------------------------ */
/* pause, resume, metrics                                              */

static gboolean
pause_or_resume (SandboxInstance  *instance,
                 gboolean          pause,
                 GError          **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  if (pause)
    {
      sandbox_instance_pause_async (instance, NULL, store_result, &res);
      return sandbox_instance_pause_finish (instance, await_result (&res), error);
    }
  sandbox_instance_resume_async (instance, NULL, store_result, &res);
  return sandbox_instance_resume_finish (instance, await_result (&res), error);
}

static int
cmd_pause (const Command *self,
           int            argc,
           char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  gboolean pause = strcmp (self->name, "pause") == 0;
  int status = EXIT_OK;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc < 2)
    return usage_error (self->name, pause ? _("pause needs the id of at least one sandbox.")
                                          : _("resume needs the id of at least one sandbox."));

  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);

  for (int i = 1; i < argc; i++)
    {
      g_autoptr(SandboxInstance) instance = NULL;
      g_autoptr(GError) op_error = NULL;

      instance = find_instance (backend, argv[i], &op_error);
      if (instance != NULL && pause_or_resume (instance, pause, &op_error))
        {
          if (pause)
            g_print (_("Paused %s\n"), argv[i]);
          else
            g_print (_("Resumed %s\n"), argv[i]);
          continue;
        }
      if (status == EXIT_OK)
        status = report_error (op_error);
      else
        report_error (op_error);
    }
  return status;
}

static char *
format_bytes (guint64 bytes)
{
  if (bytes == 0)
    return g_strdup ("-");
  return g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

static int
cmd_metrics (const Command *self,
             int            argc,
             char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxMetrics) metrics = NULL;
  g_autoptr(GAsyncResult) res = NULL;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc != 2)
    return usage_error (self->name, _("metrics needs the id of one sandbox."));

  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);
  if ((instance = find_instance (backend, argv[1], &error)) == NULL)
    return report_error (error);
  sandbox_instance_get_metrics_async (instance, NULL, store_result, &res);
  metrics = sandbox_instance_get_metrics_finish (instance, await_result (&res), &error);
  if (metrics == NULL)
    return report_error (error);

  if (opt_json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, sandbox_instance_get_id (instance));
      json_builder_set_member_name (builder, "cpu_percent");
      if (sandbox_metrics_get_cpu_percent (metrics) >= 0)
        json_builder_add_double_value (builder, sandbox_metrics_get_cpu_percent (metrics));
      else
        json_builder_add_null_value (builder);
      json_builder_set_member_name (builder, "cpu_seconds");
      if (sandbox_metrics_get_cpu_seconds (metrics) >= 0)
        json_builder_add_double_value (builder, sandbox_metrics_get_cpu_seconds (metrics));
      else
        json_builder_add_null_value (builder);
      json_builder_set_member_name (builder, "cpu_count");
      json_builder_add_int_value (builder, sandbox_metrics_get_cpu_count (metrics));
      json_builder_set_member_name (builder, "memory_used");
      json_builder_add_int_value (builder, (gint64) sandbox_metrics_get_memory_used (metrics));
      json_builder_set_member_name (builder, "memory_total");
      json_builder_add_int_value (builder, (gint64) sandbox_metrics_get_memory_total (metrics));
      json_builder_set_member_name (builder, "disk_used");
      json_builder_add_int_value (builder, (gint64) sandbox_metrics_get_disk_used (metrics));
      json_builder_set_member_name (builder, "disk_total");
      json_builder_add_int_value (builder, (gint64) sandbox_metrics_get_disk_total (metrics));
      json_builder_end_object (builder);
      root = json_builder_get_root (builder);
      print_json (root);
    }
  else
    {
      g_autofree char *mem_used = format_bytes (sandbox_metrics_get_memory_used (metrics));
      g_autofree char *mem_total = format_bytes (sandbox_metrics_get_memory_total (metrics));
      g_autofree char *disk_used = format_bytes (sandbox_metrics_get_disk_used (metrics));
      g_autofree char *disk_total = format_bytes (sandbox_metrics_get_disk_total (metrics));
      g_autofree char *cpu = NULL;

      if (sandbox_metrics_get_cpu_percent (metrics) >= 0)
        cpu = g_strdup_printf (_("%.1f%% of %u processors"), sandbox_metrics_get_cpu_percent (metrics),
                               sandbox_metrics_get_cpu_count (metrics));
      else if (sandbox_metrics_get_cpu_seconds (metrics) >= 0)
        cpu = g_strdup_printf (_("%.2f s used, %u processors"), sandbox_metrics_get_cpu_seconds (metrics),
                               sandbox_metrics_get_cpu_count (metrics));
      else
        cpu = g_strdup_printf (_("%u processors"), sandbox_metrics_get_cpu_count (metrics));
      g_print (_("CPU:    %s\n"), cpu);
      g_print (_("Memory: %s of %s\n"), mem_used, mem_total);
      g_print (_("Disk:   %s of %s\n"), disk_used, disk_total);
    }
  return EXIT_OK;
}

static int
cmd_run (const Command *self,
         int            argc,
         char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) command_argv = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = NULL;
  g_autoptr(SandboxCommand) command = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) destroy_error = NULL;
  int status;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, spec_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, command_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, run_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, &command_argv, &error))
    return usage_error (self->name, error->message);

  if (command_argv == NULL)
    command_argv = g_strdupv (argv + 1);
  else if (argc > 1)
    return usage_error (self->name, _("run takes no arguments before “--”."));
  if (command_argv[0] == NULL && opt_image != NULL && *opt_image != '\0' &&
      g_strcmp0 (opt_image, "host") != 0 && !g_path_is_absolute (opt_image))
    {
      /* The image's Entrypoint and Cmd, as a container runtime would. */
      g_autoptr(SandboxImageStore) store = sandbox_image_store_new (NULL);
      g_autoptr(SandboxImage) image = sandbox_image_store_lookup (store, opt_image, NULL, &error);
      g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

      if (image == NULL)
        return report_error (error);
      g_strv_builder_addv (builder, (const char **) sandbox_image_get_entrypoint (image));
      g_strv_builder_addv (builder, (const char **) sandbox_image_get_cmd (image));
      g_strfreev (command_argv);
      command_argv = g_strv_builder_end (builder);
      if (command_argv[0] == NULL)
        return usage_error (self->name, _("The image has neither Entrypoint nor Cmd: give a "
                                          "command to run, after “--”."));
    }
  if (command_argv[0] == NULL)
    return usage_error (self->name, _("run needs a command to run, after “--”."));
  /* Not a name, it would be dropped (empty) or fail the command's
   * environment (with “=”) after the sandbox was made. */
  if (opt_id_env != NULL && (*opt_id_env == '\0' || strchr (opt_id_env, '=') != NULL))
    {
      g_autofree char *message =
        g_strdup_printf (_("--id-env needs the name of an environment variable, such as "
                           "SANDBOX_ID (not empty, without “=”), not “%s”."), opt_id_env);

      return usage_error (self->name, message);
    }

  if ((spec = spec_from_options (&error)) == NULL ||
      (command = command_from_options (command_argv, &error)) == NULL)
    return usage_error (self->name, error->message);
  /* The sandbox is this command's alone: it ends with it, even when it is
   * killed before it could destroy the sandbox. */
  sandbox_spec_set_die_with_owner (spec, TRUE);
  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);

  catch_signals ();
  if (!opt_json)
    {
      /* The sandbox is the command's alone: the backend may start it with
       * the command (sandbox_backend_run), which saves round trips. (--json
       * prints the instance, so it takes the long way.) */
      g_autoptr(SandboxExecResult) result = NULL;
      guint tty_sources[2] = { 0, 0 };

      sandbox_command_set_id_env (command, opt_id_env);
      run_command = command;
      fflush (stdout);
      if (sandbox_command_get_tty (command))
        tty_connect (command, tty_sources);
      sandbox_backend_run_async (backend, spec, command, interrupt_cancellable, store_result, &res);
      await_result (&res);
      if (sandbox_command_get_tty (command))
        tty_disconnect (tty_sources);
      result = sandbox_backend_run_finish (backend, res, &error);
      if (interrupt_signal != 0 && sandbox_command_get_sandbox_id (command) != NULL)
        g_printerr (_("%s: interrupted (signal %d): destroying sandbox %s.\n"),
                    PRGNAME, interrupt_signal, sandbox_command_get_sandbox_id (command));
      status = exec_status (NULL, result, error);
      run_command = NULL;
      g_clear_pointer (&cleanup_id, g_free);
      goto done;
    }
  sandbox_backend_create_async (backend, spec, interrupt_cancellable, store_result, &res);
  instance = sandbox_backend_create_finish (backend, await_result (&res), &error);
  if (instance == NULL)
    return interrupt_signal != 0 ? 128 + interrupt_signal : report_error (error);

  /* From here on the sandbox is removed whatever happens. */
  cleanup_id = g_strdup (sandbox_instance_get_id (instance));
  if (opt_id_env != NULL && *opt_id_env != '\0')
    sandbox_command_set_env (command, opt_id_env, cleanup_id);
  if (interrupt_signal != 0)
    status = 128 + interrupt_signal;
  else
    status = exec_in (instance, command);

  if (interrupt_signal != 0)
    g_printerr (_("%s: interrupted (signal %d): destroying sandbox %s.\n"),
                PRGNAME, interrupt_signal, cleanup_id);
  if (!destroy_instance (instance, &destroy_error))
    g_printerr (_("%s: could not remove sandbox %s: %s\n"),
                PRGNAME, cleanup_id, destroy_error->message);
  g_clear_pointer (&cleanup_id, g_free);

done:
  if (interrupt_signal != 0)
    return 128 + interrupt_signal;
  /* Only a signal that ends a process: a stop signal would stop sandboxctl
   * for good (the library reports no other; a remote sandbox's word
   * passes through it). */
  if (opt_raise_signal && exec_term_signal > 0 && exec_term_signal <= SIGRTMAX &&
      exec_term_signal != SIGSTOP && exec_term_signal != SIGTSTP && exec_term_signal != SIGTTIN &&
      exec_term_signal != SIGTTOU && exec_term_signal != SIGCONT && exec_term_signal != SIGCHLD &&
      exec_term_signal != SIGURG && exec_term_signal != SIGWINCH)
    {
      /* As if we were the command: a parent told "killed by SIGSEGV" can
       * say so (no core file of ours, though). */
      struct rlimit no_core = { 0, 0 };
      sigset_t set;

      /* raise() does not return: nothing below runs the autoptr cleanups. */
      g_clear_object (&instance);
      g_clear_object (&command);
      g_clear_object (&spec);
      g_clear_object (&backend);
      g_clear_object (&res);
      g_clear_pointer (&command_argv, g_strfreev);
      g_clear_pointer (&context, g_option_context_free);
      fflush (stdout);
      setrlimit (RLIMIT_CORE, &no_core);
      signal (exec_term_signal, SIG_DFL);
      sigemptyset (&set);
      sigaddset (&set, exec_term_signal);
      sigprocmask (SIG_UNBLOCK, &set, NULL);
      raise (exec_term_signal);
    }
  return status;
}

static int
cmd_gc (const Command *self,
        int            argc,
        char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(GHashTable) labels = NULL;
  g_autolist(SandboxInstance) instances = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  int status = EXIT_OK;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, filter_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, gc_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc > 1)
    return usage_error (self->name, _("gc takes no arguments; select sandboxes with --label."));
  if ((labels = labels_from_options (&error)) == NULL)
    return usage_error (self->name, error->message);
  /* Either would be ignored: --all removes every sandbox, --label some. */
  if (g_hash_table_size (labels) > 0 && opt_all)
    return usage_error (self->name,
                        _("gc takes --label KEY=VALUE (the sandboxes with those labels) or "
                          "--all (every sandbox of the backend), not both."));
  if (g_hash_table_size (labels) == 0 && !opt_all)
    return usage_error (self->name,
                        _("gc without --label would remove every sandbox of the backend; "
                          "give --label KEY=VALUE, or --all if that is what you mean."));

  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);
  instances = list_instances (backend, labels, &error);
  if (error != NULL)
    return report_error (error);

  json_builder_begin_array (builder);
  for (GList *l = instances; l != NULL; l = l->next)
    {
      g_autoptr(GError) rm_error = NULL;

      if (!destroy_instance (l->data, &rm_error))
        {
          if (status == EXIT_OK)
            status = report_error (rm_error);
          else
            report_error (rm_error);
          continue;
        }
      if (opt_json)
        add_instance_json (builder, l->data);
      else
        g_print (_("Removed %s\n"), sandbox_instance_get_id (l->data));
    }
  json_builder_end_array (builder);

  if (opt_json)
    {
      g_autoptr(JsonNode) root = json_builder_get_root (builder);
      print_json (root);
    }
  return status;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static void
print_main_help (FILE *out)
{
  fprintf (out, _("Usage:\n  %s [--backend NAME] COMMAND [OPTION…]\n\n"), PRGNAME);
  fputs (_("Run programs in isolated sandboxes (libsandbox).\n\nCommands:\n"), out);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      const char *summary = _(commands[i].summary);
      const char *nl = strchr (summary, '\n');

      fprintf (out, "  %-9s %.*s\n", commands[i].name,
               nl != NULL ? (int) (nl - summary) : (int) strlen (summary), summary);
    }
  fprintf (out, _("\nUse “%s COMMAND --help” for the options of a command.\n"
                  "The backend is --backend NAME, else $SANDBOX_BACKEND, else “local”.\n\n"),
           PRGNAME);
  fputs (exit_status_help (), out);
  fputs ("\n", out);
}

/* SANDBOX_LOCALEDIR overrides the installed catalogs (the library honours
 * it too); tests/i18n/test-translations.sh points it at the build tree's. */
static const char *
sandboxctl_localedir (void)
{
  const char *dir = g_getenv ("SANDBOX_LOCALEDIR");

  return dir != NULL && *dir != '\0' ? dir : LOCALEDIR;
}

int
main (int    argc,
      char **argv)
{
  g_auto(GStrv) args = NULL;
  const Command *command;
  int first = 1;
  int status;

  /* The categories sandboxctl uses (messages, their character set, the
   * numbers in sizes): loading all twelve took a tenth of a millisecond of
   * every run. */
  setlocale (LC_CTYPE, "");
  setlocale (LC_MESSAGES, "");
  setlocale (LC_NUMERIC, "");
  bindtextdomain (GETTEXT_PACKAGE, sandboxctl_localedir ());
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname (PRGNAME);

  /* Options before the subcommand: --backend, --json, --help, --version. */
  while (first < argc && argv[first][0] == '-')
    {
      const char *arg = argv[first];

      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0 || strcmp (arg, "-?") == 0)
        {
          print_main_help (stdout);
          return EXIT_OK;
        }
      else if (strcmp (arg, "--version") == 0)
        {
          g_print ("%s %s\n", PRGNAME, PACKAGE_VERSION);
          return EXIT_OK;
        }
      else if (strcmp (arg, "--json") == 0)
        opt_json = TRUE;
      else if (g_str_has_prefix (arg, "--backend="))
        opt_backend = g_strdup (arg + strlen ("--backend="));
      else if ((strcmp (arg, "--backend") == 0 || strcmp (arg, "-b") == 0) && first + 1 < argc)
        opt_backend = g_strdup (argv[++first]);
      else
        {
          g_autofree char *message = g_strdup_printf (_("Unknown option %s"), arg);
          return usage_error (NULL, message);
        }
      first++;
    }

  if (first >= argc)
    {
      print_main_help (stderr);
      return EXIT_USAGE;
    }

  if (strcmp (argv[first], "help") == 0)
    {
      if (first + 1 >= argc)
        {
          print_main_help (stdout);
          return EXIT_OK;
        }
      /* “sandboxctl help run” is “sandboxctl run --help”. */
      if ((command = find_command (argv[first + 1])) == NULL)
        {
          g_autofree char *message = g_strdup_printf (_("Unknown command “%s”."), argv[first + 1]);
          return usage_error (NULL, message);
        }
      args = g_new0 (char *, 3);
      args[0] = g_strdup (command->name);
      args[1] = g_strdup ("--help");
      return command->run (command, 2, args);
    }

  if ((command = find_command (argv[first])) == NULL)
    {
      g_autofree char *message = g_strdup_printf (_("Unknown command “%s”."), argv[first]);
      return usage_error (NULL, message);
    }

  /* The subcommand parses a copy whose argv[0] is its own name. */
  args = g_strdupv (argv + first);
  status = command->run (command, argc - first, args);

  fflush (stdout);
  return status;
}

static void
add_image_json (JsonBuilder  *builder,
                SandboxImage *image)
{
  struct { const char *name; const char * const *values; } lists[] = {
    { "names", sandbox_image_get_names (image) },
    { "layers", sandbox_image_get_layers (image) },
    { "env", sandbox_image_get_env (image) },
    { "entrypoint", sandbox_image_get_entrypoint (image) },
    { "cmd", sandbox_image_get_cmd (image) },
  };

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, sandbox_image_get_id (image));
  json_builder_set_member_name (builder, "size");
  json_builder_add_int_value (builder, (gint64) sandbox_image_get_size (image));
  json_builder_set_member_name (builder, "rootfs");
  json_builder_add_string_value (builder, sandbox_image_get_rootfs (image));
  json_builder_set_member_name (builder, "workdir");
  json_builder_add_string_value (builder, sandbox_image_get_workdir (image));
  json_builder_set_member_name (builder, "user");
  json_builder_add_string_value (builder, sandbox_image_get_user (image));
  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    {
      json_builder_set_member_name (builder, lists[i].name);
      json_builder_begin_array (builder);
      for (guint j = 0; lists[i].values[j] != NULL; j++)
        json_builder_add_string_value (builder, lists[i].values[j]);
      json_builder_end_array (builder);
    }
  json_builder_end_object (builder);
}

static void
print_image_json (SandboxImage *image)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  add_image_json (builder, image);
  root = json_builder_get_root (builder);
  print_json (root);
}

static int
cmd_image (const Command *self,
           int            argc,
           char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxImageStore) store = NULL;
  const char *action;

  g_option_context_add_main_entries (context, image_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc < 2)
    return usage_error (self->name, _("image needs an action: import, ls, rm or inspect."));
  action = argv[1];
  /* It names an image being imported; ls, rm and inspect take references. */
  if (opt_name != NULL && strcmp (action, "import") != 0)
    return usage_error (self->name,
                        _("--name names the image that image import imports; image ls, rm "
                          "and inspect do not take it (rm and inspect take the image's "
                          "NAME:TAG as an argument)."));
  store = sandbox_image_store_new (NULL);

  if (strcmp (action, "import") == 0)
    {
      g_autoptr(GFile) source = NULL;
      g_autoptr(SandboxImage) image = NULL;

      if (argc != 3)
        return usage_error (self->name, _("image import takes one FILE or DIR."));
      source = g_file_new_for_commandline_arg (argv[2]);
      catch_signals ();
      image = sandbox_image_store_import (store, source, opt_name, interrupt_cancellable, &error);
      if (image == NULL)
        return interrupt_signal != 0 ? 128 + interrupt_signal : report_error (error);
      if (opt_json)
        print_image_json (image);
      else
        g_print ("%s\n", sandbox_image_get_id (image));
      return EXIT_OK;
    }
  else if (strcmp (action, "ls") == 0)
    {
      g_autoptr(GPtrArray) images = NULL;

      if (argc != 2)
        return usage_error (self->name, _("image ls takes no arguments."));
      images = sandbox_image_store_list (store, NULL, &error);
      if (images == NULL)
        return report_error (error);
      if (opt_json)
        {
          g_autoptr(JsonBuilder) builder = json_builder_new ();
          g_autoptr(JsonNode) root = NULL;

          json_builder_begin_array (builder);
          for (guint i = 0; i < images->len; i++)
            add_image_json (builder, g_ptr_array_index (images, i));
          json_builder_end_array (builder);
          root = json_builder_get_root (builder);
          print_json (root);
        }
      else if (images->len > 0)
        {
          print_cell (_("ID"), 19, FALSE);
          print_cell (_("SIZE"), 10, FALSE);
          print_cell (_("NAMES"), 0, TRUE);
          for (guint i = 0; i < images->len; i++)
            {
              SandboxImage *image = g_ptr_array_index (images, i);
              g_autofree char *id = g_strndup (sandbox_image_get_id (image), 19);
              g_autofree char *size = g_format_size (sandbox_image_get_size (image));
              g_autofree char *names = g_strjoinv (",", (char **) sandbox_image_get_names (image));

              print_cell (id, 19, FALSE);
              print_cell (size, 10, FALSE);
              print_cell (names, 0, TRUE);
            }
        }
      return EXIT_OK;
    }
  else if (strcmp (action, "rm") == 0)
    {
      int status = EXIT_OK;

      if (argc < 3)
        return usage_error (self->name, _("image rm needs at least one image."));
      for (int i = 2; i < argc; i++)
        {
          g_clear_error (&error);
          if (!sandbox_image_store_remove (store, argv[i], NULL, &error))
            status = report_error (error);
        }
      return status;
    }
  else if (strcmp (action, "inspect") == 0)
    {
      g_autoptr(SandboxImage) image = NULL;

      if (argc != 3)
        return usage_error (self->name, _("image inspect takes one image."));
      image = sandbox_image_store_lookup (store, argv[2], NULL, &error);
      if (image == NULL)
        return report_error (error);
      print_image_json (image);
      return EXIT_OK;
    }
  {
    g_autofree char *message = g_strdup_printf (_("Unknown image action “%s”; use import, ls, rm "
                                                  "or inspect."), action);
    return usage_error (self->name, message);
  }
}

static int
cmd_port_url (const Command *self,
              int            argc,
              char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autofree char *url = NULL;
  g_autofree char *token = NULL;
  guint64 port = 0;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc != 3)
    return usage_error (self->name, _("port-url needs a sandbox ID and a PORT."));
  if (!g_ascii_string_to_unsigned (argv[2], 10, 1, 65535, &port, NULL))
    return usage_error (self->name, _("PORT must be a number from 1 to 65535."));
  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);

  catch_signals ();
  if ((instance = find_instance (backend, argv[1], &error)) == NULL)
    return interrupt_signal != 0 ? 128 + interrupt_signal : report_error (error);
  sandbox_instance_dup_port_url_async (instance, (guint) port, interrupt_cancellable, store_result, &res);
  url = sandbox_instance_dup_port_url_finish (instance, await_result (&res), &token, &error);
  if (interrupt_signal != 0)
    return 128 + interrupt_signal;
  if (url == NULL)
    return report_error (error);

  if (opt_json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, sandbox_instance_get_id (instance));
      json_builder_set_member_name (builder, "port");
      json_builder_add_int_value (builder, (gint64) port);
      json_builder_set_member_name (builder, "url");
      json_builder_add_string_value (builder, url);
      json_builder_set_member_name (builder, "token");
      if (token != NULL)
        json_builder_add_string_value (builder, token);
      else
        json_builder_add_null_value (builder);
      json_builder_end_object (builder);
      root = json_builder_get_root (builder);
      print_json (root);
    }
  else
    {
      g_print ("%s\n", url);
      if (token != NULL)
        g_print (_("token: %s\n"), token);
    }
  return EXIT_OK;
}

static int
cmd_volume (const Command *self,
            int            argc,
            char         **argv)
{
  g_autoptr(GOptionContext) context = command_context (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  const char *action;

  g_option_context_add_main_entries (context, backend_entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, json_entries, GETTEXT_PACKAGE);
  if (!parse_options (self, context, &argc, &argv, NULL, &error))
    return usage_error (self->name, error->message);
  if (argc < 2)
    return usage_error (self->name, _("volume needs an action: create, ls or rm."));
  action = argv[1];
  if (strcmp (action, "create") != 0 && strcmp (action, "ls") != 0 && strcmp (action, "rm") != 0)
    {
      g_autofree char *message = g_strdup_printf (_("Unknown volume action “%s”; use create, ls "
                                                    "or rm."), action);
      return usage_error (self->name, message);
    }
  if (strcmp (action, "ls") == 0 && argc != 2)
    return usage_error (self->name, _("volume ls takes no arguments."));
  if (strcmp (action, "ls") != 0 && argc < 3)
    return usage_error (self->name, _("volume create and rm need at least one NAME."));
  for (int i = 2; i < argc; i++)
    if (!sandbox_volume_name_is_valid (argv[i]))
      {
        g_autofree char *message = g_strdup_printf (_("“%s” is not a volume name: use 1 to 63 letters, "
                                                      "digits, “-”, “_” or “.”, not starting with “.”."),
                                                    argv[i]);
        return usage_error (self->name, message);
      }
  if ((backend = open_backend (&error)) == NULL)
    return report_error (error);
  catch_signals ();

  if (strcmp (action, "ls") == 0)
    {
      g_autoptr(GAsyncResult) res = NULL;
      g_auto(GStrv) names = NULL;

      sandbox_backend_list_volumes_async (backend, interrupt_cancellable, store_result, &res);
      names = sandbox_backend_list_volumes_finish (backend, await_result (&res), &error);
      if (interrupt_signal != 0)
        return 128 + interrupt_signal;
      if (names == NULL)
        return report_error (error);
      if (opt_json)
        {
          g_autoptr(JsonBuilder) builder = json_builder_new ();
          g_autoptr(JsonNode) root = NULL;

          json_builder_begin_array (builder);
          for (guint i = 0; names[i] != NULL; i++)
            {
              json_builder_begin_object (builder);
              json_builder_set_member_name (builder, "name");
              json_builder_add_string_value (builder, names[i]);
              json_builder_end_object (builder);
            }
          json_builder_end_array (builder);
          root = json_builder_get_root (builder);
          print_json (root);
        }
      else if (names[0] != NULL)
        {
          print_cell (_("NAME"), 0, TRUE);
          for (guint i = 0; names[i] != NULL; i++)
            print_cell (names[i], 0, TRUE);
        }
      return EXIT_OK;
    }

  {
    gboolean create = strcmp (action, "create") == 0;
    g_autoptr(JsonBuilder) builder = json_builder_new ();
    int status = EXIT_OK;

    json_builder_begin_array (builder);
    for (int i = 2; i < argc && interrupt_signal == 0; i++)
      {
        g_autoptr(GAsyncResult) res = NULL;
        gboolean ok;

        g_clear_error (&error);
        if (create)
          {
            sandbox_backend_create_volume_async (backend, argv[i], interrupt_cancellable, store_result, &res);
            ok = sandbox_backend_create_volume_finish (backend, await_result (&res), &error);
          }
        else
          {
            sandbox_backend_delete_volume_async (backend, argv[i], interrupt_cancellable, store_result, &res);
            ok = sandbox_backend_delete_volume_finish (backend, await_result (&res), &error);
          }
        if (!ok)
          {
            if (interrupt_signal == 0)
              status = report_error (error);
            continue;
          }
        json_builder_begin_object (builder);
        json_builder_set_member_name (builder, "name");
        json_builder_add_string_value (builder, argv[i]);
        json_builder_end_object (builder);
        if (!opt_json)
          g_print ("%s\n", argv[i]);
      }
    json_builder_end_array (builder);
    if (interrupt_signal != 0)
      return 128 + interrupt_signal;
    if (opt_json)
      {
        g_autoptr(JsonNode) root = json_builder_get_root (builder);
        print_json (root);
      }
    return status;
  }
}
