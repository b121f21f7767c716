// atoll/options.hpp — what a task, an actor or a node asks for and offers.
//
// Resources are named amounts: "CPU", "GPU", "memory" (bytes) and any custom name. Amounts may be
// fractional (0.25 GPU) with a resolution of 1/10000. Label selectors pick nodes by their labels
// (every node carries `island=…`; GPU nodes carry `gpu_model=…`): hard selectors must match,
// preferred ones steer the choice among nodes that fit.
//
// Errors: negative, non-finite or conflicting amounts raise atl::Error(invalid_argument) at
// submission; a request no node can ever satisfy fails with atl::InfeasibleError after
// InitOptions::infeasible_timeout.
//
// Example:
//   rt.task(train).options({.num_gpus = 1,
//                           .label_selector = {atl::LabelSelector::in("island", {"eu-1"})},
//                           .max_retries = 5}).remote(step);
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace atl {

struct LabelSelector {
  enum class Op : std::uint8_t { in, not_in, exists, does_not_exist };
  std::string key;
  Op op = Op::in;
  std::vector<std::string> values;

  static LabelSelector equals(std::string key, std::string value) {
    return {std::move(key), Op::in, {std::move(value)}};
  }
  static LabelSelector in(std::string key, std::vector<std::string> values) {
    return {std::move(key), Op::in, std::move(values)};
  }
  static LabelSelector not_in(std::string key, std::vector<std::string> values) {
    return {std::move(key), Op::not_in, std::move(values)};
  }
  static LabelSelector exists(std::string key) { return {std::move(key), Op::exists, {}}; }
  static LabelSelector does_not_exist(std::string key) {
    return {std::move(key), Op::does_not_exist, {}};
  }
};

struct TaskOptions {
  std::string name;                // shown in errors and logs; the function's by default
  std::optional<double> num_cpus;  // default 1
  double num_gpus = 0;
  std::uint64_t memory = 0;                     // bytes
  std::map<std::string, double> resources;      // custom (and CPU/GPU when not given above)
  std::vector<LabelSelector> label_selector;    // hard: every one must match
  std::vector<LabelSelector> preferred_labels;  // soft: nodes matching more are preferred
  int max_retries = 3;            // re-runs after a system failure (a lost worker or node)
  bool retry_exceptions = false;  // also re-run, up to max_retries, when the task throws
};

struct ActorOptions {
  std::string name;                // a named actor can be found with get_actor and lives until
                                   // killed; an unnamed one ends when its last handle is gone
  std::optional<double> num_cpus;  // held for the actor's lifetime; default 0
  double num_gpus = 0;
  std::uint64_t memory = 0;
  std::map<std::string, double> resources;
  std::vector<LabelSelector> label_selector;
  std::vector<LabelSelector> preferred_labels;
  int max_concurrency = 1;  // >1: that many calls run at once, in no guaranteed order
  // On a cluster: how many times the actor is started again (its constructor rerun with the same
  // arguments, on any node that fits) after its worker process or node died; -1: always. Calls
  // under way when it died, or sent before the head learned of it, fail with ActorDiedError;
  // later ones reach the new instance. Never
  // after a kill, a release or a constructor that threw. The embedded runtime's actors live in the
  // caller's process, so there is nothing to restart: it is accepted and has no effect there.
  int max_restarts = 0;
};

// A node of the embedded runtime (and, later, what a node agent declares).
struct NodeOptions {
  std::string name;                // default "node-<index>"
  std::string island = "local";    // becomes the label island=<value>
  std::optional<double> num_cpus;  // default: hardware threads of this machine
  double num_gpus = 0;
  std::string gpu_model;                    // becomes the label gpu_model=<value>
  std::uint64_t memory = 0;                 // default: physical memory of this machine
  std::map<std::string, double> resources;  // custom
  std::map<std::string, std::string> labels;
};

}  // namespace atl
