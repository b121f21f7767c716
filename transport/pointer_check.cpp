#include "transport/pointer_check.hpp"

#include <kj/debug.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace atl::transport {

namespace {

std::uint16_t read_discriminant(kj::ArrayPtr<const capnp::byte> data, std::uint32_t offset) {
  std::size_t at = std::size_t{offset} * 2;
  if (data.size() < at + 2) return 0;  // a short data section reads as zeros
  return static_cast<std::uint16_t>(data[at] | (data[at + 1] << 8));
}

}  // namespace

PointerPlan::PointerPlan(capnp::StructSchema root) {
  std::vector<std::uint64_t> ids;
  add(root, ids);
}

// Adds the plan of `schema` (and of every struct it reaches) unless present; returns its index.
// Recursive schemas end at a struct already added.
std::uint32_t PointerPlan::add(capnp::StructSchema schema, std::vector<std::uint64_t>& ids) {
  auto id = schema.getProto().getId();
  if (auto it = std::find(ids.begin(), ids.end(), id); it != ids.end())
    return static_cast<std::uint32_t>(it - ids.begin());
  auto index = static_cast<std::uint32_t>(structs_.size());
  ids.push_back(id);
  structs_.emplace_back();
  structs_[index].discriminant_offset = schema.getProto().getStruct().getDiscriminantOffset();
  for (auto field : schema.getFields()) {
    auto proto = field.getProto();
    Field f{};
    f.discriminant = proto.getDiscriminantValue();
    if (proto.isGroup()) {
      f.kind = Kind::group;
      f.target = add(field.getType().asStruct(), ids);
      structs_[index].fields.push_back(f);
      continue;
    }
    f.pointer = proto.getSlot().getOffset();
    auto type = field.getType();
    switch (type.which()) {
      case capnp::schema::Type::TEXT:
        f.kind = Kind::text;
        break;
      case capnp::schema::Type::DATA:
        f.kind = Kind::data;
        break;
      case capnp::schema::Type::STRUCT:
        f.kind = Kind::structure;
        f.target = add(type.asStruct(), ids);
        break;
      case capnp::schema::Type::LIST: {
        auto element = type.asList().getElementType();
        switch (element.which()) {
          case capnp::schema::Type::STRUCT:
            f.kind = Kind::struct_list;
            f.target = add(element.asStruct(), ids);
            break;
          case capnp::schema::Type::TEXT:
            f.kind = Kind::text_list;
            break;
          case capnp::schema::Type::DATA:
            f.kind = Kind::data_list;
            break;
          default:
            throw std::logic_error("PointerPlan: unsupported list type in field " +
                                   std::string(proto.getName().cStr()));
        }
        break;
      }
      case capnp::schema::Type::INTERFACE:
      case capnp::schema::Type::ANY_POINTER:
        throw std::logic_error("PointerPlan: unsupported pointer type in field " +
                               std::string(proto.getName().cStr()));
      default:
        continue;  // data fields: any bits are a valid value
    }
    structs_[index].fields.push_back(f);
  }
  return index;
}

void PointerPlan::check(capnp::AnyStruct::Reader root) const {
  check(structs_[0], root);
}

void PointerPlan::check(const Struct& plan, capnp::AnyStruct::Reader reader) const {
  auto pointers = reader.getPointerSection();
  bool read_discriminant_yet = false;
  std::uint16_t active = 0;
  for (const Field& f : plan.fields) {
    if (f.discriminant != kNoDiscriminant) {
      if (!read_discriminant_yet) {
        active = read_discriminant(reader.getDataSection(), plan.discriminant_offset);
        read_discriminant_yet = true;
      }
      if (f.discriminant != active) continue;
    }
    if (f.kind == Kind::group) {
      check(structs_[f.target], reader);
      continue;
    }
    if (f.pointer >= pointers.size()) continue;  // an older, smaller struct: the field is unset
    auto pointer = pointers[f.pointer];
    if (pointer.isNull()) continue;
    switch (f.kind) {
      case Kind::text:
        (void)pointer.getAs<capnp::Text>();
        break;
      case Kind::data:
        (void)pointer.getAs<capnp::Data>();
        break;
      case Kind::structure:
        check(structs_[f.target], pointer.getAs<capnp::AnyStruct>());
        break;
      case Kind::struct_list: {
        auto list = pointer.getAs<capnp::AnyList>();
        // Generated readers refuse a bit list where structs belong; AnyList would take it.
        KJ_REQUIRE(list.getElementSize() != capnp::ElementSize::BIT,
                   "found a bit list where a struct list was expected");
        for (auto element : list.as<capnp::List<capnp::AnyStruct>>())
          check(structs_[f.target], element);
        break;
      }
      case Kind::text_list:
        for (auto element : pointer.getAs<capnp::List<capnp::Text>>()) (void)element;
        break;
      case Kind::data_list:
        for (auto element : pointer.getAs<capnp::List<capnp::Data>>()) (void)element;
        break;
      case Kind::group:
        break;
    }
  }
}

}  // namespace atl::transport
