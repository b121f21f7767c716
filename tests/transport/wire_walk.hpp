// Test helper: reads every field of a Cap'n Proto message through the dynamic (reflection) API —
// the active member of every union, every non-union field, every list element, recursively — so
// that every pointer in an accepted message is followed. Schema-agnostic: new message types are
// covered without changes here. Throws whatever the accessors throw (tests treat that as a bug).
#pragma once

#include <capnp/dynamic.h>
#include <capnp/schema.h>

#include <cstdint>

namespace atl::wire_test {

// A checksum of everything read, so that no read is optimised away.
inline std::uint64_t walk(capnp::DynamicValue::Reader value) {
  switch (value.getType()) {
    case capnp::DynamicValue::BOOL:
      return value.as<bool>() ? 1 : 0;
    case capnp::DynamicValue::INT:
      return static_cast<std::uint64_t>(value.as<std::int64_t>());
    case capnp::DynamicValue::UINT:
      return value.as<std::uint64_t>();
    case capnp::DynamicValue::FLOAT:
      return static_cast<std::uint64_t>(value.as<double>() != 0);
    case capnp::DynamicValue::ENUM:
      return value.as<capnp::DynamicEnum>().getRaw();
    case capnp::DynamicValue::TEXT: {
      auto text = value.as<capnp::Text>();
      std::uint64_t sum = text.size() + static_cast<unsigned char>(text.cStr()[text.size()]);
      for (char c : text) sum += static_cast<unsigned char>(c);
      return sum;
    }
    case capnp::DynamicValue::DATA: {
      auto data = value.as<capnp::Data>();
      std::uint64_t sum = data.size();
      for (auto b : data) sum += b;
      return sum;
    }
    case capnp::DynamicValue::LIST: {
      std::uint64_t sum = 0;
      for (auto element : value.as<capnp::DynamicList>()) sum += walk(element);
      return sum;
    }
    case capnp::DynamicValue::STRUCT: {
      auto s = value.as<capnp::DynamicStruct>();
      std::uint64_t sum = 0;
      KJ_IF_MAYBE (field, s.which()) {
        sum += field->getIndex() + walk(s.get(*field));
      }
      for (auto field : s.getSchema().getNonUnionFields()) sum += walk(s.get(field));
      return sum;
    }
    default:  // VOID, and kinds the control schema does not use
      return 0;
  }
}

template <class Reader>
std::uint64_t walk_message(Reader reader) {
  return walk(capnp::toDynamic(reader));
}

}  // namespace atl::wire_test
