/* libsandbox - directory trees as tar streams
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <gio/gio.h>
#include "sandbox-version-macros.h"
#include "sandbox-instance.h"

G_BEGIN_DECLS

/**
 * SandboxArchiveFlags:
 * @SANDBOX_ARCHIVE_NONE: no flags: an existing file is replaced
 * @SANDBOX_ARCHIVE_KEEP_EXISTING: keep a file that already exists at the
 *   destination instead of replacing it (for content-addressed stores, where
 *   the same name means the same content)
 *
 * Flags for [func@Sandbox.archive_extract].
 *
 * Since: 0.1
 */
typedef enum /*< flags >*/
{
  SANDBOX_ARCHIVE_NONE          = 0,
  SANDBOX_ARCHIVE_KEEP_EXISTING = 1 << 0,
} SandboxArchiveFlags;

SANDBOX_AVAILABLE_IN_0_1
gboolean sandbox_archive_write                   (GFile                *base_dir,
                                                  const char * const   *paths,
                                                  GOutputStream        *archive,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
SANDBOX_AVAILABLE_IN_0_1
gboolean sandbox_archive_extract                 (GInputStream         *archive,
                                                  GFile                *dest_dir,
                                                  SandboxArchiveFlags   flags,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
SANDBOX_AVAILABLE_IN_0_2
gboolean sandbox_archive_extract_paths           (GInputStream         *archive,
                                                  GFile                *dest_dir,
                                                  const char * const   *paths,
                                                  SandboxArchiveFlags   flags,
                                                  GCancellable         *cancellable,
                                                  GError              **error);

SANDBOX_AVAILABLE_IN_0_1
void     sandbox_instance_upload_archive_async   (SandboxInstance      *self,
                                                  GInputStream         *archive,
                                                  const char           *destination,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
SANDBOX_AVAILABLE_IN_0_1
gboolean sandbox_instance_upload_archive_finish  (SandboxInstance      *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);
SANDBOX_AVAILABLE_IN_0_1
gboolean sandbox_instance_upload_archive         (SandboxInstance      *self,
                                                  GInputStream         *archive,
                                                  const char           *destination,
                                                  GCancellable         *cancellable,
                                                  GError              **error);

SANDBOX_AVAILABLE_IN_0_1
void     sandbox_instance_download_archive_async  (SandboxInstance     *self,
                                                   const char          *source,
                                                   const char * const  *paths,
                                                   GOutputStream       *archive,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_1
gboolean sandbox_instance_download_archive_finish (SandboxInstance     *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
SANDBOX_AVAILABLE_IN_0_1
gboolean sandbox_instance_download_archive        (SandboxInstance     *self,
                                                   const char          *source,
                                                   const char * const  *paths,
                                                   GOutputStream       *archive,
                                                   GCancellable        *cancellable,
                                                   GError             **error);

G_END_DECLS
