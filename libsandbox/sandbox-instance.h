/* libsandbox - one live sandbox
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <gio/gio.h>
#include "sandbox-version-macros.h"
#include "sandbox-command.h"
#include "sandbox-exec-result.h"
#include "sandbox-metrics.h"

G_BEGIN_DECLS

typedef struct _SandboxBackend SandboxBackend;

/**
 * SandboxInstanceState:
 * @SANDBOX_INSTANCE_STATE_UNKNOWN: not known (yet)
 * @SANDBOX_INSTANCE_STATE_STARTING: being created or started
 * @SANDBOX_INSTANCE_STATE_RUNNING: ready to run commands
 * @SANDBOX_INSTANCE_STATE_STOPPED: stopped; its files are kept
 * @SANDBOX_INSTANCE_STATE_DESTROYED: destroyed; nothing is left of it
 * @SANDBOX_INSTANCE_STATE_FAILED: the provider reports it broken
 *
 * The life-cycle state of a [class@Sandbox.Instance].
 *
 * Since: 0.1
 */
typedef enum {
  SANDBOX_INSTANCE_STATE_UNKNOWN,
  SANDBOX_INSTANCE_STATE_STARTING,
  SANDBOX_INSTANCE_STATE_RUNNING,
  SANDBOX_INSTANCE_STATE_STOPPED,
  SANDBOX_INSTANCE_STATE_DESTROYED,
  SANDBOX_INSTANCE_STATE_FAILED,
} SandboxInstanceState;

#define SANDBOX_TYPE_INSTANCE (sandbox_instance_get_type ())

SANDBOX_AVAILABLE_IN_0_1
G_DECLARE_DERIVABLE_TYPE (SandboxInstance, sandbox_instance, SANDBOX, INSTANCE, GObject)

/**
 * SandboxInstanceClass::exec:
 * @self: a #SandboxInstance
 * @command: the command to run
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with a [class@Sandbox.ExecResult]
 *
 * Runs @command in the sandbox. Called by [method@Sandbox.Instance.exec_async].
 *
 * Since: 0.1
 */

/**
 * SandboxInstanceClass::upload:
 * @self: a #SandboxInstance
 * @source: the local file or directory to copy
 * @destination: the absolute path in the sandbox to copy it to
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`
 *
 * Copies @source into the sandbox. Called by [method@Sandbox.Instance.upload_async].
 *
 * Since: 0.1
 */

/**
 * SandboxInstanceClass::download:
 * @self: a #SandboxInstance
 * @source: the absolute path of a file or directory in the sandbox
 * @destination: the local file or directory to copy it to
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`
 *
 * Copies @source out of the sandbox. Called by
 * [method@Sandbox.Instance.download_async].
 *
 * Since: 0.1
 */

/**
 * SandboxInstanceClass::destroy:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`; a sandbox
 *   that is already gone is a success
 *
 * Destroys the sandbox and everything in it. Called by
 * [method@Sandbox.Instance.destroy_async].
 *
 * Since: 0.1
 */

/**
 * SandboxInstanceClass::pause:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`
 *
 * Pauses the sandbox: its processes stop running, its files are kept.
 * Called by [method@Sandbox.Instance.pause_async].
 *
 * Since: 0.2
 */

/**
 * SandboxInstanceClass::resume:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`
 *
 * Lets a paused sandbox run again. Called by
 * [method@Sandbox.Instance.resume_async].
 *
 * Since: 0.2
 */

/**
 * SandboxInstanceClass::get_metrics:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with a [class@Sandbox.Metrics]
 *
 * Measures what the sandbox uses. Called by
 * [method@Sandbox.Instance.get_metrics_async].
 *
 * Since: 0.2
 */

/**
 * SandboxInstanceClass::dup_port_url:
 * @self: a #SandboxInstance
 * @port: a TCP port inside the sandbox
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with a %NULL-terminated array of one or two
 *   strings: the URL, then the token the provider asks for, if any
 *   (`g_task_return_value()` with a %G_TYPE_STRV #GValue)
 *
 * Says where a server listening on @port in the sandbox is reached from
 * outside. Called by [method@Sandbox.Instance.dup_port_url_async].
 *
 * Since: 0.2
 */

/**
 * SandboxInstanceClass::set_egress_rules:
 * @self: a #SandboxInstance
 * @allow: (nullable) (array zero-terminated=1): the addresses and CIDR blocks
 *   the sandbox may reach, or %NULL
 * @deny: (nullable) (array zero-terminated=1): the addresses and CIDR blocks
 *   it may not reach (an allowed match wins), or %NULL
 * @cancellable: (nullable): a #GCancellable
 * @task: the #GTask to complete with `g_task_return_boolean()`
 *
 * Replaces the egress rules of the running sandbox. Called by
 * [method@Sandbox.Instance.set_egress_rules_async], for a backend with
 * %SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES.
 *
 * Since: 0.2
 */

/**
 * SandboxInstanceClass:
 * @parent_class: the parent class
 * @exec: run a command; complete @task with a [class@Sandbox.ExecResult]
 *   (`g_task_return_value()` with an object #GValue in C,
 *   `task.return_value(result)` in Python or JavaScript)
 * @upload: copy the local file or directory @source to @destination in the
 *   sandbox; complete @task with `g_task_return_boolean()`
 * @download: copy the file or directory @source in the sandbox to the local
 *   @destination; complete @task with `g_task_return_boolean()`
 * @destroy: destroy the sandbox and everything in it; a sandbox that is
 *   already gone is a success; complete @task with `g_task_return_boolean()`
 * @pause: stop every process of the sandbox, keeping its files; complete
 *   @task with `g_task_return_boolean()`. Since: 0.2
 * @resume: let a paused sandbox run again; complete @task with
 *   `g_task_return_boolean()`. Since: 0.2
 * @get_metrics: measure what the sandbox uses; complete @task with a
 *   [class@Sandbox.Metrics]. Since: 0.2
 * @dup_port_url: say where a server on a port in the sandbox is reached from
 *   outside; complete @task with a %G_TYPE_STRV value holding the URL and,
 *   when the provider needs one, the token (since 0.2)
 * @set_egress_rules: replace the addresses the running sandbox may reach;
 *   complete @task with `g_task_return_boolean()` (since 0.2)
 *
 * The virtual methods a backend implements. Each takes the #GTask that the
 * public `_async` method created, so that subclasses in every language
 * (including gjs, which cannot override a vfunc taking a callback) implement
 * the same slots; the public `_finish` methods check and propagate it.
 *
 * Since: 0.1
 */
struct _SandboxInstanceClass
{
  GObjectClass parent_class;

  void (*exec)     (SandboxInstance *self,
                    SandboxCommand  *command,
                    GCancellable    *cancellable,
                    GTask           *task);
  void (*upload)   (SandboxInstance *self,
                    GFile           *source,
                    const char      *destination,
                    GCancellable    *cancellable,
                    GTask           *task);
  void (*download) (SandboxInstance *self,
                    const char      *source,
                    GFile           *destination,
                    GCancellable    *cancellable,
                    GTask           *task);
  void (*destroy)  (SandboxInstance *self,
                    GCancellable    *cancellable,
                    GTask           *task);
  void (*pause)       (SandboxInstance *self,
                       GCancellable    *cancellable,
                       GTask           *task);
  void (*resume)      (SandboxInstance *self,
                       GCancellable    *cancellable,
                       GTask           *task);
  void (*get_metrics) (SandboxInstance *self,
                       GCancellable    *cancellable,
                       GTask           *task);
  void (*dup_port_url) (SandboxInstance *self,
                        guint            port,
                        GCancellable    *cancellable,
                        GTask           *task);
  void (*set_egress_rules) (SandboxInstance    *self,
                            const char * const *allow,
                            const char * const *deny,
                            GCancellable       *cancellable,
                            GTask              *task);

  /*< private >*/
  gpointer padding[7];
};

SANDBOX_AVAILABLE_IN_0_1
const char           *sandbox_instance_get_id         (SandboxInstance      *self);
SANDBOX_AVAILABLE_IN_0_1
SandboxBackend       *sandbox_instance_get_backend    (SandboxInstance      *self);
SANDBOX_AVAILABLE_IN_0_1
SandboxInstanceState  sandbox_instance_get_state      (SandboxInstance      *self);
SANDBOX_AVAILABLE_IN_0_1
void                  sandbox_instance_set_state      (SandboxInstance      *self,
                                                       SandboxInstanceState  state);
SANDBOX_AVAILABLE_IN_0_1
GHashTable           *sandbox_instance_get_labels     (SandboxInstance      *self);
SANDBOX_AVAILABLE_IN_0_1
void                  sandbox_instance_set_labels     (SandboxInstance      *self,
                                                       GHashTable           *labels);
SANDBOX_AVAILABLE_IN_0_1
gboolean              sandbox_instance_matches_labels (SandboxInstance      *self,
                                                       GHashTable           *labels);

SANDBOX_AVAILABLE_IN_0_1
void                  sandbox_instance_exec_async     (SandboxInstance      *self,
                                                       SandboxCommand       *command,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
SandboxExecResult    *sandbox_instance_exec_finish    (SandboxInstance      *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_1
SandboxExecResult    *sandbox_instance_exec           (SandboxInstance      *self,
                                                       SandboxCommand       *command,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

SANDBOX_AVAILABLE_IN_0_1
void                  sandbox_instance_upload_async   (SandboxInstance      *self,
                                                       GFile                *source,
                                                       const char           *destination,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
gboolean              sandbox_instance_upload_finish  (SandboxInstance      *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_1
gboolean              sandbox_instance_upload         (SandboxInstance      *self,
                                                       GFile                *source,
                                                       const char           *destination,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

SANDBOX_AVAILABLE_IN_0_1
void                  sandbox_instance_download_async (SandboxInstance      *self,
                                                       const char           *source,
                                                       GFile                *destination,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
gboolean              sandbox_instance_download_finish (SandboxInstance     *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
SANDBOX_AVAILABLE_IN_0_1
gboolean              sandbox_instance_download       (SandboxInstance      *self,
                                                       const char           *source,
                                                       GFile                *destination,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_get_transfer_progress (SandboxInstance *self,
                                                              guint64         *bytes_done,
                                                              gint64          *bytes_total);
SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_add_transferred (SandboxInstance    *self,
                                                        guint64             bytes);
SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_set_transfer_total (SandboxInstance *self,
                                                           gint64           bytes_total);

SANDBOX_AVAILABLE_IN_0_1
void                  sandbox_instance_destroy_async  (SandboxInstance      *self,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
gboolean              sandbox_instance_destroy_finish (SandboxInstance      *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_1
gboolean              sandbox_instance_destroy        (SandboxInstance      *self,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_pause_async    (SandboxInstance      *self,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_2
gboolean              sandbox_instance_pause_finish   (SandboxInstance      *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_2
gboolean              sandbox_instance_pause          (SandboxInstance      *self,
                                                       GCancellable         *cancellable,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_resume_async   (SandboxInstance      *self,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_2
gboolean              sandbox_instance_resume_finish  (SandboxInstance      *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_2
gboolean              sandbox_instance_resume         (SandboxInstance      *self,
                                                       GCancellable         *cancellable,
                                                       GError              **error);
SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_get_metrics_async  (SandboxInstance    *self,
                                                           GCancellable       *cancellable,
                                                           GAsyncReadyCallback callback,
                                                           gpointer            user_data);
SANDBOX_AVAILABLE_IN_0_2
SandboxMetrics       *sandbox_instance_get_metrics_finish (SandboxInstance    *self,
                                                           GAsyncResult       *result,
                                                           GError            **error);
SANDBOX_AVAILABLE_IN_0_2
SandboxMetrics       *sandbox_instance_get_metrics        (SandboxInstance    *self,
                                                           GCancellable       *cancellable,
                                                           GError            **error);
SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_dup_port_url_async  (SandboxInstance     *self,
                                                            guint                port,
                                                            GCancellable        *cancellable,
                                                            GAsyncReadyCallback  callback,
                                                            gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
char                 *sandbox_instance_dup_port_url_finish (SandboxInstance     *self,
                                                            GAsyncResult        *result,
                                                            char               **token,
                                                            GError             **error);
SANDBOX_AVAILABLE_IN_0_2
char                 *sandbox_instance_dup_port_url        (SandboxInstance     *self,
                                                            guint                port,
                                                            char               **token,
                                                            GCancellable        *cancellable,
                                                            GError             **error);
SANDBOX_AVAILABLE_IN_0_2
void                  sandbox_instance_set_egress_rules_async  (SandboxInstance     *self,
                                                                const char * const  *allow,
                                                                const char * const  *deny,
                                                                GCancellable        *cancellable,
                                                                GAsyncReadyCallback  callback,
                                                                gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
gboolean              sandbox_instance_set_egress_rules_finish (SandboxInstance     *self,
                                                                GAsyncResult        *result,
                                                                GError             **error);
SANDBOX_AVAILABLE_IN_0_2
gboolean              sandbox_instance_set_egress_rules        (SandboxInstance     *self,
                                                                const char * const  *allow,
                                                                const char * const  *deny,
                                                                GCancellable        *cancellable,
                                                                GError             **error);

G_END_DECLS
