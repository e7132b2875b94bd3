/* libsandbox - one writer for a command's output, used by every backend
 *
 * A backend hands over stdout and stderr as it receives them; the writer
 * sends them to the command's stdout-stream and stderr-stream in the order
 * received (one queue for both, one write at a time, so the same stream may
 * serve both), asynchronously: a stream that nobody reads (a full pipe)
 * stalls only this command's output, never the main loop, so other
 * sandboxes' time-outs and cancellations still run. Output without a stream
 * is captured. Back-pressure: a producer that can stop reading (a pipe, a
 * Connect stream) waits with _sandbox_output_flush_async () once
 * _sandbox_output_get_pending () passes SANDBOX_OUTPUT_HIGH_WATER; one that
 * cannot (a WebSocket) just keeps writing, and the bytes wait here.
 *
 * Not installed, not scanned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-private.h"

G_BEGIN_DECLS

/* Bytes queued above which a producer that can should stop reading. */
#define SANDBOX_OUTPUT_HIGH_WATER (256 * 1024)

#define SANDBOX_TYPE_OUTPUT (_sandbox_output_get_type ())
G_DECLARE_FINAL_TYPE (SandboxOutput, _sandbox_output, SANDBOX, OUTPUT, GObject)

/* The output of @command: to its stdout-stream and stderr-stream, or
 * captured where it has none. */
SandboxOutput *_sandbox_output_new            (SandboxCommand      *command);
/* Queues @len bytes of stdout, or of stderr when @is_stderr. Never blocks;
 * ignored after a write failed or after _sandbox_output_cancel (). */
void           _sandbox_output_write          (SandboxOutput       *self,
                                               gboolean             is_stderr,
                                               const guint8        *buf,
                                               gsize                len);
/* Bytes queued and not written yet; 0 once nothing more will be written
 * (after a write failed, or _sandbox_output_cancel ()). */
gsize          _sandbox_output_get_pending    (SandboxOutput       *self);
/* Drops what is queued and stops the write in progress: the command was
 * cancelled. Pending and later flushes succeed. */
void           _sandbox_output_cancel         (SandboxOutput       *self);
/* Completes once everything queued so far is written. Fails with the first
 * write error (prefixed "Cannot write the command's output"), or with
 * G_IO_ERROR_CANCELLED when @cancellable is cancelled first: then the
 * output is cancelled too. */
void           _sandbox_output_flush_async    (SandboxOutput       *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       _sandbox_output_flush_finish   (SandboxOutput       *self,
                                               GAsyncResult        *result,
                                               GError             **error);
/* The result of the command once it ended and its output was flushed: how
 * it ended, whether it timed out, the stdout and stderr captured where it
 * had no stream (stolen from @self; NULL for a stream), and the time since
 * @start_us, a g_get_monotonic_time () taken when it started. */
SandboxExecResult *_sandbox_output_steal_result (SandboxOutput   *self,
                                                 int              exit_status,
                                                 int              term_signal,
                                                 gboolean         timed_out,
                                                 gint64           start_us);

G_END_DECLS
