/* libsandbox - how a command ended
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-exec-result.h"

/**
 * SandboxExecResult:
 *
 * How a command run by [method@Sandbox.Instance.exec_async] ended: its exit
 * status or the signal that ended it, whether its time limit ran out, the
 * output that was captured (streams with no [class@Gio.OutputStream] set on
 * the [class@Sandbox.Command]) and how long it took.
 *
 * Backends written in other languages construct it with its properties,
 * for example `Sandbox.ExecResult(exit_status=0, stdout=GLib.Bytes(b"hi\n"))`.
 *
 * Since: 0.1
 */
struct _SandboxExecResult
{
  GObject   parent_instance;

  int       exit_status;
  int       term_signal;
  gboolean  timed_out;
  GBytes   *stdout_bytes;
  GBytes   *stderr_bytes;
  double    elapsed;
};

G_DEFINE_FINAL_TYPE (SandboxExecResult, sandbox_exec_result, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_EXIT_STATUS,
  PROP_TERM_SIGNAL,
  PROP_TIMED_OUT,
  PROP_STDOUT,
  PROP_STDERR,
  PROP_ELAPSED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
sandbox_exec_result_finalize (GObject *object)
{
  SandboxExecResult *self = SANDBOX_EXEC_RESULT (object);

  g_clear_pointer (&self->stdout_bytes, g_bytes_unref);
  g_clear_pointer (&self->stderr_bytes, g_bytes_unref);

  G_OBJECT_CLASS (sandbox_exec_result_parent_class)->finalize (object);
}

static void
sandbox_exec_result_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  SandboxExecResult *self = SANDBOX_EXEC_RESULT (object);

  switch (prop_id)
    {
    case PROP_EXIT_STATUS: g_value_set_int (value, self->exit_status); break;
    case PROP_TERM_SIGNAL: g_value_set_int (value, self->term_signal); break;
    case PROP_TIMED_OUT: g_value_set_boolean (value, self->timed_out); break;
    case PROP_STDOUT: g_value_set_boxed (value, self->stdout_bytes); break;
    case PROP_STDERR: g_value_set_boxed (value, self->stderr_bytes); break;
    case PROP_ELAPSED: g_value_set_double (value, self->elapsed); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_exec_result_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  SandboxExecResult *self = SANDBOX_EXEC_RESULT (object);

  switch (prop_id)
    {
    case PROP_EXIT_STATUS: self->exit_status = g_value_get_int (value); break;
    case PROP_TERM_SIGNAL: self->term_signal = g_value_get_int (value); break;
    case PROP_TIMED_OUT: self->timed_out = g_value_get_boolean (value); break;
    case PROP_STDOUT: self->stdout_bytes = g_value_dup_boxed (value); break;
    case PROP_STDERR: self->stderr_bytes = g_value_dup_boxed (value); break;
    case PROP_ELAPSED: self->elapsed = g_value_get_double (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_exec_result_class_init (SandboxExecResultClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = sandbox_exec_result_finalize;
  object_class->get_property = sandbox_exec_result_get_property;
  object_class->set_property = sandbox_exec_result_set_property;

  /**
   * SandboxExecResult:exit-status:
   *
   * The exit status of the command, or -1 if a signal ended it.
   *
   * Since: 0.1
   */
  properties[PROP_EXIT_STATUS] =
    g_param_spec_int ("exit-status", NULL, NULL, -1, 255, 0, flags);

  /**
   * SandboxExecResult:term-signal:
   *
   * The signal that ended the command, or 0 if it exited.
   *
   * Since: 0.1
   */
  properties[PROP_TERM_SIGNAL] =
    g_param_spec_int ("term-signal", NULL, NULL, 0, 128, 0, flags);

  /**
   * SandboxExecResult:timed-out:
   *
   * Whether the command was killed because its time limit ran out.
   *
   * Since: 0.1
   */
  properties[PROP_TIMED_OUT] =
    g_param_spec_boolean ("timed-out", NULL, NULL, FALSE, flags);

  /**
   * SandboxExecResult:stdout:
   *
   * The captured standard output, or %NULL if it was streamed.
   *
   * Since: 0.1
   */
  properties[PROP_STDOUT] = g_param_spec_boxed ("stdout", NULL, NULL, G_TYPE_BYTES, flags);

  /**
   * SandboxExecResult:stderr:
   *
   * The captured standard error, or %NULL if it was streamed.
   *
   * Since: 0.1
   */
  properties[PROP_STDERR] = g_param_spec_boxed ("stderr", NULL, NULL, G_TYPE_BYTES, flags);

  /**
   * SandboxExecResult:elapsed:
   *
   * The wall-clock time the command took, in seconds.
   *
   * Since: 0.1
   */
  properties[PROP_ELAPSED] =
    g_param_spec_double ("elapsed", NULL, NULL, 0, G_MAXDOUBLE, 0, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_exec_result_init (SandboxExecResult *self)
{
}

/**
 * sandbox_exec_result_new:
 * @exit_status: the exit status, or -1 if a signal ended the command
 * @term_signal: the signal that ended it, or 0
 *
 * Creates a result with no captured output. Use g_object_new() with the
 * properties to set the others.
 *
 * Returns: (transfer full): a new #SandboxExecResult
 *
 * Since: 0.1
 */
SandboxExecResult *
sandbox_exec_result_new (int exit_status,
                         int term_signal)
{
  return g_object_new (SANDBOX_TYPE_EXEC_RESULT,
                       "exit-status", exit_status,
                       "term-signal", term_signal,
                       NULL);
}

/**
 * sandbox_exec_result_get_exit_status:
 * @self: a #SandboxExecResult
 *
 * Gets [property@Sandbox.ExecResult:exit-status].
 *
 * Returns: the exit status, or -1 if a signal ended the command
 *
 * Since: 0.1
 */
int
sandbox_exec_result_get_exit_status (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), -1);
  return self->exit_status;
}

/**
 * sandbox_exec_result_get_term_signal:
 * @self: a #SandboxExecResult
 *
 * Gets [property@Sandbox.ExecResult:term-signal].
 *
 * Returns: the signal number, or 0 if the command exited
 *
 * Since: 0.1
 */
int
sandbox_exec_result_get_term_signal (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), 0);
  return self->term_signal;
}

/**
 * sandbox_exec_result_get_timed_out:
 * @self: a #SandboxExecResult
 *
 * Gets [property@Sandbox.ExecResult:timed-out].
 *
 * Returns: whether the time limit ran out
 *
 * Since: 0.1
 */
gboolean
sandbox_exec_result_get_timed_out (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), FALSE);
  return self->timed_out;
}

/**
 * sandbox_exec_result_get_success:
 * @self: a #SandboxExecResult
 *
 * Tells whether the command exited with status 0.
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_exec_result_get_success (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), FALSE);
  return self->exit_status == 0 && self->term_signal == 0 && !self->timed_out;
}

/**
 * sandbox_exec_result_get_exit_code:
 * @self: a #SandboxExecResult
 *
 * Gets the status a shell would report: the exit status, or 128 plus the
 * signal number if a signal ended the command.
 *
 * Returns: the shell-style exit code
 *
 * Since: 0.1
 */
int
sandbox_exec_result_get_exit_code (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), 1);
  if (self->term_signal != 0)
    return 128 + self->term_signal;
  return self->exit_status;
}

/**
 * sandbox_exec_result_get_stdout:
 * @self: a #SandboxExecResult
 *
 * Gets [property@Sandbox.ExecResult:stdout].
 *
 * Returns: (nullable) (transfer none): the captured standard output
 *
 * Since: 0.1
 */
GBytes *
sandbox_exec_result_get_stdout (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), NULL);
  return self->stdout_bytes;
}

/**
 * sandbox_exec_result_get_stderr:
 * @self: a #SandboxExecResult
 *
 * Gets [property@Sandbox.ExecResult:stderr].
 *
 * Returns: (nullable) (transfer none): the captured standard error
 *
 * Since: 0.1
 */
GBytes *
sandbox_exec_result_get_stderr (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), NULL);
  return self->stderr_bytes;
}

/**
 * sandbox_exec_result_get_elapsed:
 * @self: a #SandboxExecResult
 *
 * Gets [property@Sandbox.ExecResult:elapsed].
 *
 * Returns: the run time in seconds
 *
 * Since: 0.1
 */
double
sandbox_exec_result_get_elapsed (SandboxExecResult *self)
{
  g_return_val_if_fail (SANDBOX_IS_EXEC_RESULT (self), 0);
  return self->elapsed;
}
