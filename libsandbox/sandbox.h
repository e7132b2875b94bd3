/* libsandbox - run programs in isolated sandboxes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define __SANDBOX_INSIDE__

#include "sandbox-version.h"
#include "sandbox-version-macros.h"
#include "sandbox-enums.h"
#include "sandbox-error.h"
#include "sandbox-spec.h"
#include "sandbox-command.h"
#include "sandbox-exec-result.h"
#include "sandbox-metrics.h"
#include "sandbox-instance.h"
#include "sandbox-backend.h"
#include "sandbox-archive.h"
#include "sandbox-image-store.h"

#undef __SANDBOX_INSIDE__
