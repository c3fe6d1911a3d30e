// Pure parsers and rewriters for guest config files, one per style: string in, string out, idempotent, total.
#pragma once

// Every rewriter here keeps what it does not understand byte for byte
// (comments, ordering, whitespace, line endings), returns its input unchanged
// when there is nothing to do, and gives the same result when run on its own
// output. They accept any bytes (issue 7 fuzzes them).

#include "fixups/rules/bls.h"
#include "fixups/rules/boot_menu.h"
#include "fixups/rules/cloud_init.h"
#include "fixups/rules/cmdline.h"
#include "fixups/rules/consoles.h"
#include "fixups/rules/default_grub.h"
#include "fixups/rules/device_names.h"
#include "fixups/rules/fstab.h"
#include "fixups/rules/grub2.h"
#include "fixups/rules/grub_legacy.h"
#include "fixups/rules/grubenv.h"
#include "fixups/rules/ifcfg.h"
#include "fixups/rules/interfaces.h"
#include "fixups/rules/net_summary.h"
#include "fixups/rules/netplan.h"
#include "fixups/rules/nm_keyfile.h"
#include "fixups/rules/rpm_version.h"
#include "fixups/rules/shell_vars.h"
#include "fixups/rules/syslinux.h"
#include "fixups/rules/text.h"
#include "fixups/rules/udev_net_rules.h"
