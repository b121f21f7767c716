// Checks every pointer of a received Cap'n Proto message against its schema before the runtime
// reads it: each struct, list and blob pointer that a reader of the schema could follow, in the
// active member of every union, recursively. A pointer of the wrong kind (a list where a struct
// belongs), out of bounds or a text without its NUL throws here, during decoding, instead of later
// in code that reads an accepted message.
//
// The plan is compiled once from the schema, so a check costs what reading the fields through the
// generated accessors would: the dynamic API's per-field schema lookups cost about as much as the
// rest of decoding.
//
// Thread-safety: a PointerPlan is immutable after construction; `check` may run concurrently.
//
//   static const PointerPlan plan(capnp::Schema::from<wire::Envelope>());
//   plan.check(capnp::AnyStruct::Reader(reader.getRoot<wire::Envelope>()));  // throws
//   kj::Exception
#pragma once

#include <capnp/any.h>
#include <capnp/schema.h>

#include <cstdint>
#include <vector>

namespace atl::transport {

class PointerPlan {
 public:
  // Throws std::logic_error for a schema with a pointer type it cannot check (interfaces,
  // AnyPointer, lists of primitives, enums or lists): the wire schema uses none, and a test
  // compiles every root's plan, so adding one fails there first (it then needs the element-size
  // check the generated reader makes).
  explicit PointerPlan(capnp::StructSchema root);

  // Throws kj::Exception when a pointer does not match the schema.
  void check(capnp::AnyStruct::Reader root) const;

 private:
  enum class Kind : std::uint8_t {
    text,
    data,
    structure,
    group,
    struct_list,
    text_list,
    data_list
  };
  static constexpr std::uint16_t kNoDiscriminant = 0xffff;

  struct Field {
    Kind kind;
    std::uint32_t pointer = 0;  // index in the pointer section (unused for groups)
    std::uint32_t target = 0;   // plan index of the struct, group or list element
    std::uint16_t discriminant = kNoDiscriminant;  // set: only when the union holds this member
  };
  struct Struct {
    std::uint32_t discriminant_offset = 0;  // in 16-bit units of the data section
    std::vector<Field> fields;
  };

  std::uint32_t add(capnp::StructSchema schema, std::vector<std::uint64_t>& ids);
  void check(const Struct& plan, capnp::AnyStruct::Reader reader) const;

  std::vector<Struct> structs_;  // [0] is the root
};

}  // namespace atl::transport
