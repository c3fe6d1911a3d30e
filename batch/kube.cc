// Kubernetes manifests for a plan. Scalars are written as JSON strings, which YAML reads as double-quoted
// scalars, so no plan content can break the YAML.
#include "batch/kube.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "batch/state.h"
#include "blockcore/convert/target_names.h"

namespace vdkit::batch {

namespace {

std::string q(const std::string& s) { return nlohmann::json(s).dump(); }

std::string plan_file_name(const Plan& plan) {
  std::string base = plan.path.substr(plan.path.find_last_of('/') + 1);
  return base.empty() ? "plan.csv" : base;
}

std::string configmap(const Plan& plan, const std::string& text, const KubeOptions& o) {
  return "apiVersion: v1\n"
         "kind: ConfigMap\n"
         "metadata:\n"
         "  name: " + q(o.name + "-plan") + "\n"
         "  labels:\n"
         "    app.kubernetes.io/name: vdkit\n"
         "data:\n"
         "  " + q(plan_file_name(plan)) + ": " + q(text) + "\n";
}

std::string job(const Plan& plan, const KubeOptions& o) {
  const std::string plan_path = "/plan/" + plan_file_name(plan);
  // One state file per row on the target volume: pods of an Indexed Job never share one, and the ConfigMap the
  // plan comes from is read-only. vdkit reads the row from JOB_COMPLETION_INDEX, which the Job sets in each pod.
  // --resume: a pod the Job retries continues its row's state instead of refusing it.
  std::string args = "[" + q("batch") + ", " + q(plan_path) + ", " + q("--resume") + ", " + q("--state") + ", " +
                     q(o.mount + "/.vdkit-state/") + "]";
  std::string rows = std::to_string(plan.guests.size());
  return "apiVersion: batch/v1\n"
         "kind: Job\n"
         "metadata:\n"
         "  name: " + q(o.name) + "\n"
         "  labels:\n"
         "    app.kubernetes.io/name: vdkit\n"
         "spec:\n"
         "  completionMode: Indexed\n"
         "  completions: " + rows + "\n"
         "  parallelism: " + std::to_string(o.parallelism) + "\n"
         // Retries count per row (Kubernetes 1.29+): a row that always fails (a corrupt image) uses up its own two
         // retries and is marked failed, while the other rows go on, as in a local run.
         "  backoffLimitPerIndex: 2\n"
         "  maxFailedIndexes: " + rows + "\n"
         "  template:\n"
         "    metadata:\n"
         "      labels:\n"
         "        app.kubernetes.io/name: vdkit\n"
         "    spec:\n"
         "      restartPolicy: Never\n"
         "      containers:\n"
         "        - name: vdkit\n"
         "          image: " + q(o.image) + "\n"
         "          command: [" + q("vdkit") + "]\n"
         "          args: " + args + "\n"
         "          volumeMounts:\n"
         "            - name: plan\n"
         "              mountPath: \"/plan\"\n"
         "              readOnly: true\n"
         "            - name: targets\n"
         "              mountPath: " + q(o.mount) + "\n"
         "      volumes:\n"
         "        - name: plan\n"
         "          configMap:\n"
         "            name: " + q(o.name + "-plan") + "\n"
         "        - name: targets\n"
         "          persistentVolumeClaim:\n"
         "            claimName: " + q(o.pvc) + "\n";
}

// Build and runtime packages are Debian 12's; the build stage is the project's own CMake build.
const char* kContainerfile =
    "# Builds vdkit from these sources on Debian 12 (context: the vdkit source tree).\n"
    "FROM debian:12 AS build\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
    "      build-essential cmake pkg-config ninja-build liburing-dev libdeflate-dev zlib1g-dev libzstd-dev \\\n"
    "      liblzo2-dev libnbd-dev nbdkit-plugin-dev libfuse3-dev libext2fs-dev libarchive-dev \\\n"
    "      nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev ca-certificates \\\n"
    " && rm -rf /var/lib/apt/lists/*\n"
    "COPY . /src\n"
    "RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDKIT_BUILD_BENCH=OFF -DVDKIT_MAN=OFF \\\n"
    " && cmake --build /build \\\n"
    " && cmake --install /build --prefix /opt/vdkit\n"
    "\n"
    "FROM debian:12-slim\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
    "      liburing2 libdeflate0 zlib1g libzstd1 liblzo2-2 libnbd0 libfuse3-3 libext2fs2 libarchive13 \\\n"
    "      e2fsprogs kmod \\\n"
    " && rm -rf /var/lib/apt/lists/*\n"
    "COPY --from=build /opt/vdkit /usr/local\n"
    "ENTRYPOINT [\"vdkit\"]\n";

}  // namespace

Status emit_kubernetes(const Plan& plan, const std::string& plan_text, const std::string& dir, const KubeOptions& o,
                       std::vector<std::string>& notes) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno(errno, "creating " + dir);
  for (const auto& g : plan.guests) {
    std::string where = "row " + std::to_string(g.row + 1) + " '" + g.name + "'";
    if (!g.output.empty() && g.output.rfind(o.mount + "/", 0) != 0 && g.output != o.mount)
      notes.push_back(where + ": output " + g.output + " is not under the volume's mount " + o.mount +
                      "; the pod would write it to its own, short-lived file system");
    for (const auto& d : g.disks)
      if (source_has_file_name(d.source))
        notes.push_back(where + ": reads the file " + d.source +
                        "; the pod sees no host files unless you mount them (an NBD URI, e.g. from `vdkit serve` "
                        "on the storage host, needs nothing)");
  }
  VDKIT_RETURN_IF_ERROR(write_file_atomically(dir + "/configmap.yaml", configmap(plan, plan_text, o)));
  VDKIT_RETURN_IF_ERROR(write_file_atomically(dir + "/job.yaml", job(plan, o)));
  return write_file_atomically(dir + "/Containerfile", kContainerfile);
}

}  // namespace vdkit::batch
