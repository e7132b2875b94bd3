/* libsandbox - the backend contract test's fixtures
 *
 * Every backend runs the same test bodies (test-contract.c). A fixture
 * brings its backend up (an emulator for remote ones) and down again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsandbox/sandbox.h>

typedef struct
{
  const char *name;                              /* backend name for sandbox_backend_new_for_name */
  gpointer  (*start)      (GError **error);      /* NULL if nothing to start; may set env vars */
  void      (*stop)       (gpointer state);
  guint     (*count_live) (gpointer state);      /* sandboxes alive on the provider side */
} ContractFixture;
