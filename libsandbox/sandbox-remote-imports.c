/* libsandbox - the module side of sandbox-remote-private.h
 *
 * Compiled into libsandbox-remote.so only: the private functions of the
 * library that the remote backends call, as calls through the table the
 * library passes when it loads the module.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-remote-private.h"

static const SandboxRemoteImports *imports;

gboolean
_sandbox_remote_imports_set (const SandboxRemoteImports  *table,
                             GError                     **error)
{
  if (table == NULL || table->size != sizeof (SandboxRemoteImports) ||
      g_strcmp0 (table->version, PACKAGE_VERSION) != 0)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("The remote backends module is from another version of libsandbox "
                     "(%s, this library is %s). Reinstall libsandbox so that both come "
                     "from one build."),
                   PACKAGE_VERSION, table != NULL && table->version != NULL ? table->version : "?");
      return FALSE;
    }
  imports = table;
  return TRUE;
}

GType
_sandbox_output_get_type (void)
{
  return imports->output_get_type ();
}

SandboxOutput *
_sandbox_output_new (SandboxCommand *command)
{
  return imports->output_new (command);
}

void
_sandbox_output_write (SandboxOutput *self,
                       gboolean       is_stderr,
                       const guint8  *buf,
                       gsize          len)
{
  imports->output_write (self, is_stderr, buf, len);
}

gsize
_sandbox_output_get_pending (SandboxOutput *self)
{
  return imports->output_get_pending (self);
}

void
_sandbox_output_cancel (SandboxOutput *self)
{
  imports->output_cancel (self);
}

void
_sandbox_output_flush_async (SandboxOutput       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  imports->output_flush_async (self, cancellable, callback, user_data);
}

gboolean
_sandbox_output_flush_finish (SandboxOutput  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  return imports->output_flush_finish (self, result, error);
}

SandboxExecResult *
_sandbox_output_steal_result (SandboxOutput *self,
                              int            exit_status,
                              int            term_signal,
                              gboolean       timed_out,
                              gint64         start_us)
{
  return imports->output_steal_result (self, exit_status, term_signal, timed_out, start_us);
}

void
_sandbox_task_return_object (GTask    *task,
                             gpointer  object)
{
  imports->task_return_object (task, object);
}

char *
_sandbox_display_text (const char *text)
{
  return imports->display_text (text);
}
