#include "proto/codec.hpp"

#include <google/protobuf/util/json_util.h>

namespace fleet::wire {

Result<std::string> to_json(const google::protobuf::Message& message, Layout layout) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  o.add_whitespace = layout == Layout::indented;
  std::string text;
  auto st = google::protobuf::util::MessageToJsonString(message, &text, o);
  // Bytes that are not UTF-8 in a string (a board's file as read) are dropped by protobuf's
  // printer, which keeps the JSON readable; what fails here is a message protobuf cannot print.
  if (!st.ok()) {
    return fail(Errc::invalid_input, "cannot write " + message.GetTypeName() + " as JSON: " + std::string(st.message()));
  }
  if (layout == Layout::indented && !text.empty() && text.back() != '\n') text += '\n';
  return text;
}

Result<void> from_json(std::string_view text, std::string_view source, google::protobuf::Message* out) {
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(google::protobuf::StringPiece(text.data(), text.size()), out, o);
  if (!st.ok()) {
    return fail(Errc::parse, std::string(source) + ": not a " + out->GetTypeName() + " in JSON: " + std::string(st.message()));
  }
  return {};
}

}  // namespace fleet::wire
