#include "runtime/node_actors.hpp"

#include <capnp/message.h>

#include "atoll/errors.hpp"
#include "runtime/cluster_messages.hpp"
#include "runtime/node_tasks.hpp"

namespace atl::runtime {

namespace {

constexpr std::chrono::seconds kSpawnTimeout{30};
// A constructor may load a model for a long time; the head kills an actor that should go.
constexpr std::chrono::hours kConstructTimeout{24};
constexpr std::size_t kRememberEnded = 1000;

WorkerOutcome died_outcome(const std::string& reason) {
  WorkerOutcome out;
  out.remote_type = "atl::ActorDiedError";
  out.message = reason;
  return out;
}

}  // namespace

NodeActors::NodeActors(std::string node_name, NodeModules& modules, ObjectTransfer& objects,
                       WorkerLaunch launch)
    : node_name_(std::move(node_name)),
      modules_(modules),
      objects_(objects),
      launch_(std::move(launch)) {}

NodeActors::~NodeActors() {
  kill_all("the node agent is stopping");
  std::map<ActorId, std::shared_ptr<Hosted>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(actors_);
  }
  for (auto& [id, actor] : all) {
    // The sender may still be starting the worker; it sees the kill once it has one.
    if (actor->sender.joinable()) actor->sender.join();
    std::thread reader;
    {
      std::lock_guard lock(actor->mu);
      reader = std::move(actor->reader);
    }
    if (reader.joinable()) reader.join();
  }
}

void NodeActors::start(const transport::ConnectionPtr& head, wire::ActorSpec::Reader spec) {
  reap_finished();
  auto actor = std::make_shared<Hosted>();
  actor->id = actor_key(spec.getActor());
  actor->class_name = spec.getClassName();
  actor->display = spec.getName().size() > 0 ? "actor '" + std::string(spec.getName()) + "'"
                                             : "actor " + actor->class_name;
  actor->head = head;
  actor->module_hash = spec.getModuleHash();
  actor->module_name = spec.getModuleName();
  actor->code = spec.getCode();
  for (auto a : spec.getArgs()) actor->ctor_args.push_back(Buffer::copy_of(a.begin(), a.size()));
  // Constructor values travel inline: the head sends only references (byReference) here.
  read_object_args(spec.getArgRefs(), actor->ctor_passed.objects);
  actor->ctor_passed.actors = read_actor_args(spec.getActorArgs());
  actor->max_concurrency = spec.getMaxConcurrency();
  Hosted* raw = actor.get();
  std::weak_ptr<Hosted> weak = actor;
  actor->self = weak;
  {
    std::lock_guard lock(mu_);
    if (!actors_.emplace(raw->id, std::move(actor)).second) return;  // a repeated start
  }
  // The module may arrive after the actor was reaped (the head went meanwhile): then it is gone.
  modules_.with_job(head, raw->module_hash, raw->code,
                    [this, weak](const NodeModules::JobFiles& files, const std::string& error) {
                      auto actor = weak.lock();
                      if (!actor) return;
                      Hosted* raw = actor.get();
                      if (!error.empty()) {
                        end(*raw, "could not load the module of " + raw->display + ": " + error);
                        return;
                      }
                      std::lock_guard lock(raw->mu);
                      if (raw->finished) return;  // killed while the module was on its way
                      raw->started = true;
                      raw->sender = std::thread([this, raw, files] { run_sender(*raw, files); });
                    });
}

void NodeActors::call(const transport::ConnectionPtr& head, wire::ActorCall::Reader call) {
  if (finished_.load() > 0) reap_finished();
  ActorId id = actor_key(call.getActor());
  std::shared_ptr<Hosted> actor;
  std::string why;
  {
    std::lock_guard lock(mu_);
    if (auto it = actors_.find(id); it != actors_.end())
      actor = it->second;
    else if (auto e = ended_.find(id); e != ended_.end())
      why = e->second;
  }
  if (actor != nullptr) {
    std::unique_lock lock(actor->mu);
    if (!actor->finished) {
      Call c;
      c.id = call.getTaskId();
      c.method = call.getMethod();
      for (auto a : call.getArgs()) c.args.push_back(Buffer::copy_of(a.begin(), a.size()));
      if (call.hasResult()) c.result = object_key(call.getResult());
      c.refs = read_object_args(call.getArgRefs(), c.passed.objects);
      c.passed.actors = read_actor_args(call.getActorArgs());
      if (!c.refs.empty()) {
        c.resolving = std::make_shared<Resolving>();
        c.resolving->left = c.refs.size();
      }
      bool fetch = c.resolving != nullptr;
      actor->mailbox.push_back(std::move(c));
      lock.unlock();
      actor->cv.notify_one();
      if (fetch) prefetch(*actor);
      return;
    }
  }
  if (why.empty()) why = "actor " + id.to_string() + " is not on node '" + node_name_ + "'";
  send_task_finished(head, node_name_, call.getTaskId(), died_outcome(why), false);
}

void NodeActors::prefetch(Hosted& actor) {
  std::vector<std::pair<std::shared_ptr<Resolving>, std::vector<ObjectArg>>> start;
  {
    std::lock_guard lock(actor.mu);
    std::size_t window = 0;
    for (auto& call : actor.mailbox) {
      if (!call.resolving) continue;
      if (++window > kPrefetchCalls) break;
      if (!call.refs.empty()) start.emplace_back(call.resolving, std::move(call.refs));
      call.refs.clear();
    }
  }
  std::weak_ptr<Hosted> weak = actor.self;
  for (auto& [resolving, refs] : start)
    fetch_object_args(objects_, actor.head, refs,
                      [weak, resolving](std::uint32_t index, Buffer value, ErrorPtr error) {
                        auto hosted = weak.lock();
                        if (!hosted) return;  // reaped: nobody waits for this call any more
                        {
                          std::lock_guard lock(hosted->mu);
                          if (error) {
                            if (!resolving->error) resolving->error = std::move(error);
                          } else {
                            resolving->values.emplace_back(index, std::move(value));
                          }
                          --resolving->left;
                        }
                        hosted->cv.notify_all();
                      });
}

void NodeActors::stop(const transport::ConnectionPtr&, wire::StopActor::Reader stop) {
  ActorId id = actor_key(stop.getActor());
  Hosted* actor = nullptr;
  {
    std::lock_guard lock(mu_);
    if (auto it = actors_.find(id); it != actors_.end()) actor = it->second.get();
  }
  if (actor == nullptr) return;  // already gone: the head has been told
  if (stop.getKill()) {
    kill(*actor, actor->display + " was killed");
  } else {
    {
      std::lock_guard lock(actor->mu);
      actor->draining = true;
    }
    actor->cv.notify_all();
  }
  reap_finished();
}

void NodeActors::kill(Hosted& actor, const std::string& reason) {
  WorkerProcess* worker;
  bool never_started;
  std::string why;
  {
    std::lock_guard lock(actor.mu);
    if (actor.kill_reason.empty()) actor.kill_reason = reason;
    why = actor.kill_reason;
    worker = actor.worker.get();
    never_started = !actor.started;  // still waiting for its module
  }
  if (worker != nullptr) worker->kill();  // the reader sees it go and ends the actor
  if (never_started) end(actor, why);
  actor.cv.notify_all();
}

void NodeActors::kill_all(const std::string& reason) {
  std::vector<Hosted*> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, a] : actors_) all.push_back(a.get());
  }
  for (Hosted* actor : all) kill(*actor, actor->display + " ended: " + reason);
}

void NodeActors::run_sender(Hosted& actor, NodeModules::JobFiles files) {
  std::string failure;
  try {
    const bool python = !actor.code.empty();
    auto worker = WorkerProcess::spawn(
        {launch_, files.module.string(), actor.module_hash, actor.module_name, python},
        kSpawnTimeout);
    WorkerProcess* w = worker.get();
    bool killed;
    {
      std::lock_guard lock(actor.mu);
      actor.worker = std::move(worker);  // from now on a kill reaches the process
      killed = !actor.kill_reason.empty();
    }
    if (killed) w->kill();
    WorkerOutcome built =
        w->construct(actor.class_name, actor.ctor_args, actor.max_concurrency, kConstructTimeout,
                     actor.ctor_passed, CodeRef{actor.code, files.code.string()});
    if (!built.ok)
      failure = "the constructor of " + actor.display + " failed on node '" + node_name_ +
                "': " + built.remote_type + ": " + built.message;
  } catch (const std::exception& e) {
    failure = "could not start " + actor.display + " on node '" + node_name_ + "': " + e.what();
  }
  if (!failure.empty()) {
    {
      std::lock_guard lock(actor.mu);
      if (!actor.kill_reason.empty()) failure = actor.kill_reason;
    }
    end(actor, failure);
    return;
  }
  {
    // Under the lock, so the reader's `end` (which takes it) sees the thread handle assigned.
    std::lock_guard lock(actor.mu);
    actor.reader = std::thread([this, &actor] { run_reader(actor); });
  }
  WorkerProcess& worker = *actor.worker;
  for (;;) {
    Call call;
    {
      std::unique_lock lock(actor.mu);
      // In order: the oldest call goes once its object arguments are here.
      actor.cv.wait(lock, [&] {
        return (!actor.mailbox.empty() && actor.mailbox.front().ready()) ||
               (actor.draining && actor.mailbox.empty()) || !actor.kill_reason.empty() ||
               actor.finished;
      });
      if (!actor.kill_reason.empty() || actor.finished) return;
      if (actor.mailbox.empty()) {
        worker.close_input();  // released: the worker exits after the calls it has
        return;
      }
      call = std::move(actor.mailbox.front());
      actor.mailbox.pop_front();
      if (!call.resolving || !call.resolving->error) actor.in_flight[call.id] = call.result;
    }
    prefetch(actor);  // the window moved on by one call
    if (call.resolving) {
      if (call.resolving->error) {
        auto out =
            object_arg_failure(*call.resolving->error, node_name_, "a call to " + actor.display);
        send_task_finished(actor.head, node_name_, call.id, out, false);
        continue;
      }
      for (auto& [index, value] : call.resolving->values) call.args[index] = std::move(value);
    }
    try {
      if (!worker.send_execute(call.id, call.method, call.args, call.passed))
        return;  // the reader reports it
    } catch (const Error& e) {
      {
        std::lock_guard lock(actor.mu);
        actor.in_flight.erase(call.id);
      }
      WorkerOutcome out;
      out.remote_type = "atl::Error";
      out.message = "on node '" + node_name_ + "': " + e.what();
      send_task_finished(actor.head, node_name_, call.id, out, false);
    }
  }
}

void NodeActors::report(Hosted& actor, std::uint64_t call_id, const ObjectId& result,
                        WorkerOutcome& out) {
  if (!out.ok || out.value.size() <= kMaxInlineObjectBytes) {
    send_task_finished(actor.head, node_name_, call_id, out, false);
    return;
  }
  if (result.is_nil()) {
    // A driver that names no result: the value must travel inline, and one this large would be
    // refused by the head (costing this node its connection). The call fails; the actor lives.
    out.ok = false;
    out.remote_type = "atl::Error";
    out.message = "the result of " + actor.display + " is " + std::to_string(out.value.size()) +
                  " bytes, too large to travel inline";
    out.value = Buffer();
    send_task_finished(actor.head, node_name_, call_id, out, false);
    return;
  }
  std::uint64_t size = out.value.size();
  try {
    objects_.hold(result, std::move(out.value));  // stays here until its owner frees it
  } catch (const Error& e) {
    WorkerOutcome full;
    full.remote_type = "atl::ObjectStoreFullError";
    full.message = "the result of " + actor.display + " on node '" + node_name_ + "': " + e.what();
    send_task_finished(actor.head, node_name_, call_id, full, false);
    return;
  }
  if (actor.head->closed()) {
    objects_.release(result);  // the head is gone, and with it the only record of this object
    return;
  }
  send_task_finished(actor.head, node_name_, call_id, out, false, 0, size);
}

void NodeActors::run_reader(Hosted& actor) {
  WorkerProcess& worker = *actor.worker;
  for (;;) {
    std::pair<std::uint64_t, WorkerOutcome> result;
    try {
      result = worker.next_outcome();
    } catch (const std::exception& e) {
      std::string reason;
      bool crashed = false;
      {
        std::lock_guard lock(actor.mu);
        if (!actor.kill_reason.empty()) {
          reason = actor.kill_reason;
        } else if (actor.draining && actor.mailbox.empty() && actor.in_flight.empty()) {
          reason = actor.display + " ended: its owner released its last handle";
        } else {
          reason = actor.display + " died on node '" + node_name_ + "': " + e.what();
          crashed = true;
        }
      }
      end(actor, reason, crashed);
      return;
    }
    bool asked = false;
    ObjectId result_id;
    {
      std::lock_guard lock(actor.mu);
      if (auto it = actor.in_flight.find(result.first); it != actor.in_flight.end()) {
        asked = true;
        result_id = it->second;
        actor.in_flight.erase(it);
      }
    }
    if (!asked) {
      // The worker runs the job's code: it answers only calls it was given, or it goes.
      {
        std::lock_guard lock(actor.mu);
        if (actor.kill_reason.empty())
          actor.kill_reason = actor.display + " was stopped on node '" + node_name_ +
                              "': its worker answered a call it was not given";
      }
      worker.kill();
      continue;  // the next read sees it gone
    }
    report(actor, result.first, result_id, result.second);
  }
}

void NodeActors::end(Hosted& actor, const std::string& reason, bool crashed) {
  std::deque<Call> queued;
  std::vector<std::uint64_t> unanswered;
  WorkerProcess* worker;
  {
    std::lock_guard lock(actor.mu);
    if (actor.finished) return;
    actor.finished = true;
    queued.swap(actor.mailbox);
    for (const auto& [id, result] : actor.in_flight) unanswered.push_back(id);
    actor.in_flight.clear();
    worker = actor.worker.get();
    ++finished_;  // with the flag, so a reaper never counts it down first
  }
  actor.cv.notify_all();
  if (worker != nullptr) worker->kill();  // a failed constructor's process goes at once
  {
    std::lock_guard lock(mu_);
    if (ended_.emplace(actor.id, reason).second) ended_order_.push_back(actor.id);
    while (ended_order_.size() > kRememberEnded) {
      ended_.erase(ended_order_.front());
      ended_order_.pop_front();
    }
  }
  for (auto id : unanswered)
    send_task_finished(actor.head, node_name_, id, died_outcome(reason), false);
  for (const auto& c : queued)
    send_task_finished(actor.head, node_name_, c.id, died_outcome(reason), false);
  transport::ControlMessage msg;
  auto exited = msg.initRoot<wire::Envelope>().getBody().initActorExited();
  exited.initActor().setOwner(actor.id.owner);
  exited.getActor().setSequence(actor.id.sequence);
  exited.setReason(reason.substr(0, transport::kMaxMessageTextBytes));
  exited.setCrashed(crashed);
  actor.head->send(msg);
}

void NodeActors::reap_finished() {
  std::vector<std::shared_ptr<Hosted>> done;
  {
    std::lock_guard lock(mu_);
    for (auto it = actors_.begin(); it != actors_.end();) {
      bool finished;
      {
        std::lock_guard actor_lock(it->second->mu);
        finished = it->second->finished;
      }
      if (finished) {
        done.push_back(std::move(it->second));
        it = actors_.erase(it);
        --finished_;
      } else {
        ++it;
      }
    }
  }
  for (auto& actor : done) {
    if (actor->sender.joinable()) actor->sender.join();
    if (actor->reader.joinable()) actor->reader.join();
  }
}

}  // namespace atl::runtime
