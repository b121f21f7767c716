#include "runtime/scheduler.hpp"

#include <algorithm>

namespace atl::runtime {

namespace {
std::string class_key(const ResourceDemand& d, const std::vector<LabelSelector>& hard,
                      const std::vector<LabelSelector>& soft) {
  std::string key;
  for (auto [id, amount] : d.items) key += std::to_string(id) + '=' + std::to_string(amount) + ';';
  auto add = [&](char tag, const std::vector<LabelSelector>& sel) {
    for (const auto& s : sel) {
      key += tag + s.key + static_cast<char>('0' + static_cast<int>(s.op));
      for (const auto& v : s.values) key += '\x1f' + v;
      key += '\x1e';
    }
  };
  add('H', hard);
  add('S', soft);
  return key;
}
}  // namespace

Scheduler::Scheduler(const Clock& clock, std::chrono::nanoseconds infeasible_timeout, FailFn fail)
    : clock_(clock), infeasible_timeout_(infeasible_timeout), fail_(std::move(fail)) {
  std::lock_guard lock(mu_);
  ResourceDemand one_cpu;
  one_cpu.items.emplace_back(ResourceNames::cpu, kResourceUnit);
  default_class_ = intern_locked(std::move(one_cpu), {}, {});
}

NodeState& Scheduler::add_node(std::string name, Labels labels, const ResourceVector& total,
                               NodeEndpoint* endpoint) {
  std::vector<TaskRecord*> out;
  NodeState* added;
  {
    std::lock_guard lock(mu_);
    auto node = std::make_unique<NodeState>();
    node->index = nodes_.size();
    node->name = std::move(name);
    node->labels = std::move(labels);
    node->total = total;
    node->available = total;
    node->endpoint = endpoint;
    added = node.get();
    nodes_.push_back(std::move(node));
    for (auto& c : classes_) {
      bool was_infeasible = c->feasible.empty();
      compute_feasible_locked(*c);
      if (was_infeasible && !c->feasible.empty()) {
        // Tasks that waited for a node like this one become ordinary queued tasks.
        infeasible_waiting_ -= c->queue.size();
        queued_ += c->queue.size();
      }
    }
    if (!stopped_ && queued_ > 0) collect_locked(out);
  }
  for (TaskRecord* t : out) send(t);
  return *added;
}

void Scheduler::compute_feasible_locked(SchedulingClass& c) {
  c.feasible.clear();
  for (auto& n : nodes_)
    if (n->alive && n->total.covers(c.demand) && matches_all(c.hard, n->labels))
      c.feasible.emplace_back(n.get(), count_matches(c.soft, n->labels));
  std::stable_sort(c.feasible.begin(), c.feasible.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
}

NodeState& Scheduler::add_node(std::string name, Labels labels,
                               const std::vector<std::pair<std::string, double>>& resources,
                               NodeEndpoint* endpoint) {
  ResourceVector total;
  {
    std::lock_guard lock(mu_);
    ResourceDemand declared;
    for (const auto& [resource, amount] : resources)
      declared.items.emplace_back(names_.intern(resource), resource == "memory"
                                                               ? to_bytes(amount)
                                                               : to_fixed(resource, amount));
    total.add(declared);
  }
  return add_node(std::move(name), std::move(labels), total, endpoint);
}

void Scheduler::remove_node(NodeState& node) {
  std::lock_guard lock(mu_);
  if (!node.alive) return;
  node.alive = false;
  auto now = clock_.now();
  for (auto& c : classes_) {
    bool was_feasible = !c->feasible.empty();
    compute_feasible_locked(*c);
    if (was_feasible && c->feasible.empty()) {
      // Its queued tasks now wait for a node to join, and fail after the infeasible timeout.
      for (TaskRecord* t : c->queue) t->queued_at = now;
      queued_ -= c->queue.size();
      infeasible_waiting_ += c->queue.size();
    }
  }
}

SchedulingClass* Scheduler::intern_locked(ResourceDemand demand, std::vector<LabelSelector> hard,
                                          std::vector<LabelSelector> soft) {
  std::string key = class_key(demand, hard, soft);
  if (auto it = classes_by_key_.find(key); it != classes_by_key_.end()) return it->second;
  auto c = std::make_unique<SchedulingClass>();
  c->description = demand.describe(names_);
  if (!hard.empty()) c->description += " with labels " + describe(hard);
  c->demand = std::move(demand);
  c->hard = std::move(hard);
  c->soft = std::move(soft);
  compute_feasible_locked(*c);
  SchedulingClass* raw = c.get();
  classes_.push_back(std::move(c));
  classes_by_key_.emplace(std::move(key), raw);
  return raw;
}

template <class Options>
SchedulingClass* Scheduler::class_for_options(const Options& o, double default_cpus) {
  validate(o.label_selector);
  validate(o.preferred_labels);
  std::lock_guard lock(mu_);
  ResourceDemand d =
      make_demand(names_, o.num_cpus, default_cpus, o.num_gpus, o.memory, o.resources);
  return intern_locked(std::move(d), o.label_selector, o.preferred_labels);
}

SchedulingClass* Scheduler::class_for(const TaskOptions& o) {
  return class_for_options(o, 1.0);
}

SchedulingClass* Scheduler::class_for(const ActorOptions& o) {
  return class_for_options(o, 0.0);
}

NodeState* Scheduler::pick_locked(const SchedulingClass& c) const {
  NodeState* best = nullptr;
  std::size_t best_score = 0;
  double best_load = 0;
  for (auto [node, score] : c.feasible) {
    if (best != nullptr && score < best_score) break;  // sorted by score
    if (!node->available.covers(c.demand)) continue;
    auto cpu_total = node->total.get(ResourceNames::cpu);
    double load = cpu_total > 0
                      ? 1.0 - static_cast<double>(node->available.get(ResourceNames::cpu)) /
                                  static_cast<double>(cpu_total)
                      : 0.0;
    if (best == nullptr || load < best_load) {
      best = node;
      best_score = score;
      best_load = load;
    }
  }
  return best;
}

void Scheduler::send(TaskRecord* task) {
  if (task->places_actor)
    task->node->endpoint->place_actor(task);
  else
    task->node->endpoint->run_task(task);
}

bool Scheduler::submit(TaskRecord* task) {
  SchedulingClass& c = *task->cls;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return false;
    if (c.feasible.empty()) {
      task->queued_at = clock_.now();
      c.queue.push_back(task);
      ++infeasible_waiting_;
      return true;
    }
    NodeState* node = c.queue.empty() ? pick_locked(c) : nullptr;
    if (node == nullptr) {
      c.queue.push_back(task);
      ++queued_;
      return true;
    }
    node->available.subtract(c.demand);
    task->node = node;
  }
  send(task);
  return true;
}

void Scheduler::collect_locked(std::vector<TaskRecord*>& out) {
  for (auto& c : classes_) {
    if (c->feasible.empty()) continue;
    while (!c->queue.empty()) {
      NodeState* node = pick_locked(*c);
      if (node == nullptr) break;
      TaskRecord* t = c->queue.front();
      c->queue.pop_front();
      --queued_;
      node->available.subtract(c->demand);
      t->node = node;
      out.push_back(t);
    }
  }
}

TaskRecord* Scheduler::release(NodeState& node, const ResourceDemand& demand,
                               SchedulingClass* prefer) {
  TaskRecord* next = nullptr;
  std::vector<TaskRecord*> out;
  {
    std::lock_guard lock(mu_);
    node.available.add(demand);
    if (stopped_) return nullptr;
    // An actor's placement in the same class is not handed back as a task to run: it is
    // dispatched below, to its node's place_actor.
    if (prefer != nullptr && !prefer->queue.empty() && !prefer->queue.front()->places_actor &&
        !prefer->feasible.empty() && node.available.covers(prefer->demand) &&
        std::any_of(prefer->feasible.begin(), prefer->feasible.end(),
                    [&](const auto& f) { return f.first == &node; })) {
      next = prefer->queue.front();
      prefer->queue.pop_front();
      --queued_;
      node.available.subtract(prefer->demand);
      next->node = &node;
    }
    if (queued_ > 0) collect_locked(out);
  }
  for (TaskRecord* t : out) send(t);
  return next;
}

std::vector<TaskRecord*> Scheduler::take_queued(SchedulingClass& cls, NodeState& node,
                                                std::size_t n) {
  std::vector<TaskRecord*> out;
  std::lock_guard lock(mu_);
  if (stopped_ || !node.alive ||
      std::none_of(cls.feasible.begin(), cls.feasible.end(),
                   [&](const auto& f) { return f.first == &node; }))
    return out;
  // An actor's placement (which shares a class with tasks of the same demand) is not a task to
  // run on a lease: it waits for resources of its own.
  while (out.size() < n && !cls.queue.empty() && !cls.queue.front()->places_actor) {
    TaskRecord* t = cls.queue.front();
    cls.queue.pop_front();
    --queued_;
    t->node = &node;
    out.push_back(t);
  }
  return out;
}

void Scheduler::lend(NodeState& node, const ResourceDemand& demand) {
  std::vector<TaskRecord*> out;
  {
    std::lock_guard lock(mu_);
    node.available.add(demand);
    if (!stopped_ && queued_ > 0) collect_locked(out);
  }
  for (TaskRecord* t : out) send(t);
}

void Scheduler::reclaim(NodeState& node, const ResourceDemand& demand) {
  std::lock_guard lock(mu_);
  node.available.subtract(demand);
}

void Scheduler::expire(Clock::time_point now) {
  std::vector<TaskRecord*> expired;
  std::string nodes;
  {
    std::lock_guard lock(mu_);
    if (infeasible_waiting_ == 0) return;
    for (auto& c : classes_) {
      if (!c->feasible.empty()) continue;
      while (!c->queue.empty() && c->queue.front()->queued_at + infeasible_timeout_ <= now) {
        expired.push_back(c->queue.front());
        c->queue.pop_front();
        --infeasible_waiting_;
      }
    }
    if (!expired.empty()) nodes = describe_nodes_locked();
  }
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(infeasible_timeout_).count();
  for (TaskRecord* t : expired) {
    std::string what = t->places_actor ? "actor '" : "task '";
    fail_(t, make_error(ErrorKind::infeasible,
                        what + std::string(t->name()) + "' needs " + t->cls->description +
                            ", which no node offers (waited " + std::to_string(waited) +
                            " ms); nodes: " + nodes));
  }
}

bool Scheduler::has_infeasible() const {
  std::lock_guard lock(mu_);
  return infeasible_waiting_ > 0;
}

std::size_t Scheduler::queued() const {
  std::lock_guard lock(mu_);
  return queued_ + infeasible_waiting_;
}

std::vector<TaskRecord*> Scheduler::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  std::vector<TaskRecord*> out;
  for (auto& c : classes_) {
    out.insert(out.end(), c->queue.begin(), c->queue.end());
    c->queue.clear();
  }
  queued_ = infeasible_waiting_ = 0;
  return out;
}

std::vector<std::pair<std::string, double>> Scheduler::available(const NodeState& node) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, double>> out;
  for (std::uint32_t id = 0; id < node.total.amounts.size(); ++id) {
    if (node.total.get(id) == 0) continue;
    // A borrower reclaiming its resources may push a count below zero for a moment.
    std::int64_t left = std::max<std::int64_t>(0, node.available.get(id));
    out.emplace_back(names_.name(id),
                     id == ResourceNames::memory ? static_cast<double>(left) : from_fixed(left));
  }
  return out;
}

std::string Scheduler::describe_nodes() const {
  std::lock_guard lock(mu_);
  return describe_nodes_locked();
}

std::string Scheduler::describe_nodes_locked() const {
  std::string out;
  for (const auto& n : nodes_) {
    if (!out.empty()) out += "; ";
    ResourceDemand total;
    for (std::uint32_t id = 0; id < n->total.amounts.size(); ++id)
      if (n->total.amounts[id] != 0) total.items.emplace_back(id, n->total.amounts[id]);
    out += n->name + " " + total.describe(names_);
    for (const auto& [k, v] : n->labels) out += " " + k + "=" + v;
  }
  return out;
}

}  // namespace atl::runtime
