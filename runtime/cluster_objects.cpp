// A cluster driver's objects that are held on nodes: large task results stay where they were
// made; the driver fetches one only when its value is read here (`get`; tasks and actor calls
// take it as a reference their node fetches), and tells the head to free it when its last
// reference goes.
#include "runtime/cluster_core.hpp"

#include <capnp/message.h>

#include "runtime/invocation.hpp"
#include "runtime/object_ops.hpp"
#include "runtime/wire_values.hpp"

namespace atl::runtime {

void ClusterCore::on_stored(std::uint64_t task, std::uint64_t size, const std::string& holder,
                            const std::string& holder_name) {
  ObjectId id;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(task);
    if (it == pending_.end() || it->second->finished) return;
    id = it->second->result->id;
  }
  {
    std::lock_guard lock(remote_mu_);
    remote_[id] = RemoteObject{size, holder, holder_name, nullptr};
  }
  // Ready here with no bytes: dependents may be sent (as ArgRefs) without fetching it.
  detail::Payload none;
  complete(task, &none, nullptr);
}

std::shared_ptr<ClusterCore::RemoteFetch> ClusterCore::remote_fetch(const ObjectId& id) {
  std::shared_ptr<RemoteFetch> fetch;
  std::uint64_t size = 0;
  std::string holder, holder_name;
  {
    std::lock_guard lock(remote_mu_);
    auto it = remote_.find(id);
    if (it == remote_.end()) return nullptr;
    if (auto& existing = it->second.fetch) {
      std::lock_guard done(existing->mu);
      // Under way, or ended with the value; `get` tries again after a failure (a full store, a
      // holder that was unreachable).
      if (!existing->done || !existing->error) return existing;
    }
    fetch = it->second.fetch = std::make_shared<RemoteFetch>();
    size = it->second.size;
    holder = it->second.holder;
    holder_name = it->second.holder_name;
  }
  auto arrived = [fetch](Buffer value, ErrorPtr error) {
    {
      std::lock_guard lock(fetch->mu);
      if (error)
        fetch->error = std::move(error);
      else
        fetch->value = payload_of(value);  // a Buffer keeps the fetched block: no copy
      fetch->done = true;
    }
    fetch->cv.notify_all();
  };
  transport::ConnectionPtr conn;
  std::string lost;
  {
    std::lock_guard lock(mu_);
    conn = conn_;
    lost = lost_;
  }
  if (!conn || !objects_ || !lost.empty()) {
    arrived({}, make_error(ErrorKind::shutdown,
                           lost.empty() ? std::string("the runtime is not connected to a cluster")
                                        : "lost the connection to the head: " + lost));
    return fetch;
  }
  objects_->fetch(
      id, size, holder, holder_name, [conn](capnp::MessageBuilder& msg) { conn->send(msg); },
      std::move(arrived));
  {
    // The head may have gone while the request was made: on_lost failed the fetches it saw.
    std::lock_guard lock(mu_);
    lost = lost_;
  }
  if (!lost.empty())
    objects_->fail_fetches("lost the connection to the head: " + lost, ErrorKind::shutdown);
  return fetch;
}

const detail::Payload& ClusterCore::await_fetch(RemoteFetch& fetch, const ObjectId& id,
                                                detail::Deadline deadline) {
  std::unique_lock lock(fetch.mu);
  if (deadline == detail::no_deadline) {
    fetch.cv.wait(lock, [&] { return fetch.done; });
  } else if (!fetch.cv.wait_until(lock, deadline, [&] { return fetch.done; })) {
    throw GetTimeoutError("object " + id.to_string() +
                          " was not fetched from its node before the timeout");
  }
  if (fetch.error) raise(*fetch.error);
  return fetch.value;
}

const detail::Payload& ClusterCore::get(const detail::RefToken& ref, detail::Deadline deadline) {
  const detail::Payload& value =
      get_object(store_, entry_for(*this, ref), ref.id(), deadline, nullptr, kClusterSpinMicros);
  auto fetch = remote_fetch(ref.id());
  if (!fetch) return value;
  // The fetch lives as long as its entry (the caller holds a reference to it).
  return await_fetch(*fetch, ref.id(), deadline);
}

void ClusterCore::write_arg_refs(capnp::List<wire::ArgRef>::Builder out,
                                 const std::vector<ArgRefOut>& refs) const {
  for (unsigned i = 0; i < refs.size(); ++i) {
    out[i].setIndex(refs[i].index);
    set_object_key(out[i].initObject(), refs[i].id);
    out[i].setSize(refs[i].size);
    out[i].setHolder(refs[i].holder);
    if (!refs[i].holder.empty()) out[i].setHolderName(objects_->name());
    out[i].setByReference(refs[i].by_reference);
  }
}

std::shared_ptr<detail::RefToken> ClusterCore::borrow(const ObjectId& id, std::uint64_t size,
                                                      const std::string& holder,
                                                      const std::string& holder_name) {
  ensure_running();
  auto [entry, created] = store_.find_or_create(id);  // one reference: the token's
  if (created) {
    {
      std::lock_guard lock(remote_mu_);
      remote_[id] = RemoteObject{size, holder, holder_name, nullptr, true};
    }
    store_.seal(entry, detail::Payload{});  // ready here; `get` fetches its bytes
  }
  return std::make_shared<detail::RefToken>(self_, id, entry);
}

ErrorPtr ClusterCore::write_args(capnp::List<capnp::Data>::Builder out, PendingTask& t,
                                 std::vector<ArgRefOut>& refs, std::vector<ActorArg>& actors) {
  std::size_t inline_bytes = 0;
  for (unsigned i = 0; i < t.args.size(); ++i) {
    const detail::ArgSpec& a = t.args[i];
    const detail::Payload* p = &a.value;
    ObjectId id;
    if (a.kind == detail::ArgSpec::Kind::actor) {
      actors.push_back(actor_arg(i, *a.actor));
      continue;
    }
    if (a.kind == detail::ArgSpec::Kind::pass_ref) {
      ObjectEntry* e = entry_of(*a.ref);
      if (e->state.load() == ObjectState::failed) return e->error;  // the input's error
      try {
        refs.push_back(reference_to(i, *a.ref));
      } catch (const Error& err) {
        return make_error(ErrorKind::store_full, std::string("an argument: ") + err.what());
      }
      continue;
    }
    if (a.kind == detail::ArgSpec::Kind::resolve_ref) {
      ObjectEntry* e = entry_of(*a.ref);
      if (e->state.load() == ObjectState::failed) return e->error;  // the input's error
      p = &e->value;
      id = a.ref->id();
      std::lock_guard lock(remote_mu_);
      if (auto r = remote_.find(id); r != remote_.end()) {
        refs.push_back({i, id, r->second.size, {}});
        continue;  // the node fetches it from the holder
      }
    }
    const std::size_t size = wire_size(*p);
    if (size > kMaxInlineObjectBytes && objects_) {
      // Too large for the control plane: the node fetches it from this driver.
      bool by_value = id.is_nil();
      if (by_value) id = ObjectId{owner_, next_sequence_.fetch_add(1)};
      try {
        hold_here(id, *p);
      } catch (const Error& e) {
        return make_error(ErrorKind::store_full, std::string("an argument: ") + e.what());
      }
      if (by_value) t.held_args.push_back(id);
      refs.push_back({i, id, size, objects_->address()});
      continue;
    }
    inline_bytes += size;
    if (inline_bytes > kMaxInlineCallBytes)  // only without a data plane
      return make_error(ErrorKind::invalid_argument,
                        "the inline arguments add up to more than " +
                            std::to_string(kMaxInlineCallBytes) +
                            " bytes, more than a control message carries");
    std::string scratch;
    const std::string* bytes = &p->bytes;
    try {
      bytes = &wire_bytes(*p, scratch);
    } catch (const Error& e) {
      return make_error(ErrorKind::invalid_argument, e.what());
    }
    out.set(i,
            capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes->data()), bytes->size()));
  }
  return nullptr;
}

ClusterCore::ArgRefOut ClusterCore::reference_to(std::uint32_t index, const detail::RefToken& ref) {
  // The parameter is the ObjectRef itself: the worker borrows it and reads it if it wants.
  const ObjectId& id = ref.id();
  {
    std::lock_guard lock(remote_mu_);
    if (auto r = remote_.find(id); r != remote_.end()) return {index, id, r->second.size, {}, true};
  }
  const detail::Payload& value = entry_of(ref)->value;
  hold_here(id, value);  // until its entry goes: readers fetch it from this driver
  return {index, id, wire_size(value), objects_->address(), true};
}

void ClusterCore::hold_here(const ObjectId& id, const detail::Payload& value) {
  {
    std::lock_guard lock(remote_mu_);
    if (held_here_.contains(id)) return;
  }
  MutableBuffer copy = buffers_->allocate(wire_size(value));
  write_wire(value, copy.data());
  objects_->hold(id, std::move(copy).freeze());
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
    send_free_objects(*conn, ids);  // the head forgets this driver as their holder
  } catch (...) {
    // Out of memory while freeing: the head forgets them when this driver leaves.
  }
}

void ClusterCore::object_erased(const ObjectId& id) noexcept {
  bool held = false;
  transport::ConnectionPtr conn;
  {
    std::lock_guard lock(remote_mu_);
    held = held_here_.contains(id);
    if (!held) {
      auto it = remote_.find(id);
      if (it == remote_.end()) return;  // it lived only here
      if (it->second.borrowed) {
        // Its owner frees it. It may have been borrowed again since its entry went (the new
        // entry is in the store already): the record is the new entry's then.
        if (!store_.contains(id)) remote_.erase(it);
        return;
      }
      remote_.erase(it);
    }
    conn = free_conn_;
  }
  if (held) {
    release_held({id});  // a value nodes could fetch from this driver: drop the copy
    return;
  }
  if (!conn || conn->closed()) return;
  try {
    send_free_objects(*conn, std::span(&id, 1));  // the node holding it drops it
  } catch (...) {
    // Out of memory while freeing: the node keeps the object until this driver leaves.
  }
}

}  // namespace atl::runtime
