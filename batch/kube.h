// `vdkit batch --emit-kubernetes DIR`: the plan as a ConfigMap, an Indexed Job that runs one row per pod, and a
// Containerfile that builds vdkit from these sources on Debian 12.
#pragma once

#include <string>
#include <vector>

#include "batch/plan.h"

namespace vdkit::batch {

struct KubeOptions {
  std::string name = "vdkit-batch";  // prefix of the objects' names
  std::string image = "vdkit:latest";
  std::string pvc = "vdkit-targets";  // the PersistentVolumeClaim the targets go to
  std::string mount = "/targets";     // where the pods see it; the plan's output folders should lie inside
  unsigned parallelism = 1;
};

// Writes DIR/configmap.yaml, DIR/job.yaml and DIR/Containerfile. `plan_text` is the plan file as given (the pods
// read it from the ConfigMap). notes receives what the user must see to (file sources, outputs off the volume).
Status emit_kubernetes(const Plan& plan, const std::string& plan_text, const std::string& dir, const KubeOptions& o,
                       std::vector<std::string>& notes);

}  // namespace vdkit::batch
