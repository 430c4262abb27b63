// libyaml's parser (Debian's libyaml-dev): YAMLTree reads the proxy's files with it directly, so the
// sidecar needs no Foundation (Yams, which wraps the same library, does).
#ifndef MESHTOP_CLIBYAML_SHIM_H
#define MESHTOP_CLIBYAML_SHIM_H
#include <yaml.h>
#endif
