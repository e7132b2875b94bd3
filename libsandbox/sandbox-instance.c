/* libsandbox - one live sandbox
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "sandbox-private.h"

/**
 * SandboxInstance:
 *
 * One live sandbox of a [class@Sandbox.Backend]: a long-lived isolated
 * environment in which commands run ([method@Sandbox.Instance.exec_async]),
 * files move in and out ([method@Sandbox.Instance.upload_async],
 * [method@Sandbox.Instance.download_async]), until it is destroyed
 * ([method@Sandbox.Instance.destroy_async]).
 *
 * Dropping the last reference to an instance does not destroy the sandbox:
 * sandboxes outlive the process that created them, so that another process
 * can find them again with [method@Sandbox.Backend.get_instance_async].
 *
 * This is an abstract type; each backend provides a subclass.
 *
 * Since: 0.1
 */

typedef struct
{
  char                 *id;
  SandboxBackend       *backend;
  SandboxInstanceState  state;
  GHashTable           *labels;
  /* The transfer in progress: any thread may report it. */
  GMutex                transfer_lock;
  guint64               transfer_done;
  gint64                transfer_total;
} SandboxInstancePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SandboxInstance, sandbox_instance, G_TYPE_OBJECT)

#define GET_PRIVATE(o) ((SandboxInstancePrivate *) sandbox_instance_get_instance_private (o))

enum {
  PROP_0,
  PROP_ID,
  PROP_BACKEND,
  PROP_STATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
sandbox_instance_finalize (GObject *object)
{
  SandboxInstancePrivate *priv = GET_PRIVATE (SANDBOX_INSTANCE (object));

  g_clear_pointer (&priv->id, g_free);
  g_clear_object (&priv->backend);
  g_clear_pointer (&priv->labels, g_hash_table_unref);
  g_mutex_clear (&priv->transfer_lock);

  G_OBJECT_CLASS (sandbox_instance_parent_class)->finalize (object);
}

static void
sandbox_instance_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  SandboxInstancePrivate *priv = GET_PRIVATE (SANDBOX_INSTANCE (object));

  switch (prop_id)
    {
    case PROP_ID: g_value_set_string (value, priv->id); break;
    case PROP_BACKEND: g_value_set_object (value, priv->backend); break;
    case PROP_STATE: g_value_set_enum (value, priv->state); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_instance_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  SandboxInstance *self = SANDBOX_INSTANCE (object);
  SandboxInstancePrivate *priv = GET_PRIVATE (self);

  switch (prop_id)
    {
    case PROP_ID: priv->id = g_value_dup_string (value); break;
    case PROP_BACKEND: priv->backend = g_value_dup_object (value); break;
    case PROP_STATE: sandbox_instance_set_state (self, g_value_get_enum (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_instance_class_init (SandboxInstanceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  _sandbox_init_i18n ();

  object_class->finalize = sandbox_instance_finalize;
  object_class->get_property = sandbox_instance_get_property;
  object_class->set_property = sandbox_instance_set_property;

  /**
   * SandboxInstance:id:
   *
   * The identifier of the sandbox, unique within its backend.
   *
   * Since: 0.1
   */
  properties[PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * SandboxInstance:backend:
   *
   * The backend the sandbox belongs to.
   *
   * Since: 0.1
   */
  properties[PROP_BACKEND] =
    g_param_spec_object ("backend", NULL, NULL, SANDBOX_TYPE_BACKEND,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * SandboxInstance:state:
   *
   * The life-cycle state, as last seen.
   *
   * Since: 0.1
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, SANDBOX_TYPE_INSTANCE_STATE,
                       SANDBOX_INSTANCE_STATE_UNKNOWN,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_instance_init (SandboxInstance *self)
{
  SandboxInstancePrivate *priv = GET_PRIVATE (self);

  priv->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_mutex_init (&priv->transfer_lock);
  priv->transfer_total = -1;
}

/**
 * sandbox_instance_get_id:
 * @self: a #SandboxInstance
 *
 * Gets [property@Sandbox.Instance:id].
 *
 * Returns: the identifier
 *
 * Since: 0.1
 */
const char *
sandbox_instance_get_id (SandboxInstance *self)
{
  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), NULL);
  return GET_PRIVATE (self)->id;
}

/**
 * sandbox_instance_get_backend:
 * @self: a #SandboxInstance
 *
 * Gets [property@Sandbox.Instance:backend].
 *
 * Returns: (transfer none): the backend
 *
 * Since: 0.1
 */
SandboxBackend *
sandbox_instance_get_backend (SandboxInstance *self)
{
  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), NULL);
  return GET_PRIVATE (self)->backend;
}

/**
 * sandbox_instance_get_state:
 * @self: a #SandboxInstance
 *
 * Gets [property@Sandbox.Instance:state].
 *
 * Returns: the state
 *
 * Since: 0.1
 */
SandboxInstanceState
sandbox_instance_get_state (SandboxInstance *self)
{
  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), SANDBOX_INSTANCE_STATE_UNKNOWN);
  return GET_PRIVATE (self)->state;
}

/**
 * sandbox_instance_set_state:
 * @self: a #SandboxInstance
 * @state: the new state
 *
 * Sets [property@Sandbox.Instance:state]. For backend implementations.
 *
 * Since: 0.1
 */
void
sandbox_instance_set_state (SandboxInstance      *self,
                            SandboxInstanceState  state)
{
  SandboxInstancePrivate *priv;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  priv = GET_PRIVATE (self);

  if (priv->state == state)
    return;
  priv->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

/**
 * sandbox_instance_get_labels:
 * @self: a #SandboxInstance
 *
 * Gets the labels of the sandbox.
 *
 * Returns: (transfer none) (element-type utf8 utf8): the labels
 *
 * Since: 0.1
 */
GHashTable *
sandbox_instance_get_labels (SandboxInstance *self)
{
  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), NULL);
  return GET_PRIVATE (self)->labels;
}

/**
 * sandbox_instance_set_labels:
 * @self: a #SandboxInstance
 * @labels: (nullable) (element-type utf8 utf8): the labels
 *
 * Replaces the labels of the sandbox object with @labels. For backend
 * implementations: it records what the provider reports and changes
 * nothing remotely.
 *
 * Since: 0.1
 */
void
sandbox_instance_set_labels (SandboxInstance *self,
                             GHashTable      *labels)
{
  SandboxInstancePrivate *priv;
  GHashTableIter iter;
  gpointer key, value;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  priv = GET_PRIVATE (self);

  g_hash_table_remove_all (priv->labels);
  if (labels == NULL)
    return;
  g_hash_table_iter_init (&iter, labels);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (priv->labels, g_strdup (key), g_strdup (value));
}

/**
 * sandbox_instance_matches_labels:
 * @self: a #SandboxInstance
 * @labels: (nullable) (element-type utf8 utf8): the labels to look for
 *
 * Tells whether the sandbox carries every label in @labels with the same
 * value. An empty or %NULL filter matches every sandbox.
 *
 * Returns: %TRUE if all labels match
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_matches_labels (SandboxInstance *self,
                                 GHashTable      *labels)
{
  SandboxInstancePrivate *priv;
  GHashTableIter iter;
  gpointer key, value;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);
  priv = GET_PRIVATE (self);

  if (labels == NULL)
    return TRUE;
  g_hash_table_iter_init (&iter, labels);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (g_strcmp0 (g_hash_table_lookup (priv->labels, key), value) != 0)
      return FALSE;
  return TRUE;
}

static gboolean
check_vfunc (GTask      *task,
             gpointer    vfunc,
             const char *what)
{
  SandboxInstance *self = g_task_get_source_object (task);
  SandboxBackend *backend;
  const char *name = NULL;

  if (vfunc != NULL)
    return TRUE;
  backend = sandbox_instance_get_backend (self);
  if (backend != NULL)
    name = sandbox_backend_get_name (backend);
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                           _("The %s backend cannot %s"),
                           name ? name : G_OBJECT_TYPE_NAME (self), what);
  return FALSE;
}

/* The vfuncs that take nothing but the cancellable: destroy, pause,
 * resume, get_metrics. */
typedef void (*PlainVfunc) (SandboxInstance *self,
                            GCancellable    *cancellable,
                            GTask           *task);

/* The body of their _async wrappers: hands the class slot at
 * VFUNC_OFFSET (named VFUNC_NAME) a task tagged SOURCE_TAG, or fails the
 * task with %SANDBOX_ERROR_NOT_SUPPORTED when the slot is empty (the
 * backend cannot WHAT). */
static void
call_plain_vfunc (SandboxInstance     *self,
                  gsize                vfunc_offset,
                  const char          *vfunc_name,
                  const char          *what,
                  GCancellable        *cancellable,
                  GAsyncReadyCallback  callback,
                  gpointer             user_data,
                  gpointer             source_tag)
{
  g_autoptr(GTask) task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, source_tag);
  PlainVfunc vfunc = G_STRUCT_MEMBER (PlainVfunc, SANDBOX_INSTANCE_GET_CLASS (self), vfunc_offset);

  if (check_vfunc (task, vfunc, what))
    {
      vfunc (self, cancellable, task);
      _sandbox_task_check_pending (task, vfunc_name);
    }
}

/* The end of the _finish of destroy, pause and resume: the task's outcome,
 * and on success the state the sandbox is in now. */
static gboolean
finish_state_change (SandboxInstance       *self,
                     GAsyncResult          *result,
                     SandboxInstanceState   state,
                     GError               **error)
{
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  sandbox_instance_set_state (self, state);
  return TRUE;
}

/* A command on a terminal needs a backend that can make one. */
static gboolean
check_tty (GTask *task)
{
  SandboxInstance *self = g_task_get_source_object (task);
  SandboxBackend *backend = sandbox_instance_get_backend (self);

  if (backend != NULL &&
      (sandbox_backend_get_capabilities (backend) & SANDBOX_BACKEND_CAPABILITY_TTY))
    return TRUE;
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                           _("The %s backend cannot run a command on a terminal. Run it "
                             "without a terminal (no “tty”, no “-t”), or use a backend "
                             "that can, such as local or e2b."),
                           backend ? sandbox_backend_get_name (backend) : G_OBJECT_TYPE_NAME (self));
  return FALSE;
}

/**
 * sandbox_instance_exec_async:
 * @self: a #SandboxInstance
 * @command: the command to run
 * @cancellable: (nullable): a #GCancellable; cancelling kills the command
 * @callback: (scope async): called when the command has ended
 * @user_data: data for @callback
 *
 * Runs @command in the sandbox. Its output is written to the streams of
 * @command as it arrives, or captured. A command that cannot be started
 * (not found, missing working directory) is an error, %SANDBOX_ERROR_EXEC;
 * a command that runs and fails is not: look at the result. A command with
 * [property@Sandbox.Command:tty] set fails with %SANDBOX_ERROR_NOT_SUPPORTED
 * unless the backend has %SANDBOX_BACKEND_CAPABILITY_TTY.
 *
 * Since: 0.1
 */
void
sandbox_instance_exec_async (SandboxInstance     *self,
                             SandboxCommand      *command,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxInstanceClass *klass;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (SANDBOX_IS_COMMAND (command));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_instance_exec_async);

  klass = SANDBOX_INSTANCE_GET_CLASS (self);
  if (sandbox_command_get_tty (command) && !check_tty (task))
    return;
  if (check_vfunc (task, klass->exec, _("run commands")))
    {
      klass->exec (self, command, cancellable, task);
      _sandbox_task_check_pending (task, "exec");
    }
}

/**
 * sandbox_instance_exec_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.exec_async].
 *
 * Returns: (transfer full): how the command ended, or %NULL with @error set
 *
 * Since: 0.1
 */
SandboxExecResult *
sandbox_instance_exec_finish (SandboxInstance  *self,
                              GAsyncResult     *result,
                              GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_exec_async, NULL);

  return _sandbox_task_propagate_object (G_TASK (result), SANDBOX_TYPE_EXEC_RESULT, error);
}

/**
 * sandbox_instance_exec:
 * @self: a #SandboxInstance
 * @command: the command to run
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Runs @command and waits for it. See [method@Sandbox.Instance.exec_async].
 *
 * Returns: (transfer full): how the command ended, or %NULL with @error set
 *
 * Since: 0.1
 */
SandboxExecResult *
sandbox_instance_exec (SandboxInstance  *self,
                       SandboxCommand   *command,
                       GCancellable     *cancellable,
                       GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_instance_exec_async (self, command, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_exec_finish (self, _sandbox_sync_call_wait (&call), error);
}

static void
reset_transfer (SandboxInstance *self)
{
  SandboxInstancePrivate *priv = GET_PRIVATE (self);

  g_mutex_lock (&priv->transfer_lock);
  priv->transfer_done = 0;
  priv->transfer_total = -1;
  g_mutex_unlock (&priv->transfer_lock);
}

/**
 * sandbox_instance_get_transfer_progress:
 * @self: a #SandboxInstance
 * @bytes_done: (out) (optional): return location for the bytes of file data
 *   copied so far
 * @bytes_total: (out) (optional): return location for the bytes the copy
 *   will move in all, or -1 if the backend does not know it
 *
 * How far the latest [method@Sandbox.Instance.upload_async] or
 * [method@Sandbox.Instance.download_async] on @self has come, as far as its
 * backend reports it (a backend that reports nothing leaves @bytes_done at
 * 0 until the copy ends). The counters start again with each copy; poll
 * them from a timeout while the copy runs, from any thread, to show
 * progress.
 *
 * Since: 0.2
 */
void
sandbox_instance_get_transfer_progress (SandboxInstance *self,
                                        guint64         *bytes_done,
                                        gint64          *bytes_total)
{
  SandboxInstancePrivate *priv;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));

  priv = GET_PRIVATE (self);
  g_mutex_lock (&priv->transfer_lock);
  if (bytes_done != NULL)
    *bytes_done = priv->transfer_done;
  if (bytes_total != NULL)
    *bytes_total = priv->transfer_total;
  g_mutex_unlock (&priv->transfer_lock);
}

/**
 * sandbox_instance_add_transferred:
 * @self: a #SandboxInstance
 * @bytes: bytes of file data just copied
 *
 * For backends: reports that the copy in progress moved @bytes more bytes
 * of file data, for [method@Sandbox.Instance.get_transfer_progress]. May
 * be called from any thread.
 *
 * Since: 0.2
 */
void
sandbox_instance_add_transferred (SandboxInstance *self,
                                  guint64          bytes)
{
  SandboxInstancePrivate *priv;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));

  priv = GET_PRIVATE (self);
  g_mutex_lock (&priv->transfer_lock);
  priv->transfer_done += bytes;
  g_mutex_unlock (&priv->transfer_lock);
}

/**
 * sandbox_instance_set_transfer_total:
 * @self: a #SandboxInstance
 * @bytes_total: the bytes of file data the copy in progress moves in all,
 *   or -1 if unknown
 *
 * For backends: reports the size of the copy in progress once known, for
 * [method@Sandbox.Instance.get_transfer_progress]. May be called from any
 * thread.
 *
 * Since: 0.2
 */
void
sandbox_instance_set_transfer_total (SandboxInstance *self,
                                     gint64           bytes_total)
{
  SandboxInstancePrivate *priv;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));

  priv = GET_PRIVATE (self);
  g_mutex_lock (&priv->transfer_lock);
  priv->transfer_total = MAX (bytes_total, -1);
  g_mutex_unlock (&priv->transfer_lock);
}

/**
 * sandbox_instance_upload_async:
 * @self: a #SandboxInstance
 * @source: a local file or directory
 * @destination: the absolute path it gets in the sandbox
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the copy is complete
 * @user_data: data for @callback
 *
 * Copies a file, or a whole directory tree, into the sandbox. The data is
 * streamed, never held whole in memory. Parent directories are created.
 *
 * Since: 0.1
 */
void
sandbox_instance_upload_async (SandboxInstance     *self,
                               GFile               *source,
                               const char          *destination,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxInstanceClass *klass;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (G_IS_FILE (source));
  g_return_if_fail (destination != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_instance_upload_async);
  reset_transfer (self);

  klass = SANDBOX_INSTANCE_GET_CLASS (self);
  if (check_vfunc (task, klass->upload, _("upload files")))
    {
      klass->upload (self, source, destination, cancellable, task);
      _sandbox_task_check_pending (task, "upload");
    }
}

/**
 * sandbox_instance_upload_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.upload_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_upload_finish (SandboxInstance  *self,
                                GAsyncResult     *result,
                                GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_upload_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_instance_upload:
 * @self: a #SandboxInstance
 * @source: a local file or directory
 * @destination: the absolute path it gets in the sandbox
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Copies a file or directory into the sandbox and waits. See
 * [method@Sandbox.Instance.upload_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_upload (SandboxInstance  *self,
                         GFile            *source,
                         const char       *destination,
                         GCancellable     *cancellable,
                         GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_upload_async (self, source, destination, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_upload_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_instance_download_async:
 * @self: a #SandboxInstance
 * @source: an absolute path in the sandbox
 * @destination: where the file or directory goes locally
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the copy is complete
 * @user_data: data for @callback
 *
 * Copies a file, or a whole directory tree, out of the sandbox. The data is
 * streamed, never held whole in memory. An existing @destination file is
 * replaced.
 *
 * Since: 0.1
 */
void
sandbox_instance_download_async (SandboxInstance     *self,
                                 const char          *source,
                                 GFile               *destination,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxInstanceClass *klass;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (source != NULL);
  g_return_if_fail (G_IS_FILE (destination));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_instance_download_async);
  reset_transfer (self);

  klass = SANDBOX_INSTANCE_GET_CLASS (self);
  if (check_vfunc (task, klass->download, _("download files")))
    {
      klass->download (self, source, destination, cancellable, task);
      _sandbox_task_check_pending (task, "download");
    }
}

/**
 * sandbox_instance_download_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.download_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_download_finish (SandboxInstance  *self,
                                  GAsyncResult     *result,
                                  GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_download_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_instance_download:
 * @self: a #SandboxInstance
 * @source: an absolute path in the sandbox
 * @destination: where the file or directory goes locally
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Copies a file or directory out of the sandbox and waits. See
 * [method@Sandbox.Instance.download_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_download (SandboxInstance  *self,
                           const char       *source,
                           GFile            *destination,
                           GCancellable     *cancellable,
                           GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_download_async (self, source, destination, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_download_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_instance_destroy_async:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the sandbox is gone
 * @user_data: data for @callback
 *
 * Destroys the sandbox: every process in it is killed and its files are
 * removed. Destroying a sandbox that is already gone succeeds.
 *
 * Since: 0.1
 */
void
sandbox_instance_destroy_async (SandboxInstance     *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  call_plain_vfunc (self, G_STRUCT_OFFSET (SandboxInstanceClass, destroy), "destroy", _("destroy sandboxes"),
                    cancellable, callback, user_data, sandbox_instance_destroy_async);
}

/**
 * sandbox_instance_destroy_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.destroy_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_destroy_finish (SandboxInstance  *self,
                                 GAsyncResult     *result,
                                 GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_destroy_async, FALSE);

  return finish_state_change (self, result, SANDBOX_INSTANCE_STATE_DESTROYED, error);
}

/**
 * sandbox_instance_destroy:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Destroys the sandbox and waits. See [method@Sandbox.Instance.destroy_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
sandbox_instance_destroy (SandboxInstance  *self,
                          GCancellable     *cancellable,
                          GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_destroy_async (self, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_destroy_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_instance_dup_port_url_async:
 * @self: a #SandboxInstance
 * @port: a TCP port, 1 to 65535, that a server in the sandbox listens on
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the URL
 * @user_data: data for @callback
 *
 * Asks where a server listening on @port inside the sandbox is reached
 * from outside: a URL (for example `https://3000-ID.example.dev`), and on
 * providers that ask for one, a token to send with every request (see
 * [method@Sandbox.Instance.dup_port_url_finish]). A backend without
 * %SANDBOX_BACKEND_CAPABILITY_PORTS, or a sandbox that cannot be reached
 * (a local one without network), fails with %SANDBOX_ERROR_NOT_SUPPORTED.
 *
 * Since: 0.2
 */
void
sandbox_instance_dup_port_url_async (SandboxInstance     *self,
                                     guint                port,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxInstanceClass *klass;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_instance_dup_port_url_async);

  if (port == 0 || port > 65535)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("%u is not a TCP port; give a number from 1 to 65535."), port);
      return;
    }
  klass = SANDBOX_INSTANCE_GET_CLASS (self);
  if (check_vfunc (task, klass->dup_port_url, _("expose ports")))
    {
      klass->dup_port_url (self, port, cancellable, task);
      _sandbox_task_check_pending (task, "dup_port_url");
    }
}

/* Whether @text is only printable ASCII (no space, no control). */
static gboolean
is_printable_ascii (const char *text)
{
  for (const char *p = text; *p != '\0'; p++)
    if (*p < 0x21 || *p > 0x7e)
      return FALSE;
  return TRUE;
}

static gboolean
is_port_url (const char *url)
{
  return is_printable_ascii (url) &&
         (g_ascii_strncasecmp (url, "http://", 7) == 0 || g_ascii_strncasecmp (url, "https://", 8) == 0);
}

/**
 * sandbox_instance_dup_port_url_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @token: (out) (optional) (nullable) (transfer full): where to store the
 *   token to send with each request (Daytona's `x-daytona-preview-token`
 *   header), or %NULL when the URL needs none
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.dup_port_url_async].
 *
 * Returns: (transfer full): the URL, or %NULL with @error set
 *
 * Since: 0.2
 */
char *
sandbox_instance_dup_port_url_finish (SandboxInstance  *self,
                                      GAsyncResult     *result,
                                      char            **token,
                                      GError          **error)
{
  g_auto(GStrv) parts = NULL;
  char *url;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_dup_port_url_async, NULL);

  if (token != NULL)
    *token = NULL;
  parts = _sandbox_task_propagate_strv (G_TASK (result), error);
  if (parts == NULL)
    return NULL;
  if (parts[0] == NULL || parts[0][0] == '\0')
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("The backend gave no URL for the port; this is a bug in the backend"));
      return NULL;
    }
  /* What a provider gave: printed as it came (sandboxctl port-url), an
   * escape sequence in it drove the user's terminal, and another scheme
   * (javascript:, file:) is no server of the sandbox. A URL is ASCII. */
  if (!is_port_url (parts[0]) || (parts[1] != NULL && !is_printable_ascii (parts[1])))
    {
      g_autofree char *shown = _sandbox_display_text (is_port_url (parts[0]) ? parts[1] : parts[0]);

      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("The backend gave the port a URL or token that is not one (“%s”): a URL "
                     "is http:// or https:// and a token printable ASCII. Check the backend's "
                     "API URL."), shown);
      return NULL;
    }
  url = g_strdup (parts[0]);
  if (token != NULL && parts[1] != NULL && parts[1][0] != '\0')
    *token = g_strdup (parts[1]);
  return url;
}

/**
 * sandbox_instance_dup_port_url:
 * @self: a #SandboxInstance
 * @port: a TCP port that a server in the sandbox listens on
 * @token: (out) (optional) (nullable) (transfer full): where to store the
 *   token to send with each request, or %NULL when the URL needs none
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks where a server on @port in the sandbox is reached, and waits. See
 * [method@Sandbox.Instance.dup_port_url_async].
 *
 * Returns: (transfer full): the URL, or %NULL with @error set
 *
 * Since: 0.2
 */
char *
sandbox_instance_dup_port_url (SandboxInstance  *self,
                               guint             port,
                               char            **token,
                               GCancellable     *cancellable,
                               GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_instance_dup_port_url_async (self, port, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_dup_port_url_finish (self, _sandbox_sync_call_wait (&call), token, error);
}

/* Egress rules of a running sandbox (since 0.2) */

/**
 * sandbox_instance_set_egress_rules_async:
 * @self: a #SandboxInstance
 * @allow: (nullable) (array zero-terminated=1): destinations the sandbox may
 *   reach even when @deny names them
 * @deny: (nullable) (array zero-terminated=1): destinations it may not reach
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the rules apply
 * @user_data: data for @callback
 *
 * Replaces the egress rules of a running sandbox, as
 * [method@Sandbox.Spec.set_egress_rules] sets them at creation (same
 * entries, same meaning); both %NULL or empty removes them, so that every
 * destination is reached. Connections already made stay up. The sandbox
 * must have been created with [property@Sandbox.Spec:network]. Backends
 * without %SANDBOX_BACKEND_CAPABILITY_EGRESS_RULES fail with
 * %SANDBOX_ERROR_NOT_SUPPORTED.
 *
 * Since: 0.2
 */
void
sandbox_instance_set_egress_rules_async (SandboxInstance     *self,
                                         const char * const  *allow,
                                         const char * const  *deny,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SandboxInstanceClass *klass;

  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = _sandbox_task_new_tagged (self, cancellable, callback, user_data, sandbox_instance_set_egress_rules_async);

  klass = SANDBOX_INSTANCE_GET_CLASS (self);
  if (check_vfunc (task, klass->set_egress_rules, _("change a sandbox's egress rules")))
    {
      klass->set_egress_rules (self, allow, deny, cancellable, task);
      _sandbox_task_check_pending (task, "set_egress_rules");
    }
}

/**
 * sandbox_instance_set_egress_rules_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.set_egress_rules_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_instance_set_egress_rules_finish (SandboxInstance  *self,
                                          GAsyncResult     *result,
                                          GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_set_egress_rules_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * sandbox_instance_set_egress_rules:
 * @self: a #SandboxInstance
 * @allow: (nullable) (array zero-terminated=1): destinations the sandbox may
 *   reach even when @deny names them
 * @deny: (nullable) (array zero-terminated=1): destinations it may not reach
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Replaces the sandbox's egress rules and waits. See
 * [method@Sandbox.Instance.set_egress_rules_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_instance_set_egress_rules (SandboxInstance     *self,
                                   const char * const  *allow,
                                   const char * const  *deny,
                                   GCancellable        *cancellable,
                                   GError             **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_set_egress_rules_async (self, allow, deny, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_set_egress_rules_finish (self, _sandbox_sync_call_wait (&call), error);
}

/* Pause, resume and metrics (since 0.2) */

/**
 * sandbox_instance_pause_async:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the sandbox is paused
 * @user_data: data for @callback
 *
 * Pauses the sandbox: every process in it stops running and its files are
 * kept, until [method@Sandbox.Instance.resume_async]. A paused sandbox's
 * [property@Sandbox.Instance:state] is %SANDBOX_INSTANCE_STATE_STOPPED and
 * it refuses commands until it is resumed; it can still be destroyed.
 * Backends without %SANDBOX_BACKEND_CAPABILITY_PAUSE fail with
 * %SANDBOX_ERROR_NOT_SUPPORTED.
 *
 * Since: 0.2
 */
void
sandbox_instance_pause_async (SandboxInstance     *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  call_plain_vfunc (self, G_STRUCT_OFFSET (SandboxInstanceClass, pause), "pause", _("pause sandboxes"),
                    cancellable, callback, user_data, sandbox_instance_pause_async);
}

/**
 * sandbox_instance_pause_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.pause_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_instance_pause_finish (SandboxInstance  *self,
                               GAsyncResult     *result,
                               GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_pause_async, FALSE);

  return finish_state_change (self, result, SANDBOX_INSTANCE_STATE_STOPPED, error);
}

/**
 * sandbox_instance_pause:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Pauses the sandbox and waits. See [method@Sandbox.Instance.pause_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_instance_pause (SandboxInstance  *self,
                        GCancellable     *cancellable,
                        GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_pause_async (self, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_pause_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_instance_resume_async:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the sandbox runs again
 * @user_data: data for @callback
 *
 * Lets a sandbox paused by [method@Sandbox.Instance.pause_async] run again,
 * with the files it had. Resuming a sandbox that runs succeeds. Backends
 * without %SANDBOX_BACKEND_CAPABILITY_PAUSE fail with
 * %SANDBOX_ERROR_NOT_SUPPORTED.
 *
 * Since: 0.2
 */
void
sandbox_instance_resume_async (SandboxInstance     *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  call_plain_vfunc (self, G_STRUCT_OFFSET (SandboxInstanceClass, resume), "resume", _("resume sandboxes"),
                    cancellable, callback, user_data, sandbox_instance_resume_async);
}

/**
 * sandbox_instance_resume_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.resume_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_instance_resume_finish (SandboxInstance  *self,
                                GAsyncResult     *result,
                                GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_resume_async, FALSE);

  return finish_state_change (self, result, SANDBOX_INSTANCE_STATE_RUNNING, error);
}

/**
 * sandbox_instance_resume:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Resumes the sandbox and waits. See [method@Sandbox.Instance.resume_async].
 *
 * Returns: %TRUE on success
 *
 * Since: 0.2
 */
gboolean
sandbox_instance_resume (SandboxInstance  *self,
                         GCancellable     *cancellable,
                         GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), FALSE);

  _sandbox_sync_call_init (&call);
  sandbox_instance_resume_async (self, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_resume_finish (self, _sandbox_sync_call_wait (&call), error);
}

/**
 * sandbox_instance_get_metrics_async:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the measurement
 * @user_data: data for @callback
 *
 * Measures what the live sandbox uses: processor, memory and disk.
 * Backends without %SANDBOX_BACKEND_CAPABILITY_METRICS fail with
 * %SANDBOX_ERROR_NOT_SUPPORTED.
 *
 * Since: 0.2
 */
void
sandbox_instance_get_metrics_async (SandboxInstance     *self,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_return_if_fail (SANDBOX_IS_INSTANCE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  call_plain_vfunc (self, G_STRUCT_OFFSET (SandboxInstanceClass, get_metrics), "get_metrics", _("report metrics"),
                    cancellable, callback, user_data, sandbox_instance_get_metrics_async);
}

/**
 * sandbox_instance_get_metrics_finish:
 * @self: a #SandboxInstance
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Completes [method@Sandbox.Instance.get_metrics_async].
 *
 * Returns: (transfer full): what the sandbox uses, or %NULL with @error set
 *
 * Since: 0.2
 */
SandboxMetrics *
sandbox_instance_get_metrics_finish (SandboxInstance  *self,
                                     GAsyncResult     *result,
                                     GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == sandbox_instance_get_metrics_async, NULL);

  return _sandbox_task_propagate_object (G_TASK (result), SANDBOX_TYPE_METRICS, error);
}

/**
 * sandbox_instance_get_metrics:
 * @self: a #SandboxInstance
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Measures the sandbox and waits. See
 * [method@Sandbox.Instance.get_metrics_async].
 *
 * Returns: (transfer full): what the sandbox uses, or %NULL with @error set
 *
 * Since: 0.2
 */
SandboxMetrics *
sandbox_instance_get_metrics (SandboxInstance  *self,
                              GCancellable     *cancellable,
                              GError          **error)
{
  g_auto(SandboxSyncCall) call = SANDBOX_SYNC_CALL_INIT;

  g_return_val_if_fail (SANDBOX_IS_INSTANCE (self), NULL);

  _sandbox_sync_call_init (&call);
  sandbox_instance_get_metrics_async (self, cancellable, _sandbox_sync_call_done, &call);
  return sandbox_instance_get_metrics_finish (self, _sandbox_sync_call_wait (&call), error);
}
