#include "runtime/object_ops.hpp"

#include <string>

#include "atoll/errors.hpp"
#include "runtime/invocation.hpp"

namespace atl::runtime {

ObjectEntry* entry_for(const detail::Core& owner, const detail::RefToken& ref) {
  if (&ref.core() != &owner)
    throw Error(ErrorCategory::invalid_argument, "the ObjectRef belongs to another runtime");
  return entry_of(ref);
}

std::shared_ptr<detail::RefToken> put_object(ObjectStore& store,
                                             const std::shared_ptr<detail::Core>& owner,
                                             ObjectId id, detail::Payload value) {
  const auto size = value.size_bytes();
  if (!store.has_room_for(size))
    throw ObjectStoreFullError("object store full: cannot put " + std::to_string(size) +
                               " bytes (" + std::to_string(store.bytes_used()) + " of " +
                               std::to_string(store.capacity()) + " bytes in use)");
  ObjectEntry* e = store.create(id, 1);
  auto token = std::make_shared<detail::RefToken>(owner, id, e);
  if (store.seal(e, std::move(value)) == ObjectStore::SealResult::full) raise(*e->error);
  return token;
}

const detail::Payload& get_object(ObjectStore& store, ObjectEntry* e, const ObjectId& id,
                                  detail::Deadline deadline, BlockHooks* hooks, int spin_us) {
  if (!e->resolved() && !await_resolved(store, e, deadline, hooks, spin_us))
    throw GetTimeoutError("object " + id.to_string() + " was not ready before the timeout");
  if (e->state.load(std::memory_order_acquire) == ObjectState::failed) raise(*e->error);
  return e->value;
}

void wait_objects(ObjectStore& store, const std::vector<ObjectEntry*>& entries,
                  std::size_t num_ready, detail::Deadline deadline, BlockHooks* hooks,
                  std::vector<bool>& ready) {
  if (num_ready > entries.size())
    throw Error(ErrorCategory::invalid_argument, "wait: num_ready (" + std::to_string(num_ready) +
                                                     ") exceeds the number of refs (" +
                                                     std::to_string(entries.size()) + ")");
  await_some(store, entries, num_ready, deadline, hooks);
  ready.assign(entries.size(), false);
  std::size_t reported = 0;
  for (std::size_t i = 0; i < entries.size() && reported < num_ready; ++i)
    if (entries[i]->resolved()) {
      ready[i] = true;
      ++reported;
    }
}

bool cancel_object(ObjectStore& store, ObjectEntry* e, const ObjectId& id) {
  return store.fail(e, make_error(ErrorKind::cancelled, "the task producing object " +
                                                            id.to_string() + " was cancelled"));
}

RuntimeStats object_and_task_stats(const ObjectStore& store, const Counters& counters) {
  RuntimeStats s;
  s.objects = store.object_count();
  s.object_bytes = store.bytes_used();
  s.object_store_capacity = store.capacity();
  s.tasks_submitted = counters.tasks_submitted.load();
  s.tasks_finished = counters.tasks_finished.load();
  return s;
}

}  // namespace atl::runtime
