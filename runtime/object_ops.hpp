// The object half of a runtime core: put, get, wait and cancel on a process's ObjectStore. Both
// the embedded core and the cluster driver use these, so objects behave the same in both.
//
// Thread-safety: as ObjectStore (all functions are thread-safe).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "atoll/detail/core.hpp"
#include "atoll/runtime.hpp"
#include "runtime/awaiting.hpp"
#include "runtime/counters.hpp"
#include "runtime/object_store.hpp"

namespace atl::runtime {

// The ref's entry in `owner`'s store; raises Error(invalid_argument) for another runtime's ref.
ObjectEntry* entry_for(const detail::Core& owner, const detail::RefToken& ref);

// Stores a value; raises ObjectStoreFullError when it does not fit.
std::shared_ptr<detail::RefToken> put_object(ObjectStore& store,
                                             const std::shared_ptr<detail::Core>& owner,
                                             ObjectId id, detail::Payload value);
// Blocks until resolved (raising its error) or the deadline (GetTimeoutError).
const detail::Payload& get_object(ObjectStore& store, ObjectEntry* e, const ObjectId& id,
                                  detail::Deadline deadline, BlockHooks* hooks,
                                  int spin_us = kSpinMicros);
// Reports at most num_ready refs ready, the first ones in input order (as Ray does).
void wait_objects(ObjectStore& store, const std::vector<ObjectEntry*>& entries,
                  std::size_t num_ready, detail::Deadline deadline, BlockHooks* hooks,
                  std::vector<bool>& ready);
bool cancel_object(ObjectStore& store, ObjectEntry* e, const ObjectId& id);
// The statistics every core reports the same way: its store and its task counters.
RuntimeStats object_and_task_stats(const ObjectStore& store, const Counters& counters);

}  // namespace atl::runtime
