#include "runtime/actor_record.hpp"

#include <algorithm>

#include "runtime/awaiting.hpp"
#include "runtime/invocation.hpp"

namespace atl::runtime {

namespace {
constexpr int kIdleSpinMicros = 50;

std::string make_display_name(const detail::ActorClassEntry& cls, const std::string& name) {
  return name.empty() ? cls.name : cls.name + " '" + name + "'";
}
}  // namespace

ActorRecord::ActorRecord(Services& services, ActorId id, const detail::ActorClassEntry& cls,
                         std::string name, int max_concurrency, SchedulingClass* sched,
                         std::vector<detail::ArgSpec> ctor_args)
    : services_(services),
      id_(id),
      cls_(cls),
      name_(std::move(name)),
      display_name_(make_display_name(cls, name_)),
      max_concurrency_(max_concurrency),
      sched_(sched),
      ctor_args_(std::move(ctor_args)) {}

ActorRecord::~ActorRecord() {
  join();
}

bool ActorRecord::dead() const {
  std::lock_guard lock(mu_);
  return state_ == State::dead;
}

void ActorRecord::add_handle() {
  std::lock_guard lock(mu_);
  ++handles_;
}

void ActorRecord::release_handle() {
  bool reapable;
  {
    std::lock_guard lock(mu_);
    --handles_;
    if (handles_ == 0 && name_.empty() && state_ != State::dead) {
      draining_ = true;
      // Notify under the lock: once it is released, the drained actor may be reaped and freed.
      cv_.notify_all();
    }
    reapable = take_reapable_locked();
  }
  if (reapable) services_.on_reapable(this);
}

bool ActorRecord::take_reapable_locked() {
  if (reap_signalled_ || handles_ > 0 || state_ != State::dead || !threads_done_) return false;
  reap_signalled_ = true;
  return true;
}

void ActorRecord::enqueue(const detail::MethodEntry& method, std::vector<detail::ArgSpec> args,
                          ObjectEntry* result) {
  std::unique_lock lock(mu_);
  if (state_ == State::dead) {
    ErrorPtr cause = death_;
    lock.unlock();
    services_.store.fail(result, cause);
    services_.store.release(result);
    return;
  }
  mailbox_.push_back(ActorCall{&method, std::move(args), result});
  mailbox_size_.store(mailbox_.size(), std::memory_order_release);
  bool wake = sleeping_ > 0;
  lock.unlock();
  if (wake) cv_.notify_one();
}

void ActorRecord::start(NodeState& node) {
  {
    std::lock_guard lock(mu_);
    node_ = &node;
    if (state_ != State::dead) {
      threads_started_ = true;
      live_threads_ = max_concurrency_;
      for (int i = 0; i < max_concurrency_; ++i)
        threads_.emplace_back([this, i] { thread_main(i == 0); });
      return;
    }
  }
  // Killed while waiting for placement: give the resources straight back.
  services_.scheduler.release(node, sched_->demand, nullptr);
  thread_exit();
}

void ActorRecord::fail_placement(const ErrorPtr& cause) {
  kill(make_error(ErrorKind::actor_died,
                  "actor " + display_name_ + " could not be placed: " + cause->message));
  bool reapable;
  {
    std::lock_guard lock(mu_);
    threads_done_ = true;
    reapable = take_reapable_locked();
  }
  if (reapable) services_.on_reapable(this);
}

std::deque<ActorCall> ActorRecord::die_locked(ErrorPtr cause, std::vector<ObjectEntry*>& running) {
  state_ = State::dead;
  death_ = std::move(cause);
  running = running_;
  // The executing thread drops its pin only after leaving running_ (under mu_), so these
  // entries are alive now; hold them until they are failed.
  for (ObjectEntry* r : running) services_.store.add_ref(r);
  mailbox_size_.store(0, std::memory_order_release);
  return std::exchange(mailbox_, {});
}

void ActorRecord::finish_death(std::deque<ActorCall> queued, std::vector<ObjectEntry*> running,
                               const ErrorPtr& cause) {
  cv_.notify_all();
  for (ObjectEntry* r : running) {
    services_.store.fail(r, cause);
    services_.store.release(r);
  }
  for (ActorCall& c : queued) {
    services_.store.fail(c.result, cause);
    services_.store.release(c.result);
  }
  services_.on_dead(this);
}

void ActorRecord::kill(ErrorPtr cause) {
  std::deque<ActorCall> queued;
  std::vector<ObjectEntry*> running;
  {
    std::lock_guard lock(mu_);
    if (state_ == State::dead) return;
    queued = die_locked(cause, running);
  }
  finish_death(std::move(queued), std::move(running), cause);
}

void ActorRecord::thread_main(bool constructs) {
  if (constructs) construct();
  std::unique_lock lock(mu_);
  while (wait_for_work(lock)) {
    ActorCall call = std::move(mailbox_.front());
    mailbox_.pop_front();
    mailbox_size_.store(mailbox_.size(), std::memory_order_release);
    running_.push_back(call.result);
    lock.unlock();
    execute(call);
    lock.lock();
    running_.erase(std::find(running_.begin(), running_.end(), call.result));
    lock.unlock();
    services_.store.release(call.result);
    lock.lock();
  }
  lock.unlock();
  thread_exit();
}

bool ActorRecord::wait_for_work(std::unique_lock<std::mutex>& lock) {
  bool spun = false;
  for (;;) {
    // Every condition is checked under the lock right before sleeping, so no wake-up is lost.
    if (state_ == State::dead) return false;
    if (state_ == State::alive) {
      if (!mailbox_.empty()) return true;
      if (draining_ && running_.empty()) {
        auto cause = make_error(ErrorKind::actor_died,
                                "actor " + display_name_ + " ended: its last handle was dropped");
        std::vector<ObjectEntry*> running;
        auto queued = die_locked(cause, running);
        lock.unlock();
        finish_death(std::move(queued), std::move(running), cause);
        lock.lock();
        return false;
      }
      if (!spun) {
        spun = true;
        lock.unlock();
        spin_until([&] { return mailbox_size_.load(std::memory_order_acquire) > 0; },
                   kIdleSpinMicros);
        lock.lock();
        continue;
      }
    }
    ++sleeping_;
    cv_.wait(lock);
    --sleeping_;
    spun = false;
  }
}

void ActorRecord::construct() {
  for (const auto& a : ctor_args_)
    if (a.kind == detail::ArgSpec::Kind::resolve_ref)
      await_resolved(services_.store, entry_of(*a.ref), detail::no_deadline, nullptr);
  ArgValues values(ctor_args_.size());
  ErrorPtr failure = collect_arguments(ctor_args_, values);
  std::shared_ptr<void> instance;
  if (failure == nullptr) {
    detail::CallFrame frame{ctor_args_, values.span(), services_.core};
    try {
      instance = cls_.find_constructor(ctor_args_.size())->construct(frame);
    } catch (...) {
      failure = error_from_current_exception(cls_.name, node_->name);
    }
  }
  ctor_args_.clear();
  if (failure != nullptr) {
    std::string why = failure->kind == ErrorKind::task_error
                          ? failure->remote_type + ": " + failure->message
                          : failure->message;
    kill(make_error(ErrorKind::actor_died,
                    "actor " + display_name_ + " died: its constructor failed: " + why));
    return;
  }
  {
    std::lock_guard lock(mu_);
    instance_ = std::move(instance);
    if (state_ == State::pending) {
      state_ = State::alive;
      counted_alive_ = true;
      services_.counters.actors_alive.fetch_add(1, std::memory_order_relaxed);
    }
  }
  cv_.notify_all();
}

void ActorRecord::execute(ActorCall& call) {
  for (const auto& a : call.args)
    if (a.kind == detail::ArgSpec::Kind::resolve_ref)
      await_resolved(services_.store, entry_of(*a.ref), detail::no_deadline, nullptr);
  ArgValues values(call.args.size());
  if (ErrorPtr failed = collect_arguments(call.args, values)) {
    services_.store.fail(call.result, std::move(failed));
    return;
  }
  detail::CallFrame frame{call.args, values.span(), services_.core};
  try {
    detail::Payload out = call.method->invoke(instance_.get(), frame);
    services_.store.seal(call.result, std::move(out));
  } catch (...) {
    services_.store.fail(call.result, error_from_current_exception(
                                          cls_.name + "." + call.method->name, node_->name));
  }
}

void ActorRecord::thread_exit() {
  std::shared_ptr<void> instance;
  NodeState* node = nullptr;
  bool last;
  {
    std::lock_guard lock(mu_);
    last = live_threads_ <= 1;
    if (live_threads_ > 0) --live_threads_;
    if (last) {
      instance = std::move(instance_);
      if (threads_started_) node = node_;  // otherwise start() already gave resources back
    }
  }
  if (!last) return;
  instance.reset();  // the user's destructor runs on the actor's own thread
  if (node != nullptr) services_.scheduler.release(*node, sched_->demand, nullptr);
  bool reapable;
  {
    std::lock_guard lock(mu_);
    if (counted_alive_) services_.counters.actors_alive.fetch_sub(1, std::memory_order_relaxed);
    counted_alive_ = false;
    threads_done_ = true;
    reapable = take_reapable_locked();
  }
  if (reapable) services_.on_reapable(this);
}

void ActorRecord::join() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    if (t.get_id() == std::this_thread::get_id())
      t.detach();
    else if (t.joinable())
      t.join();
  }
}

void ActorRecord::drop_arguments() {
  std::lock_guard lock(mu_);
  if (threads_done_) ctor_args_.clear();
}

}  // namespace atl::runtime
