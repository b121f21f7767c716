// A bounded memory of ids seen recently, so that a handler can recognise a request it was sent
// again (a sender's retry on the same connection) and not act on it twice. It remembers the last
// `capacity` ids inserted; an older id is forgotten, oldest first.
//
// Thread-safety: none; the owner guards it.
//
// Example:
//   RecentIds seen(65536);
//   if (!seen.insert(request_id)) return;  // a duplicate: its first copy is being handled
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_set>

namespace atl::runtime {

class RecentIds {
 public:
  explicit RecentIds(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // True when `id` is new (it is now remembered); false when it was seen and not yet forgotten.
  bool insert(std::uint64_t id) {
    if (!ids_.insert(id).second) return false;
    order_.push_back(id);
    if (order_.size() > capacity_) {
      ids_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }
  bool contains(std::uint64_t id) const { return ids_.contains(id); }
  std::size_t size() const noexcept { return order_.size(); }

 private:
  std::size_t capacity_;
  std::unordered_set<std::uint64_t> ids_;
  std::deque<std::uint64_t> order_;
};

}  // namespace atl::runtime
