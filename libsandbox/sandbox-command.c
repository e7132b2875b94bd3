/* libsandbox - a command to run in a sandbox
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-private.h"

/**
 * SandboxCommand:
 *
 * A program to run in a sandbox: its argument vector, environment, working
 * directory, time limit, standard input, and where its output goes.
 *
 * Output written by the program is delivered to the streams set with
 * [method@Sandbox.Command.set_stdout_stream] and
 * [method@Sandbox.Command.set_stderr_stream] as it arrives (the streams are
 * flushed, never closed). Output with no stream set is captured and returned
 * in the [class@Sandbox.ExecResult].
 *
 * With [property@Sandbox.Command:tty] set (since 0.2, on backends with
 * %SANDBOX_BACKEND_CAPABILITY_TTY), the command runs on a terminal of the
 * sandbox: its output, standard error included, arrives on the standard
 * output stream as a terminal shows it, and while it runs
 * [method@Sandbox.Command.send_input], [method@Sandbox.Command.resize_tty] and
 * [method@Sandbox.Command.send_signal] reach it.
 *
 * Since: 0.1
 */
struct _SandboxCommand
{
  GObject        parent_instance;

  GStrv          argv;
  char          *cwd;
  guint          timeout_ms;
  GHashTable    *env;
  GOutputStream *stdout_stream;
  GOutputStream *stderr_stream;
  GBytes        *stdin_bytes;
  /* interactive terminal */
  gboolean       tty;
  guint          tty_rows;
  guint          tty_cols;
  /* sandbox_backend_run (since 0.2) */
  char          *id_env;
  char          *sandbox_id;
};

G_DEFINE_FINAL_TYPE (SandboxCommand, sandbox_command, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ARGV,
  PROP_CWD,
  PROP_TIMEOUT_MS,
  PROP_STDOUT_STREAM,
  PROP_STDERR_STREAM,
  PROP_STDIN,
  PROP_TTY,
  PROP_TTY_ROWS,
  PROP_TTY_COLS,
  PROP_ID_ENV,
  PROP_SANDBOX_ID,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_RESIZE_TTY,
  SIGNAL_SEND_SIGNAL,
  SIGNAL_SEND_INPUT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
sandbox_command_finalize (GObject *object)
{
  SandboxCommand *self = SANDBOX_COMMAND (object);

  g_clear_pointer (&self->argv, g_strfreev);
  g_clear_pointer (&self->cwd, g_free);
  g_clear_pointer (&self->env, g_hash_table_unref);
  g_clear_object (&self->stdout_stream);
  g_clear_object (&self->stderr_stream);
  g_clear_pointer (&self->stdin_bytes, g_bytes_unref);
  g_clear_pointer (&self->id_env, g_free);
  g_clear_pointer (&self->sandbox_id, g_free);

  G_OBJECT_CLASS (sandbox_command_parent_class)->finalize (object);
}

static void
sandbox_command_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  SandboxCommand *self = SANDBOX_COMMAND (object);

  switch (prop_id)
    {
    case PROP_ARGV: g_value_set_boxed (value, self->argv); break;
    case PROP_CWD: g_value_set_string (value, self->cwd); break;
    case PROP_TIMEOUT_MS: g_value_set_uint (value, self->timeout_ms); break;
    case PROP_STDOUT_STREAM: g_value_set_object (value, self->stdout_stream); break;
    case PROP_STDERR_STREAM: g_value_set_object (value, self->stderr_stream); break;
    case PROP_STDIN: g_value_set_boxed (value, self->stdin_bytes); break;
    case PROP_TTY: g_value_set_boolean (value, self->tty); break;
    case PROP_TTY_ROWS: g_value_set_uint (value, self->tty_rows); break;
    case PROP_TTY_COLS: g_value_set_uint (value, self->tty_cols); break;
    case PROP_ID_ENV: g_value_set_string (value, self->id_env); break;
    case PROP_SANDBOX_ID: g_value_set_string (value, self->sandbox_id); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_command_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  SandboxCommand *self = SANDBOX_COMMAND (object);

  switch (prop_id)
    {
    case PROP_ARGV:
      g_strfreev (self->argv);
      self->argv = g_value_dup_boxed (value);
      if (self->argv == NULL)
        self->argv = g_new0 (char *, 1);
      break;
    case PROP_CWD: sandbox_command_set_cwd (self, g_value_get_string (value)); break;
    case PROP_TIMEOUT_MS: sandbox_command_set_timeout_ms (self, g_value_get_uint (value)); break;
    case PROP_STDOUT_STREAM: sandbox_command_set_stdout_stream (self, g_value_get_object (value)); break;
    case PROP_STDERR_STREAM: sandbox_command_set_stderr_stream (self, g_value_get_object (value)); break;
    case PROP_STDIN: sandbox_command_set_stdin (self, g_value_get_boxed (value)); break;
    case PROP_TTY: sandbox_command_set_tty (self, g_value_get_boolean (value)); break;
    case PROP_TTY_ROWS: sandbox_command_resize_tty (self, g_value_get_uint (value), self->tty_cols); break;
    case PROP_TTY_COLS: sandbox_command_resize_tty (self, self->tty_rows, g_value_get_uint (value)); break;
    case PROP_ID_ENV: sandbox_command_set_id_env (self, g_value_get_string (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_command_class_init (SandboxCommandClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = sandbox_command_finalize;
  object_class->get_property = sandbox_command_get_property;
  object_class->set_property = sandbox_command_set_property;

  /**
   * SandboxCommand:argv:
   *
   * The program and its arguments. The program is looked up on the
   * sandbox's `PATH` when it has no slash.
   *
   * Since: 0.1
   */
  properties[PROP_ARGV] =
    g_param_spec_boxed ("argv", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * SandboxCommand:cwd:
   *
   * The working directory inside the sandbox; %NULL for the sandbox's workdir.
   *
   * Since: 0.1
   */
  properties[PROP_CWD] = g_param_spec_string ("cwd", NULL, NULL, NULL, flags);

  /**
   * SandboxCommand:timeout-ms:
   *
   * How long the command may run, in milliseconds; 0 for no limit. When it
   * runs out, every process the command started in the sandbox is killed and
   * [property@Sandbox.ExecResult:timed-out] is set.
   *
   * Since: 0.1
   */
  properties[PROP_TIMEOUT_MS] = g_param_spec_uint ("timeout-ms", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * SandboxCommand:stdout-stream:
   *
   * Where standard output goes, live; %NULL to capture it.
   *
   * Since: 0.1
   */
  properties[PROP_STDOUT_STREAM] =
    g_param_spec_object ("stdout-stream", NULL, NULL, G_TYPE_OUTPUT_STREAM, flags);

  /**
   * SandboxCommand:stderr-stream:
   *
   * Where standard error goes, live; %NULL to capture it.
   *
   * Since: 0.1
   */
  properties[PROP_STDERR_STREAM] =
    g_param_spec_object ("stderr-stream", NULL, NULL, G_TYPE_OUTPUT_STREAM, flags);

  /**
   * SandboxCommand:stdin:
   *
   * Bytes fed to standard input; %NULL for an empty standard input.
   *
   * Since: 0.1
   */
  properties[PROP_STDIN] = g_param_spec_boxed ("stdin", NULL, NULL, G_TYPE_BYTES, flags);

  /**
   * SandboxCommand:tty:
   *
   * Whether the command runs on a terminal of the sandbox (a pseudo-terminal
   * that is its controlling terminal and its standard input, output and
   * error). Its output, standard error included, goes to
   * [property@Sandbox.Command:stdout-stream] (or is captured as standard
   * output); [property@Sandbox.Command:stdin] is typed on the terminal when it
   * starts, and [method@Sandbox.Command.send_input] types more while it runs.
   * Only backends with %SANDBOX_BACKEND_CAPABILITY_TTY run such commands;
   * the others fail with %SANDBOX_ERROR_NOT_SUPPORTED.
   *
   * Since: 0.2
   */
  properties[PROP_TTY] = g_param_spec_boolean ("tty", NULL, NULL, FALSE, flags);

  /**
   * SandboxCommand:tty-rows:
   *
   * The terminal's height in rows, when [property@Sandbox.Command:tty] is set.
   *
   * Since: 0.2
   */
  properties[PROP_TTY_ROWS] = g_param_spec_uint ("tty-rows", NULL, NULL, 1, G_MAXUINT16, 24, flags);

  /**
   * SandboxCommand:tty-cols:
   *
   * The terminal's width in columns, when [property@Sandbox.Command:tty] is
   * set.
   *
   * Since: 0.2
   */
  properties[PROP_TTY_COLS] = g_param_spec_uint ("tty-cols", NULL, NULL, 1, G_MAXUINT16, 80, flags);

  /**
   * SandboxCommand:id-env:
   *
   * When the command is run by [method@Sandbox.Backend.run_async], the
   * name of an environment variable that gets the id of the sandbox made
   * for it (as `sandboxctl run --id-env`); %NULL for none.
   *
   * Since: 0.2
   */
  properties[PROP_ID_ENV] =
    g_param_spec_string ("id-env", NULL, NULL, NULL, flags);

  /**
   * SandboxCommand:sandbox-id:
   *
   * The id of the sandbox that [method@Sandbox.Backend.run_async] made for
   * the command, once it exists (it stays set after the sandbox is gone);
   * %NULL before.
   *
   * Since: 0.2
   */
  properties[PROP_SANDBOX_ID] =
    g_param_spec_string ("sandbox-id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * SandboxCommand::resize-tty:
   * @self: the command
   * @rows: the new height
   * @cols: the new width
   *
   * Emitted by [method@Sandbox.Command.resize_tty]. The backend running the
   * command connects to it and resizes the command's terminal (the command
   * gets `SIGWINCH`).
   *
   * Since: 0.2
   */

  signals[SIGNAL_RESIZE_TTY] =
    g_signal_new ("resize-tty", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);

  /**
   * SandboxCommand::send-signal:
   * @self: the command
   * @signum: a signal number, as on Linux (`SIGINT` is 2)
   *
   * Emitted by [method@Sandbox.Command.send_signal]. The backend running the
   * command connects to it, delivers the signal and returns %TRUE.
   *
   * Returns: %TRUE when a backend took the signal
   *
   * Since: 0.2
   */
  signals[SIGNAL_SEND_SIGNAL] =
    g_signal_new ("send-signal", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, g_signal_accumulator_true_handled, NULL, NULL,
                  G_TYPE_BOOLEAN, 1, G_TYPE_INT);

  /**
   * SandboxCommand::send-input:
   * @self: the command
   * @data: the bytes
   *
   * Emitted by [method@Sandbox.Command.send_input]. The backend running the
   * command connects to it, types @data on the command's terminal and
   * returns %TRUE.
   *
   * Returns: %TRUE when a backend took the bytes
   *
   * Since: 0.2
   */
  signals[SIGNAL_SEND_INPUT] =
    g_signal_new ("send-input", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, g_signal_accumulator_true_handled, NULL, NULL,
                  G_TYPE_BOOLEAN, 1, G_TYPE_BYTES);
}

static void
sandbox_command_init (SandboxCommand *self)
{
  self->env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->argv = g_new0 (char *, 1);
  self->tty_rows = 24;
  self->tty_cols = 80;
}

/**
 * sandbox_command_new:
 * @argv: (array zero-terminated=1): the program and its arguments
 *
 * Creates a command.
 *
 * Returns: (transfer full): a new #SandboxCommand
 *
 * Since: 0.1
 */
SandboxCommand *
sandbox_command_new (const char * const *argv)
{
  g_return_val_if_fail (argv != NULL && argv[0] != NULL, NULL);

  return g_object_new (SANDBOX_TYPE_COMMAND, "argv", argv, NULL);
}

/**
 * sandbox_command_new_shell:
 * @script: a POSIX shell script
 *
 * Creates a command that runs @script with `/bin/sh -c`.
 *
 * Returns: (transfer full): a new #SandboxCommand
 *
 * Since: 0.1
 */
SandboxCommand *
sandbox_command_new_shell (const char *script)
{
  const char *argv[] = { "/bin/sh", "-c", script, NULL };

  g_return_val_if_fail (script != NULL, NULL);

  return sandbox_command_new (argv);
}

/**
 * sandbox_command_get_argv:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:argv].
 *
 * Returns: (transfer none) (array zero-terminated=1): the arguments
 *
 * Since: 0.1
 */
const char * const *
sandbox_command_get_argv (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return (const char * const *) self->argv;
}

/**
 * sandbox_command_get_cwd:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:cwd].
 *
 * Returns: (nullable): the working directory
 *
 * Since: 0.1
 */
const char *
sandbox_command_get_cwd (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return self->cwd;
}

/**
 * sandbox_command_set_cwd:
 * @self: a #SandboxCommand
 * @cwd: (nullable): an absolute path inside the sandbox
 *
 * Sets [property@Sandbox.Command:cwd].
 *
 * Since: 0.1
 */
void
sandbox_command_set_cwd (SandboxCommand *self,
                         const char     *cwd)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));

  if (g_strcmp0 (self->cwd, cwd) == 0)
    return;
  g_free (self->cwd);
  self->cwd = g_strdup (cwd);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CWD]);
}

/**
 * sandbox_command_get_timeout_ms:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:timeout-ms].
 *
 * Returns: the time limit in milliseconds, 0 for none
 *
 * Since: 0.1
 */
guint
sandbox_command_get_timeout_ms (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), 0);
  return self->timeout_ms;
}

/**
 * sandbox_command_set_timeout_ms:
 * @self: a #SandboxCommand
 * @timeout_ms: the time limit in milliseconds, 0 for none
 *
 * Sets [property@Sandbox.Command:timeout-ms].
 *
 * Since: 0.1
 */
void
sandbox_command_set_timeout_ms (SandboxCommand *self,
                                guint           timeout_ms)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));

  if (self->timeout_ms == timeout_ms)
    return;
  self->timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TIMEOUT_MS]);
}

/**
 * sandbox_command_set_env:
 * @self: a #SandboxCommand
 * @name: a variable name
 * @value: (nullable): its value, or %NULL to remove it
 *
 * Sets an environment variable for this command, on top of the sandbox's
 * own ([method@Sandbox.Spec.set_env]).
 *
 * Since: 0.1
 */
void
sandbox_command_set_env (SandboxCommand *self,
                         const char     *name,
                         const char     *value)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));
  g_return_if_fail (name != NULL && *name != '\0' && strchr (name, '=') == NULL);

  if (value == NULL)
    g_hash_table_remove (self->env, name);
  else
    g_hash_table_insert (self->env, g_strdup (name), g_strdup (value));
}

/**
 * sandbox_command_get_env:
 * @self: a #SandboxCommand
 *
 * Gets the variables set with [method@Sandbox.Command.set_env].
 *
 * Returns: (transfer none) (element-type utf8 utf8): the variables
 *
 * Since: 0.1
 */
GHashTable *
sandbox_command_get_env (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return self->env;
}

/**
 * sandbox_command_get_stdout_stream:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:stdout-stream].
 *
 * Returns: (nullable) (transfer none): the stream
 *
 * Since: 0.1
 */
GOutputStream *
sandbox_command_get_stdout_stream (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return self->stdout_stream;
}

/**
 * sandbox_command_set_stdout_stream:
 * @self: a #SandboxCommand
 * @stream: (nullable): where standard output goes
 *
 * Sets [property@Sandbox.Command:stdout-stream].
 *
 * Since: 0.1
 */
void
sandbox_command_set_stdout_stream (SandboxCommand *self,
                                   GOutputStream  *stream)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));
  g_return_if_fail (stream == NULL || G_IS_OUTPUT_STREAM (stream));

  if (g_set_object (&self->stdout_stream, stream))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STDOUT_STREAM]);
}

/**
 * sandbox_command_get_stderr_stream:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:stderr-stream].
 *
 * Returns: (nullable) (transfer none): the stream
 *
 * Since: 0.1
 */
GOutputStream *
sandbox_command_get_stderr_stream (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return self->stderr_stream;
}

/**
 * sandbox_command_set_stderr_stream:
 * @self: a #SandboxCommand
 * @stream: (nullable): where standard error goes
 *
 * Sets [property@Sandbox.Command:stderr-stream].
 *
 * Since: 0.1
 */
void
sandbox_command_set_stderr_stream (SandboxCommand *self,
                                   GOutputStream  *stream)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));
  g_return_if_fail (stream == NULL || G_IS_OUTPUT_STREAM (stream));

  if (g_set_object (&self->stderr_stream, stream))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STDERR_STREAM]);
}

/**
 * sandbox_command_get_stdin:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:stdin].
 *
 * Returns: (nullable) (transfer none): the bytes fed to standard input
 *
 * Since: 0.1
 */
GBytes *
sandbox_command_get_stdin (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return self->stdin_bytes;
}

/**
 * sandbox_command_set_stdin:
 * @self: a #SandboxCommand
 * @stdin_bytes: (nullable): bytes to feed to standard input
 *
 * Sets [property@Sandbox.Command:stdin].
 *
 * Since: 0.1
 */
void
sandbox_command_set_stdin (SandboxCommand *self,
                           GBytes         *stdin_bytes)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));

  if (self->stdin_bytes == stdin_bytes)
    return;
  g_clear_pointer (&self->stdin_bytes, g_bytes_unref);
  if (stdin_bytes != NULL)
    self->stdin_bytes = g_bytes_ref (stdin_bytes);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STDIN]);
}

/* ------------------------------------------------------------------ */
/* Interactive terminal (since 0.2)                                    */

/**
 * sandbox_command_get_tty:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:tty].
 *
 * Returns: whether the command runs on a terminal
 *
 * Since: 0.2
 */
gboolean
sandbox_command_get_tty (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), FALSE);
  return self->tty;
}

/**
 * sandbox_command_set_tty:
 * @self: a #SandboxCommand
 * @tty: whether the command runs on a terminal
 *
 * Sets [property@Sandbox.Command:tty].
 *
 * Since: 0.2
 */
void
sandbox_command_set_tty (SandboxCommand *self,
                         gboolean        tty)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));

  tty = !!tty;
  if (self->tty == tty)
    return;
  self->tty = tty;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TTY]);
}

/**
 * sandbox_command_get_tty_size:
 * @self: a #SandboxCommand
 * @rows: (out) (optional): return location for the height
 * @cols: (out) (optional): return location for the width
 *
 * Gets the terminal's size: [property@Sandbox.Command:tty-rows] and
 * [property@Sandbox.Command:tty-cols].
 *
 * Since: 0.2
 */
void
sandbox_command_get_tty_size (SandboxCommand *self,
                              guint          *rows,
                              guint          *cols)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));

  if (rows != NULL)
    *rows = self->tty_rows;
  if (cols != NULL)
    *cols = self->tty_cols;
}

/**
 * sandbox_command_resize_tty:
 * @self: a #SandboxCommand
 * @rows: the height in rows, at least 1
 * @cols: the width in columns, at least 1
 *
 * Sets the terminal's size. Before the command starts, this is the size it
 * starts with; while it runs, its terminal is resized (it gets `SIGWINCH`)
 * through [signal@Sandbox.Command::resize-tty]. May be called from any
 * thread.
 *
 * Since: 0.2
 */
void
sandbox_command_resize_tty (SandboxCommand *self,
                            guint           rows,
                            guint           cols)
{
  gboolean changed_rows, changed_cols;

  g_return_if_fail (SANDBOX_IS_COMMAND (self));
  g_return_if_fail (rows >= 1 && rows <= G_MAXUINT16);
  g_return_if_fail (cols >= 1 && cols <= G_MAXUINT16);

  changed_rows = self->tty_rows != rows;
  changed_cols = self->tty_cols != cols;
  self->tty_rows = rows;
  self->tty_cols = cols;
  if (changed_rows)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TTY_ROWS]);
  if (changed_cols)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TTY_COLS]);
  g_signal_emit (self, signals[SIGNAL_RESIZE_TTY], 0, rows, cols);
}

/**
 * sandbox_command_send_signal:
 * @self: a #SandboxCommand
 * @signum: a signal number, as on Linux (`SIGINT` is 2, `SIGTERM` 15)
 *
 * Sends a signal to the running command, through
 * [signal@Sandbox.Command::send-signal]. On a terminal
 * ([property@Sandbox.Command:tty]), the signal goes to the terminal's
 * foreground process group, as a key such as Ctrl-C would send it. May be
 * called from any thread.
 *
 * Returns: %TRUE when the backend running the command took the signal;
 *   %FALSE when the command is not running, or its backend cannot deliver
 *   signals to it
 *
 * Since: 0.2
 */
gboolean
sandbox_command_send_signal (SandboxCommand *self,
                             int             signum)
{
  gboolean handled = FALSE;

  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), FALSE);
  g_return_val_if_fail (signum > 0 && signum < 65, FALSE);

  g_signal_emit (self, signals[SIGNAL_SEND_SIGNAL], 0, signum, &handled);
  return handled;
}

/**
 * sandbox_command_send_input:
 * @self: a #SandboxCommand
 * @data: the bytes to type
 *
 * Types @data on the running command's terminal
 * ([property@Sandbox.Command:tty]), through
 * [signal@Sandbox.Command::send-input]: the terminal echoes it and turns
 * control characters into signals or end-of-file as a terminal does
 * (Ctrl-C, `\x03`, interrupts; Ctrl-D, `\x04`, ends a line-mode read). May
 * be called from any thread.
 *
 * Returns: %TRUE when the backend running the command took the bytes;
 *   %FALSE when the command is not running on a terminal
 *
 * Since: 0.2
 */
gboolean
sandbox_command_send_input (SandboxCommand *self,
                            GBytes         *data)
{
  gboolean handled = FALSE;

  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), FALSE);
  g_return_val_if_fail (data != NULL, FALSE);

  g_signal_emit (self, signals[SIGNAL_SEND_INPUT], 0, data, &handled);
  return handled;
}

/* ------------------------------------------------------------------ */
/* sandbox_backend_run (since 0.2)                                     */

/**
 * sandbox_command_get_id_env:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:id-env].
 *
 * Returns: (nullable): the variable's name, or %NULL
 *
 * Since: 0.2
 */
const char *
sandbox_command_get_id_env (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return self->id_env;
}

/**
 * sandbox_command_set_id_env:
 * @self: a #SandboxCommand
 * @name: (nullable): an environment variable's name (without “=”; empty is none), or %NULL for none
 *
 * Sets [property@Sandbox.Command:id-env].
 *
 * Since: 0.2
 */
void
sandbox_command_set_id_env (SandboxCommand *self,
                            const char     *name)
{
  g_return_if_fail (SANDBOX_IS_COMMAND (self));
  /* As sandbox_command_set_env () takes it, when the id is known. */
  g_return_if_fail (name == NULL || strchr (name, '=') == NULL);

  if (name != NULL && *name == '\0')
    name = NULL;
  if (g_strcmp0 (self->id_env, name) == 0)
    return;
  g_free (self->id_env);
  self->id_env = g_strdup (name);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ID_ENV]);
}

/**
 * sandbox_command_get_sandbox_id:
 * @self: a #SandboxCommand
 *
 * Gets [property@Sandbox.Command:sandbox-id].
 *
 * Returns: (nullable): the id of the sandbox made for the command by
 *   [method@Sandbox.Backend.run_async], or %NULL
 *
 * Since: 0.2
 */
const char *
sandbox_command_get_sandbox_id (SandboxCommand *self)
{
  g_return_val_if_fail (SANDBOX_IS_COMMAND (self), NULL);
  return self->sandbox_id;
}

void
_sandbox_command_set_sandbox_id (SandboxCommand *self,
                                 const char     *id)
{
  if (g_strcmp0 (self->sandbox_id, id) == 0)
    return;
  g_free (self->sandbox_id);
  self->sandbox_id = g_strdup (id);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SANDBOX_ID]);
}
