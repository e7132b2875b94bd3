/* libsandbox - one writer for a command's output, used by every backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-output-private.h"

#include <signal.h>

typedef struct
{
  GOutputStream *stream;   /* borrowed from the SandboxOutput */
  GBytes        *bytes;
} Chunk;

struct _SandboxOutput
{
  GObject        parent_instance;

  GOutputStream *streams[2];    /* stdout, stderr; NULL: captured */
  GByteArray    *captured[2];
  GQueue         queue;         /* Chunk, oldest first */
  gsize          pending;       /* bytes in the queue and in the write in progress */
  gboolean       writing;
  gboolean       cancelled;
  GCancellable  *op;            /* of the write in progress */
  GError        *error;         /* the first write error */
  GPtrArray     *flushes;       /* GTask waiting for an empty queue */
};

G_DEFINE_FINAL_TYPE (SandboxOutput, _sandbox_output, G_TYPE_OBJECT)

static void
chunk_free (Chunk *chunk)
{
  g_bytes_unref (chunk->bytes);
  g_free (chunk);
}

static void
drop_queue (SandboxOutput *self)
{
  Chunk *chunk;

  while ((chunk = g_queue_pop_head (&self->queue)) != NULL)
    {
      self->pending -= g_bytes_get_size (chunk->bytes);
      chunk_free (chunk);
    }
}

/* Completes the flushes when nothing is queued or being written. */
static void
complete_flushes (SandboxOutput *self)
{
  g_autoptr(GPtrArray) flushes = NULL;


  if (self->flushes->len == 0)
    return;
  /* A cancelled output does not wait for the write in progress. */
  if (!self->cancelled && self->error == NULL && (self->writing || self->queue.length > 0))
    return;
  flushes = g_steal_pointer (&self->flushes);
  self->flushes = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < flushes->len; i++)
    {
      GTask *task = g_ptr_array_index (flushes, i);

      if (g_task_get_completed (task))
        continue;
      if (self->error != NULL)
        g_task_return_error (task, g_error_copy (self->error));
      else
        g_task_return_boolean (task, TRUE);
    }
}

static void write_next (SandboxOutput *self);

static void
written (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(SandboxOutput) self = user_data;
  Chunk *chunk = g_queue_pop_head (&self->queue);
  GError *error = NULL;

  self->writing = FALSE;
  self->pending -= g_bytes_get_size (chunk->bytes);
  chunk_free (chunk);
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      if (self->cancelled)
        g_error_free (error);
      else
        {
          g_prefix_error (&error, _("Cannot write the command's output: "));
          g_debug ("%s", error->message);
          self->error = error;
          drop_queue (self);
        }
    }
  write_next (self);
}

static void
write_next (SandboxOutput *self)
{
  Chunk *chunk = g_queue_peek_head (&self->queue);

  if (!self->writing && chunk != NULL && self->error == NULL && !self->cancelled)
    {
      self->writing = TRUE;
      /* write_all_async copies nothing: the chunk stays queued until done. */
      g_output_stream_write_all_async (chunk->stream, g_bytes_get_data (chunk->bytes, NULL),
                                       g_bytes_get_size (chunk->bytes), G_PRIORITY_DEFAULT, self->op,
                                       written, g_object_ref (self));
      return;
    }
  complete_flushes (self);
}

SandboxOutput *
_sandbox_output_new (SandboxCommand *command)
{
  SandboxOutput *self = g_object_new (SANDBOX_TYPE_OUTPUT, NULL);
  GOutputStream *streams[2] = { sandbox_command_get_stdout_stream (command),
                                sandbox_command_get_stderr_stream (command) };

  for (guint i = 0; i < 2; i++)
    {
      if (streams[i] != NULL)
        self->streams[i] = g_object_ref (streams[i]);
      else
        self->captured[i] = g_byte_array_new ();
    }
  return self;
}

void
_sandbox_output_write (SandboxOutput *self,
                       gboolean       is_stderr,
                       const guint8  *buf,
                       gsize          len)
{
  Chunk *chunk;
  guint i = is_stderr ? 1 : 0;

  if (len == 0 || self->error != NULL || self->cancelled)
    return;
  if (self->streams[i] == NULL)
    {
      g_byte_array_append (self->captured[i], buf, len);
      return;
    }
  chunk = g_new0 (Chunk, 1);
  chunk->stream = self->streams[i];
  chunk->bytes = g_bytes_new (buf, len);
  g_queue_push_tail (&self->queue, chunk);
  self->pending += len;
  write_next (self);
}

gsize
_sandbox_output_get_pending (SandboxOutput *self)
{
  /* After a failure or a cancellation nothing more is written: a producer
   * must not wait (a cancelled write may take a moment to return). */
  if (self->error != NULL || self->cancelled)
    return 0;
  return self->pending;
}

void
_sandbox_output_cancel (SandboxOutput *self)
{
  if (self->cancelled)
    return;
  self->cancelled = TRUE;
  /* The write in progress keeps its chunk until it returns. */
  if (self->writing)
    {
      Chunk *head = g_queue_pop_head (&self->queue);

      drop_queue (self);
      g_queue_push_head (&self->queue, head);
      g_cancellable_cancel (self->op);
    }
  else
    drop_queue (self);
  complete_flushes (self);
}

/* In the flush's context, whichever thread cancelled. */
static gboolean
flush_cancelled (GCancellable *cancellable,
                 gpointer      user_data)
{
  GTask *task = user_data;

  if (!g_task_get_completed (task))
    _sandbox_output_cancel (g_task_get_source_object (task));
  return G_SOURCE_REMOVE;
}

static void
source_destroy (gpointer source)
{
  g_source_destroy (source);
  g_source_unref (source);
}

void
_sandbox_output_flush_async (SandboxOutput       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, _sandbox_output_flush_async);
  g_task_set_check_cancellable (task, TRUE);
  g_ptr_array_add (self->flushes, task);
  if (cancellable != NULL)
    {
      GSource *source = g_cancellable_source_new (cancellable);

      /* Owned by the task: gone with it. */
      g_source_set_callback (source, G_SOURCE_FUNC (flush_cancelled), task, NULL);
      g_source_set_static_name (source, "[libsandbox] output flush cancelled");
      g_source_attach (source, g_task_get_context (task));
      g_task_set_task_data (task, source, source_destroy);
    }
  write_next (self);
}

gboolean
_sandbox_output_flush_finish (SandboxOutput  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static GBytes *
steal_captured (SandboxOutput *self,
                gboolean       is_stderr)
{
  guint i = is_stderr ? 1 : 0;

  if (self->captured[i] == NULL)
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&self->captured[i]));
}

/* Whether a process can end by @signum: its default action ends it (a
 * handled or ignored signal never does). Stop, continue and the signals
 * ignored by default never end one. */
static gboolean
ends_a_process (int signum)
{
  switch (signum)
    {
    case SIGCHLD: case SIGCONT: case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
    case SIGURG: case SIGWINCH:
      return FALSE;
    default:
      return signum >= 1 && signum <= SIGRTMAX;
    }
}

SandboxExecResult *
_sandbox_output_steal_result (SandboxOutput *self,
                              int            exit_status,
                              int            term_signal,
                              gboolean       timed_out,
                              gint64         start_us)
{
  g_autoptr(GBytes) out = steal_captured (self, FALSE);
  g_autoptr(GBytes) err = steal_captured (self, TRUE);

  /* How a remote command ended is what its sandbox or provider said
   * (Daytona's terminal reads a code 128 + N as "killed by signal N"): a
   * signal that ends no process (a command exiting with 147 read as
   * SIGSTOP) made `sandboxctl run -t --raise-signal` stop itself for
   * good, and a status out of range made GLib warn. Such a signal is the
   * exit status it came from, any other status out of range 255. */
  if (term_signal != 0 && !ends_a_process (term_signal))
    {
      exit_status = term_signal > 0 && term_signal < 128 ? 128 + term_signal : 255;
      term_signal = 0;
    }
  if (exit_status < -1 || exit_status > 255)
    exit_status = 255;

  return g_object_new (SANDBOX_TYPE_EXEC_RESULT,
                       "exit-status", exit_status,
                       "term-signal", term_signal,
                       "timed-out", timed_out,
                       "stdout", out,
                       "stderr", err,
                       "elapsed", (g_get_monotonic_time () - start_us) / (double) G_USEC_PER_SEC,
                       NULL);
}

static void
_sandbox_output_finalize (GObject *object)
{
  SandboxOutput *self = SANDBOX_OUTPUT (object);

  drop_queue (self);
  g_ptr_array_unref (self->flushes);
  for (guint i = 0; i < 2; i++)
    {
      g_clear_object (&self->streams[i]);
      g_clear_pointer (&self->captured[i], g_byte_array_unref);
    }
  g_object_unref (self->op);
  g_clear_error (&self->error);
  G_OBJECT_CLASS (_sandbox_output_parent_class)->finalize (object);
}

static void
_sandbox_output_class_init (SandboxOutputClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = _sandbox_output_finalize;
}

static void
_sandbox_output_init (SandboxOutput *self)
{
  g_queue_init (&self->queue);
  self->op = g_cancellable_new ();
  self->flushes = g_ptr_array_new_with_free_func (g_object_unref);
}
