/* libsandbox - what every cloud backend does the same way
 *
 * Beside the REST client (sandbox-rest-private.h), in the spirit of
 * libjcat's jcat-gnutls-common.c: the pieces a cloud backend would
 * otherwise copy from another one.
 *
 *  - settings: a property, else the environment variable the provider's
 *    SDKs read;
 *  - the reaper: every create carries a label with a fresh token
 *    (SANDBOX_CLOUD_CREATE_TOKEN); when the create's outcome is unknown
 *    (the answer was lost, garbled or late, or the caller cancelled), the
 *    sandboxes carrying the token are found and deleted before the error
 *    is returned: no orphan;
 *  - paged listing, to the end, with a bound on the number of pages.
 *
 * A backend describes its provider's sandbox collection once, in a static
 * SandboxCloudApi. JSON helpers: sandbox-json-private.h.
 *
 * Not installed, not scanned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-json-private.h"
#include "sandbox-rest-private.h"

G_BEGIN_DECLS

/* The label (Daytona) or metadata key (E2B) holding the create token.
 * Hidden from an instance's labels. */
#define SANDBOX_CLOUD_CREATE_TOKEN "libsandbox.create-token"

typedef struct
{
  const char *provider;        /* in messages: "Daytona" */
  const char *id_member;       /* a listed sandbox's id: "id" */
  const char *labels_member;   /* the object with its labels, and the create token: "labels" */
  const char *item_path;       /* one sandbox's path is this and its escaped id: "sandbox/" */
  const char *list_path;       /* lists the live sandboxes, its query started: "sandbox?limit=200" */
  const char *reap_path;       /* the same in every state, for the reaper */
  const char *page_parameter;  /* the query parameter naming the next page: "cursor" */
  guint       busy_retries;    /* a DELETE answered 409 (a state change in progress) is sent
                                * again every 250 ms, at most this many times */
  const char * const *gone_states; /* values of a sandbox's "state" that mean it stopped or
                                    * is going: NULL when only 404 says so */
  /* The sandboxes of a list reply (borrowed from @reply), or NULL when it is
   * not a list; *@next: the next page's token, or NULL on the last page. */
  JsonArray       *(*parse_page)   (JsonNode       *reply,
                                    SoupMessage    *msg,
                                    const char    **next);
  /* A listed sandbox as an instance, or NULL to leave it out (gone, no id). */
  SandboxInstance *(*instance_new) (SandboxBackend *backend,
                                    JsonObject     *item);
  /* The query parameter, escaped and newly allocated, that keeps only the
   * sandboxes carrying every label of @labels (not empty): "labels=..." */
  char            *(*label_filter) (GHashTable     *labels);
} SandboxCloudApi;

/* The labels (Daytona) or metadata (E2B) to send with a create: those of
 * @labels (may be NULL), borrowed, and SANDBOX_CLOUD_CREATE_TOKEN with a
 * fresh token, which *@token receives (owned by the caller, who frees it
 * after the table, and hands it to _sandbox_cloud_create_failed ()). */
GHashTable *_sandbox_cloud_create_labels         (GHashTable            *labels,
                                                  char                 **token);

/* What a remote terminal is sent for @signum when its API has no signal
 * call for it: the key of the terminal's line discipline that makes it
 * (Ctrl-C for SIGINT, Ctrl-\ for SIGQUIT, Ctrl-Z for SIGTSTP), or NULL. */
const char *_sandbox_cloud_tty_signal_key        (int                    signum);

/* For a provider whose exec call takes one shell line rather than argv:
 * appends to @line each of @words (a NULL-terminated vector) quoted for a
 * POSIX shell, separated by spaces, and after a space unless @line is empty
 * or already ends with one. */
void        _sandbox_cloud_shell_append_words    (GString               *line,
                                                  const char * const    *words);
/* The same for a command's environment @env (may be NULL): one word
 * NAME=value per variable, for env(1). */
void        _sandbox_cloud_shell_append_env      (GString               *line,
                                                  GHashTable            *env);

/* Calls @func (@task) once, @delay_ms from now, on @task's main context,
 * holding a reference on @task until then: the wait of a poll ("until the
 * sandbox is started") or of a retry. @name, a static string, names the
 * source for profilers. */
void        _sandbox_cloud_task_later            (GTask                 *task,
                                                  guint                  delay_ms,
                                                  void                 (*func) (GTask *task),
                                                  const char            *name);

/* Whether @id, a sandbox's id as a provider gave it, is one libsandbox
 * takes: 1 to 128 letters, digits, '.', '_', ':' or '-', not "." nor "..".
 * Daytona's ids are UUIDs, E2B's letters and digits (with a client id
 * after a '-'). Anything else (escape sequences, '/', spaces) the host
 * would put in messages, URLs and the user's scripts (--id-env): such a
 * reply is refused, or left out of a listing. */
gboolean    _sandbox_cloud_id_is_valid           (const char            *id);

/* @value when it is set and not empty, else the environment variable
 * @variable when it is set and not empty, else NULL. */
const char *_sandbox_cloud_setting               (const char            *value,
                                                  const char            *variable);

/* A property's spec: a read-write string with no nick nor blurb (the
 * settings of a cloud backend: API key, URL, ...). */
GParamSpec *_sandbox_cloud_param_string          (const char            *name);

/* Lists the live sandboxes that carry every label of @want (may be NULL)
 * page by page with @client, as @api says, and returns a GListStore of
 * SandboxInstance on @task (whose source object is the backend); the
 * labels are checked again here, for servers that ignore the filter.
 * Takes a reference on @task. */
void        _sandbox_cloud_list                  (SandboxRestClient     *client,
                                                  const SandboxCloudApi *api,
                                                  GHashTable            *want,
                                                  GTask                 *task);

/* Fails @task with @failure (taken), the error of a create whose sandbox
 * was to carry the create token @token. When the create may have made a
 * sandbox all the same (cancelled, unavailable, timed out, garbled or
 * unexplained answer; not a refusal, 4xx), the sandboxes that carry the
 * token (listed from @api->reap_path) are deleted first; what could not be
 * looked for or deleted is added to the message. Not cancellable: nothing
 * must be left behind. Takes over the caller's reference on @task. */
void        _sandbox_cloud_create_failed         (SandboxRestClient     *client,
                                                  const SandboxCloudApi *api,
                                                  const char            *token,
                                                  GError                *failure,
                                                  GTask                 *task);
/* Fails @task with @failure (taken) once the sandbox @id is deleted (it
 * was made, then failed to start, or the caller gave up on it). */
void        _sandbox_cloud_delete_and_fail       (SandboxRestClient     *client,
                                                  const SandboxCloudApi *api,
                                                  const char            *id,
                                                  GError                *failure,
                                                  GTask                 *task);

/* The destroy vfunc: deletes the sandbox of @task's source object (DELETE
 * @api->item_path and its escaped id) with @task's cancellable, then marks
 * it destroyed and completes @task with TRUE. Already gone (404, 410)
 * counts as done; a 409 (a state change in progress) is sent again every
 * 250 ms, at most @busy_retries times. */
void        _sandbox_cloud_destroy               (SandboxRestClient     *client,
                                                  const SandboxCloudApi *api,
                                                  guint                  busy_retries,
                                                  GTask                 *task);

/* After a command's stream or status poll failed with @failure (taken):
 * asks the API (GET @api->item_path and the id) whether @instance still
 * runs. When it does not (404, or a state in @api->gone_states), @instance
 * is marked destroyed and _finish () returns SANDBOX_ERROR_NOT_FOUND saying
 * the sandbox is gone and what to do; else it returns @failure. Not
 * cancellable (it explains an error the caller is about to get). */
void        _sandbox_cloud_check_gone_async      (SandboxRestClient     *client,
                                                  const SandboxCloudApi *api,
                                                  SandboxInstance       *instance,
                                                  GError                *failure,
                                                  GAsyncReadyCallback    callback,
                                                  gpointer               user_data);
GError     *_sandbox_cloud_check_gone_finish     (GAsyncResult          *result);

/* Completes @task with @instance once its SandboxSpec:workdir @workdir is
 * made (mkdir -p, in /, as the user its commands run as), at once when
 * @workdir is NULL: with a POST of @folder_url, a request of the provider
 * that does mkdir -p, when there is one, else with an exec. When it cannot
 * be made, deletes the sandbox and fails @task saying what to do. Takes
 * over the caller's reference on @task. */
void        _sandbox_cloud_return_with_workdir   (SandboxRestClient     *client,
                                                  const SandboxCloudApi *api,
                                                  SandboxInstance       *instance,
                                                  const char            *workdir,
                                                  const char            *folder_url,
                                                  GTask                 *task);

G_END_DECLS
