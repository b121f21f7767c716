// The head as the directory of objects held on nodes: which node holds each large task result,
// routing fetches to the holder, and freeing objects when their driver frees them or leaves.
#include "runtime/head_tasks.hpp"

#include <capnp/message.h>

#include <algorithm>

#include "runtime/cluster_messages.hpp"

namespace atl::runtime {

const ClusterTasks::Holder* ClusterTasks::holder_locked(ObjectId id) const {
  auto it = holders_.find(id);
  return it == holders_.end() ? nullptr : &it->second;
}

std::string ClusterTasks::start_relay(ObjectTransferOptions options) {
  relay_ = std::make_unique<ObjectTransfer>(std::move(options));
  return relay_->address();
}

std::uint64_t ClusterTasks::objects_relayed() const {
  std::lock_guard lock(mu_);
  return relayed_;
}

void ClusterTasks::fetch_object(const transport::ConnectionPtr& requester,
                                wire::ObjectPush::Reader fetch) {
  ObjectId id = object_key(fetch.getObject());
  std::string peer = fetch.getPeer();
  std::uint64_t attempt = fetch.getAttempt();
  if (peer.starts_with(kRelayNamePrefix)) {
    // Only the head's relay goes by that name: a reader claiming it would take over its fetches.
    send_object_pushed(*requester, id, peer, attempt, "a reader may not use the relay's name");
    return;
  }
  if (fetch.getRelay() && relay_) {
    relay_fetch(requester, id, peer, attempt);
    return;
  }
  transport::ConnectionPtr holder;
  {
    std::lock_guard lock(mu_);
    if (auto it = holders_.find(id); it != holders_.end() && !it->second.conn->closed()) {
      holder = it->second.conn;
      // A reader's later attempt replaces its earlier one: only the later one's answer counts.
      pushes_[{id, peer}] = PendingPush{requester, holder.get(), attempt};
    }
  }
  if (!holder) {
    send_object_pushed(*requester, id, peer, attempt,
                       "object " + id.to_string() +
                           " is lost: no node holds it (freed, or its node left the cluster)");
    return;
  }
  transport::ControlMessage msg;
  auto push = msg.initRoot<wire::Envelope>().getBody().initPushObject();
  push.setObject(fetch.getObject());
  push.setPeer(peer);
  push.setAttempt(attempt);
  holder->send(msg);
}

void ClusterTasks::object_pushed(const transport::ConnectionPtr& holder,
                                 wire::ObjectPush::Reader pushed) {
  ObjectId id = object_key(pushed.getObject());
  std::string peer = pushed.getPeer();
  std::uint64_t attempt = pushed.getAttempt();
  transport::ConnectionPtr requester;
  {
    std::lock_guard lock(mu_);
    auto it = pushes_.find({id, peer});
    // An answer for an attempt the reader replaced since: the later attempt's push is pending.
    if (it == pushes_.end() || it->second.holder != holder.get() || it->second.attempt != attempt)
      return;
    requester = std::move(it->second.requester);
    pushes_.erase(it);
  }
  // Success needs no word: the reader's data plane has every byte already.
  if (pushed.getError().size() == 0) return;
  if (requester)
    send_object_pushed(*requester, id, peer, attempt, pushed.getError());
  else if (relay_)
    relay_->fetch_failed(id, attempt, pushed.getError());  // the relay's own fetch
}

void ClusterTasks::free_objects(const transport::ConnectionPtr& driver,
                                wire::FreeObjects::Reader free) {
  std::map<std::uint64_t, std::vector<ObjectId>> by_node;
  std::vector<transport::ConnectionPtr> conns;
  {
    std::lock_guard lock(mu_);
    for (auto k : free.getObjects()) {
      ObjectId id = object_key(k);
      // Only the driver that owns an object may free it.
      auto owner = owners_.find(id.owner);
      if (owner == owners_.end() || owner->second != driver.get()) continue;
      auto it = holders_.find(id);
      if (it == holders_.end()) continue;
      // A driver's own copy is its to drop; a node's is told to go.
      if (it->second.node_id != 0) by_node[it->second.node_id].push_back(id);
      holders_.erase(it);
    }
    for (auto& [node_id, ids] : by_node) {
      auto node = nodes_.find(node_id);
      conns.push_back(node == nodes_.end() ? nullptr : node->second->conn);
    }
  }
  std::size_t i = 0;
  for (auto& [node_id, ids] : by_node)
    if (auto& conn = conns[i++]) send_free_objects(*conn, ids);
}

std::vector<ClusterTasks::FailedPush> ClusterTasks::objects_left_with_node_locked(
    std::uint64_t node_id) {
  std::erase_if(holders_, [&](const auto& h) { return h.second.node_id == node_id; });
  std::vector<FailedPush> failed;
  auto node = nodes_.find(node_id);
  const transport::Connection* gone = node == nodes_.end() ? nullptr : node->second->conn.get();
  for (auto it = pushes_.begin(); it != pushes_.end();) {
    if (gone != nullptr && it->second.holder == gone) {
      failed.push_back(
          {it->second.requester, it->first.first, it->first.second, it->second.attempt});
      it = pushes_.erase(it);
    } else if (it->second.requester.get() == gone) {
      it = pushes_.erase(it);
    } else {
      ++it;
    }
  }
  return failed;
}

void ClusterTasks::send_push_failures(const std::vector<FailedPush>& failed,
                                      const std::string& why) {
  for (const auto& f : failed) {
    std::string message = "object " + f.id.to_string() + " is lost: " + why;
    if (f.requester)
      send_object_pushed(*f.requester, f.id, f.peer, f.attempt, message);
    else if (relay_)
      relay_->fetch_failed(f.id, f.attempt, message);
  }
}

void ClusterTasks::relay_fetch(const transport::ConnectionPtr& requester, ObjectId id,
                               const std::string& peer, std::uint64_t attempt) {
  transport::ConnectionPtr holder;
  std::uint64_t relay_attempt = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = holders_.find(id); it != holders_.end() && !it->second.conn->closed()) {
      holder = it->second.conn;
      auto& readers = relays_[id];
      readers.push_back({requester, peer, attempt});
      ++relayed_;
      if (readers.size() == 1) {
        // The relay's own fetch, numbered by the relay. Registered with mu_ held (the relay
        // takes only its own lock), so a holder leaving now finds the push with its attempt.
        relay_attempt = relay_->expect(id, it->second.size, [this, id](Buffer value, ErrorPtr e) {
          relayed(id, value, std::move(e));
        });
        pushes_[{id, relay_->name()}] = PendingPush{nullptr, holder.get(), relay_attempt};
      }
    }
  }
  if (!holder) {
    send_object_pushed(*requester, id, peer, attempt,
                       "object " + id.to_string() +
                           " is lost: no node holds it (freed, or its node left the cluster)");
    return;
  }
  if (relay_attempt == 0) return;  // on its way to the relay already: it goes on to this reader
  transport::ControlMessage msg;
  auto push = msg.initRoot<wire::Envelope>().getBody().initPushObject();
  set_object_key(push.initObject(), id);
  push.setPeer(relay_->name());
  push.setAttempt(relay_attempt);
  holder->send(msg);
}

void ClusterTasks::relayed(ObjectId id, const Buffer& value, ErrorPtr error) {
  std::vector<RelayReader> readers;
  {
    std::lock_guard lock(mu_);
    if (auto it = relays_.find(id); it != relays_.end()) {
      readers = std::move(it->second);
      relays_.erase(it);
    }
    pushes_.erase({id, relay_->name()});
  }
  if (error) {
    for (const auto& r : readers)
      send_object_pushed(*r.requester, id, r.peer, r.attempt, error->message);
    return;
  }
  // The pushes share the received bytes; they go when the last push is done.
  for (const auto& r : readers)
    relay_->push(
        id, r.peer,
        [id, r](std::string push_error) {
          if (!push_error.empty())
            send_object_pushed(*r.requester, id, r.peer, r.attempt, push_error);
        },
        value);
}

std::vector<ClusterTasks::RemoteTask::ArgRef> ClusterTasks::read_arg_refs(
    capnp::List<wire::ArgRef>::Reader refs) {
  std::vector<RemoteTask::ArgRef> out;
  for (auto r : refs)
    out.push_back({r.getIndex(), object_key(r.getObject()), r.getSize(), r.getHolder(),
                   r.getHolderName(), r.getByReference()});
  return out;
}

std::string ClusterTasks::accept_objects_locked(const transport::ConnectionPtr& driver,
                                                const ObjectId& result,
                                                const std::vector<RemoteTask::ArgRef>& refs) {
  if (!result.is_nil()) {
    auto [owner, fresh] = owners_.try_emplace(result.owner, driver.get());
    if (!fresh && owner->second != driver.get())
      return "owner id " + std::to_string(result.owner) + " belongs to another driver";
  }
  // Arguments the driver holds itself (too large to travel inline): it is their holder.
  for (const auto& r : refs) {
    if (r.driver_address.empty()) continue;
    auto owner = owners_.find(r.id.owner);
    if (owner == owners_.end() || owner->second != driver.get())
      return "argument object " + r.id.to_string() + " does not belong to this driver";
    // A driver listening on every interface advertises no host: nodes dial the one it came from.
    holders_.try_emplace(
        r.id, Holder{0, r.size, driver, reachable_from(*driver, r.driver_address), r.driver_name});
  }
  return {};
}

void ClusterTasks::write_arg_refs_locked(capnp::List<wire::ArgRef>::Builder out,
                                         const std::vector<RemoteTask::ArgRef>& refs) {
  for (unsigned i = 0; i < refs.size(); ++i) {
    const auto& r = refs[i];
    out[i].setIndex(r.index);
    set_object_key(out[i].initObject(), r.id);
    out[i].setSize(r.size);
    out[i].setByReference(r.by_reference);
    if (const Holder* h = holder_locked(r.id)) {
      out[i].setHolder(h->address);
      out[i].setHolderName(h->name);
    }
  }
}

void ClusterTasks::reply_stored(std::uint64_t task_id, std::uint64_t size) {
  std::unique_ptr<RemoteTask> task;
  std::string holder, holder_name;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return;
    task = std::move(it->second);
    tasks_.erase(it);
    if (const Holder* h = holder_locked(task->result)) {
      holder = h->address;
      holder_name = h->name;
    }
  }
  transport::ControlMessage msg;
  auto done = msg.initRoot<wire::Envelope>().getBody().initTaskFinished();
  done.setTaskId(task->driver_task_id);
  done.setNode(task->last_node);
  done.getOutcome().setStored(size);
  done.setHolder(holder);
  done.setHolderName(holder_name);
  task->driver->send(msg);
}

std::vector<ClusterTasks::FailedPush> ClusterTasks::objects_left_with_driver_locked(
    const transport::ConnectionPtr& driver) {
  std::vector<std::uint64_t> owned;
  for (const auto& [owner, conn] : owners_)
    if (conn == driver.get()) owned.push_back(owner);
  std::vector<FailedPush> failed;
  for (auto it = pushes_.begin(); it != pushes_.end();) {
    if (it->second.holder == driver.get()) {  // it held an argument someone was fetching
      failed.push_back(
          {it->second.requester, it->first.first, it->first.second, it->second.attempt});
      it = pushes_.erase(it);
    } else if (it->second.requester == driver) {
      it = pushes_.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(holders_, [&](const auto& h) {
    return h.second.conn == driver ||
           std::find(owned.begin(), owned.end(), h.first.owner) != owned.end();
  });
  for (std::uint64_t owner : owned) {
    transport::ControlMessage msg;
    msg.initRoot<wire::Envelope>().getBody().initFreeObjects().setOwner(owner);
    for (const auto& [id, node] : nodes_)
      if (node->conn && !node->conn->closed()) node->conn->send(msg);
  }
  return failed;
}

}  // namespace atl::runtime
