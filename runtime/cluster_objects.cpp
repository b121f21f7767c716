// A cluster driver's objects that are held on nodes: large task results stay where they were
// made; the driver fetches one only when its value is read here (get, or an actor call's
// argument), and tells the head to free it when its last reference goes.
#include "runtime/cluster_core.hpp"

#include <capnp/message.h>

#include "runtime/invocation.hpp"
#include "runtime/object_ops.hpp"

namespace atl::runtime {

void ClusterCore::on_stored(std::uint64_t task, std::uint64_t size, const std::string& holder) {
  ObjectId id;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(task);
    if (it == pending_.end() || it->second->finished) return;
    id = it->second->result->id;
  }
  {
    std::lock_guard lock(remote_mu_);
    remote_[id] = RemoteObject{size, holder, nullptr};
  }
  // Ready here with no bytes: dependents may be sent (as ArgRefs) without fetching it.
  detail::Payload none;
  complete(task, &none, nullptr);
}

std::shared_ptr<ClusterCore::RemoteFetch> ClusterCore::remote_fetch(const ObjectId& id,
                                                                    std::function<void()> then) {
  std::shared_ptr<RemoteFetch> fetch;
  std::uint64_t size = 0;
  std::string holder;
  {
    std::lock_guard lock(remote_mu_);
    auto it = remote_.find(id);
    if (it == remote_.end()) return nullptr;
    if (it->second.fetch) return it->second.fetch;
    fetch = it->second.fetch = std::make_shared<RemoteFetch>();
    size = it->second.size;
    holder = it->second.holder;
  }
  transport::ConnectionPtr conn;
  {
    std::lock_guard lock(mu_);
    conn = conn_;
  }
  auto arrived = [fetch, then = std::move(then)](Buffer value, ErrorPtr error) {
    {
      std::lock_guard lock(fetch->mu);
      if (error)
        fetch->error = std::move(error);
      else
        fetch->value.bytes.assign(reinterpret_cast<const char*>(value.data()), value.size());
      fetch->done = true;
    }
    fetch->cv.notify_all();
    if (then) then();
  };
  if (!conn || !objects_) {
    arrived({}, make_error(ErrorKind::shutdown, "the runtime is not connected to a cluster"));
    return fetch;
  }
  objects_->fetch(
      id, size, holder, [conn](capnp::MessageBuilder& msg) { conn->send(msg); },
      std::move(arrived));
  return fetch;
}

const detail::Payload& ClusterCore::await_fetch(RemoteFetch& fetch, const ObjectId& id,
                                                detail::Deadline deadline) {
  std::unique_lock lock(fetch.mu);
  if (!fetch.cv.wait_until(lock, deadline, [&] { return fetch.done; }))
    throw GetTimeoutError("object " + id.to_string() +
                          " was not fetched from its node before the timeout");
  if (fetch.error) raise(*fetch.error);
  return fetch.value;
}

const detail::Payload& ClusterCore::get(const detail::RefToken& ref, detail::Deadline deadline) {
  const detail::Payload& value =
      get_object(store_, entry_for(*this, ref), ref.id(), deadline, nullptr);
  auto fetch = remote_fetch(ref.id());
  if (!fetch) return value;
  // The fetch lives as long as its entry (the caller holds a reference to it).
  return await_fetch(*fetch, ref.id(), deadline);
}

bool ClusterCore::call_args_local_locked(const PendingTask& t, std::vector<ObjectId>& fetch) {
  bool local = true;
  std::lock_guard lock(remote_mu_);
  for (const auto& a : t.args) {
    if (a.kind != detail::ArgSpec::Kind::resolve_ref) continue;
    auto it = remote_.find(a.ref->id());
    if (it == remote_.end()) continue;
    if (!it->second.fetch) {
      fetch.push_back(a.ref->id());
      local = false;
      continue;
    }
    std::lock_guard done(it->second.fetch->mu);
    if (!it->second.fetch->done) local = false;  // under way: its end flushes the actor again
  }
  return local;
}

ErrorPtr ClusterCore::write_args(capnp::List<capnp::Data>::Builder out, PendingTask& t,
                                 std::vector<ArgRefOut>* refs) {
  std::size_t inline_bytes = 0;
  for (unsigned i = 0; i < t.args.size(); ++i) {
    const detail::ArgSpec& a = t.args[i];
    const detail::Payload* p = &a.value;
    ObjectId id;
    if (a.kind == detail::ArgSpec::Kind::resolve_ref) {
      ObjectEntry* e = entry_of(*a.ref);
      if (e->state.load() == ObjectState::failed) return e->error;  // the input's error
      p = &e->value;
      id = a.ref->id();
      std::lock_guard lock(remote_mu_);
      if (auto r = remote_.find(id); r != remote_.end()) {
        if (refs != nullptr) {
          refs->push_back({i, id, r->second.size, {}});
          continue;  // the node fetches it from the holder
        }
        // An actor call: fetched here already (call_args_local_locked).
        std::lock_guard done(r->second.fetch->mu);
        if (r->second.fetch->error) return r->second.fetch->error;
        p = &r->second.fetch->value;
      }
    }
    if (p->out_of_band)
      return make_error(ErrorKind::unimplemented,
                        "an atl::Buffer cannot be sent to another process yet");
    if (refs != nullptr && p->bytes.size() > kMaxInlineObjectBytes && objects_) {
      // Too large for the control plane: the task's node fetches it from this driver.
      bool by_value = id.is_nil();
      if (by_value) id = ObjectId{owner_, next_sequence_.fetch_add(1)};
      try {
        hold_here(id, *p);
      } catch (const Error& e) {
        return make_error(ErrorKind::store_full, std::string("an argument: ") + e.what());
      }
      if (by_value) t.held_args.push_back(id);
      refs->push_back({i, id, p->bytes.size(), objects_->address()});
      continue;
    }
    inline_bytes += p->bytes.size();
    if (inline_bytes > kMaxInlineCallBytes)
      return make_error(ErrorKind::invalid_argument,
                        "the arguments of an actor call add up to more than " +
                            std::to_string(kMaxInlineCallBytes) +
                            " bytes, more than a control message carries; pass large values "
                            "to tasks, or as the results of tasks (they move between nodes)");
    out.set(i, capnp::Data::Reader(reinterpret_cast<const kj::byte*>(p->bytes.data()),
                                   p->bytes.size()));
  }
  return nullptr;
}

void ClusterCore::hold_here(const ObjectId& id, const detail::Payload& value) {
  {
    std::lock_guard lock(remote_mu_);
    if (held_here_.contains(id)) return;
  }
  objects_->hold(id, Buffer::copy_of(value.bytes.data(), value.bytes.size()));
  std::lock_guard lock(remote_mu_);
  held_here_.insert(id);
}

void ClusterCore::release_held(const std::vector<ObjectId>& ids) noexcept {
  if (ids.empty()) return;
  transport::ConnectionPtr conn;
  {
    std::lock_guard lock(remote_mu_);
    for (const auto& id : ids) held_here_.erase(id);
    conn = free_conn_;
  }
  for (const auto& id : ids)
    if (objects_) objects_->release(id);
  if (!conn || conn->closed()) return;
  try {
    capnp::MallocMessageBuilder msg;
    auto list = msg.initRoot<wire::Envelope>().getBody().initFreeObjects().initObjects(
        static_cast<unsigned>(ids.size()));
    for (unsigned i = 0; i < ids.size(); ++i) {
      list[i].setOwner(ids[i].owner);
      list[i].setSequence(ids[i].sequence);
    }
    conn->send(msg);  // the head forgets this driver as their holder
  } catch (...) {
    // Out of memory while freeing: the head forgets them when this driver leaves.
  }
}

void ClusterCore::on_push_request(wire::ObjectPush::Reader push) {
  ObjectId id{push.getObject().getOwner(), push.getObject().getSequence()};
  std::string peer = push.getPeer();
  transport::ConnectionPtr conn;
  {
    std::lock_guard lock(mu_);
    conn = conn_;
  }
  if (!objects_ || !conn) return;
  objects_->push(id, peer, [conn, id, peer](std::string error) {
    capnp::MallocMessageBuilder msg;
    auto pushed = msg.initRoot<wire::Envelope>().getBody().initObjectPushed();
    pushed.initObject().setOwner(id.owner);
    pushed.getObject().setSequence(id.sequence);
    pushed.setPeer(peer);
    pushed.setError(error.substr(0, transport::kMaxMessageTextBytes));
    conn->send(msg);
  });
}

void ClusterCore::object_erased(const ObjectId& id) noexcept {
  bool held = false;
  transport::ConnectionPtr conn;
  {
    std::lock_guard lock(remote_mu_);
    held = held_here_.contains(id);
    if (!held && remote_.erase(id) == 0) return;  // it lived only here
    conn = free_conn_;
  }
  if (held) {
    release_held({id});  // a value nodes could fetch from this driver: drop the copy
    return;
  }
  if (!conn || conn->closed()) return;
  try {
    capnp::MallocMessageBuilder msg;
    auto key = msg.initRoot<wire::Envelope>().getBody().initFreeObjects().initObjects(1)[0];
    key.setOwner(id.owner);
    key.setSequence(id.sequence);
    conn->send(msg);  // the node holding it drops it
  } catch (...) {
    // Out of memory while freeing: the node keeps the object until this driver leaves.
  }
}

}  // namespace atl::runtime
