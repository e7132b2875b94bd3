/* libsandbox - what the remote-backends module gets from the library
 *
 * The daytona and e2b backends, with the REST and Connect clients they
 * share, are built as a module (libsandbox-remote.so in the library's
 * private directory) that the registry loads only when one of them is asked
 * for by name, or all names are listed: so a program that only uses the
 * local backend never loads libsoup and its dependencies.
 *
 * The module links libsandbox-1.0.so for the public API. The few private
 * functions it needs are hidden in the library, and SandboxOutput is a type
 * the local backend uses too, so the library owns it (one GType per
 * process) and hands these functions to the module in a table when it
 * loads it. libsandbox/sandbox-remote-imports.c defines the private names
 * in the module as calls through that table, so the backends' code is the
 * same in the module and in the tests that link it statically.
 *
 * A program that links libsandbox-internal.la (the library's code
 * statically: tests of private helpers, fuzz targets) must not load the
 * module, which would bring libsandbox-1.0.so and its types a second time:
 * such programs create the remote types directly, never by name.
 *
 * Not installed, not scanned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-output-private.h"

G_BEGIN_DECLS

/* The file name of the module, in SANDBOX_MODULE_DIR (SANDBOX_REMOTE_MODULE
 * names another file: the build tree's, for the tests). */
#define SANDBOX_REMOTE_MODULE_NAME "libsandbox-remote.so"
/* The function the module exports. */
#define SANDBOX_REMOTE_MODULE_ENTRY "sandbox_remote_module_register"

typedef struct
{
  /* sizeof (SandboxRemoteImports) and the library's version: the module
   * refuses a table from another build. */
  gsize          size;
  const char    *version;

  GType          (*output_get_type)      (void);
  SandboxOutput *(*output_new)           (SandboxCommand      *command);
  void           (*output_write)         (SandboxOutput       *self,
                                          gboolean             is_stderr,
                                          const guint8        *buf,
                                          gsize                len);
  gsize          (*output_get_pending)   (SandboxOutput       *self);
  void           (*output_cancel)        (SandboxOutput       *self);
  void           (*output_flush_async)   (SandboxOutput       *self,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
  gboolean       (*output_flush_finish)  (SandboxOutput       *self,
                                          GAsyncResult        *result,
                                          GError             **error);
  SandboxExecResult *(*output_steal_result) (SandboxOutput  *self,
                                              int             exit_status,
                                              int             term_signal,
                                              gboolean        timed_out,
                                              gint64          start_us);
  void           (*task_return_object)   (GTask               *task,
                                          gpointer             object);
  /* A provider's or a remote sandbox's text in a message: shown escaped. */
  char          *(*display_text)         (const char          *text);
} SandboxRemoteImports;

/* Registers daytona and e2b; FALSE with @error set if the module is refused
 * (built for another version of the library). Exported by the module. */
typedef gboolean (*SandboxRemoteModuleRegister) (const SandboxRemoteImports  *imports,
                                                 GError                     **error);

/* In the module only (sandbox-remote-imports.c): keeps @imports for the
 * forwarding functions; FALSE with @error set if it does not fit. */
gboolean      _sandbox_remote_imports_set (const SandboxRemoteImports  *imports,
                                           GError                     **error);

/* In the library (backends/sandbox-builtins.c): whether @name is a backend
 * of the module, and loading it (once; later calls return the first result). */
gboolean      _sandbox_is_remote_backend_name (const char  *name);
gboolean      _sandbox_ensure_remote_backends (GError     **error);

G_END_DECLS
