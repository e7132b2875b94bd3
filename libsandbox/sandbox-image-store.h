/* libsandbox - OCI images imported for the local backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <gio/gio.h>
#include "sandbox-version-macros.h"

G_BEGIN_DECLS

#define SANDBOX_TYPE_IMAGE (sandbox_image_get_type ())

SANDBOX_AVAILABLE_IN_0_2
G_DECLARE_FINAL_TYPE (SandboxImage, sandbox_image, SANDBOX, IMAGE, GObject)

SANDBOX_AVAILABLE_IN_0_2
const char         *sandbox_image_get_id         (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char * const *sandbox_image_get_names      (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char * const *sandbox_image_get_layers     (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
guint64             sandbox_image_get_size       (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char         *sandbox_image_get_rootfs     (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char * const *sandbox_image_get_env        (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char         *sandbox_image_get_workdir    (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char         *sandbox_image_get_user       (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char * const *sandbox_image_get_entrypoint (SandboxImage *self);
SANDBOX_AVAILABLE_IN_0_2
const char * const *sandbox_image_get_cmd        (SandboxImage *self);

#define SANDBOX_TYPE_IMAGE_STORE (sandbox_image_store_get_type ())

SANDBOX_AVAILABLE_IN_0_2
G_DECLARE_FINAL_TYPE (SandboxImageStore, sandbox_image_store, SANDBOX, IMAGE_STORE, GObject)

SANDBOX_AVAILABLE_IN_0_2
SandboxImageStore *sandbox_image_store_new           (const char          *path);
SANDBOX_AVAILABLE_IN_0_2
const char        *sandbox_image_store_get_path      (SandboxImageStore   *self);

SANDBOX_AVAILABLE_IN_0_2
void               sandbox_image_store_import_async  (SandboxImageStore   *self,
                                                      GFile               *source,
                                                      const char          *name,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
SandboxImage      *sandbox_image_store_import_finish (SandboxImageStore   *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
SANDBOX_AVAILABLE_IN_0_2
SandboxImage      *sandbox_image_store_import        (SandboxImageStore   *self,
                                                      GFile               *source,
                                                      const char          *name,
                                                      GCancellable        *cancellable,
                                                      GError             **error);

SANDBOX_AVAILABLE_IN_0_2
void               sandbox_image_store_list_async    (SandboxImageStore   *self,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
GPtrArray         *sandbox_image_store_list_finish   (SandboxImageStore   *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
SANDBOX_AVAILABLE_IN_0_2
GPtrArray         *sandbox_image_store_list          (SandboxImageStore   *self,
                                                      GCancellable        *cancellable,
                                                      GError             **error);

SANDBOX_AVAILABLE_IN_0_2
void               sandbox_image_store_lookup_async  (SandboxImageStore   *self,
                                                      const char          *reference,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
SandboxImage      *sandbox_image_store_lookup_finish (SandboxImageStore   *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
SANDBOX_AVAILABLE_IN_0_2
SandboxImage      *sandbox_image_store_lookup        (SandboxImageStore   *self,
                                                      const char          *reference,
                                                      GCancellable        *cancellable,
                                                      GError             **error);

SANDBOX_AVAILABLE_IN_0_2
void               sandbox_image_store_remove_async  (SandboxImageStore   *self,
                                                      const char          *reference,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
SANDBOX_AVAILABLE_IN_0_2
gboolean           sandbox_image_store_remove_finish (SandboxImageStore   *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
SANDBOX_AVAILABLE_IN_0_2
gboolean           sandbox_image_store_remove        (SandboxImageStore   *self,
                                                      const char          *reference,
                                                      GCancellable        *cancellable,
                                                      GError             **error);

G_END_DECLS
