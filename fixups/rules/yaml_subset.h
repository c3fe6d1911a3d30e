// The YAML netplan files are written in, read line by line: block lines, and flow collections that fit on one line.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vdkit::fixups::detail {

// One YAML line: its indentation, key (before ':'), the value after it.
struct YamlLine {
  std::string_view body;
  int indent = -1;  // -1: blank or comment
  std::string key;
  std::string value;
  size_t value_pos = 0;  // where the value starts in body
  bool list_item = false;
};
YamlLine yaml_line(std::string_view body);

// A YAML flow node ({a: b, c: [d]}) written on one line, with where each part sits in that line.
struct Flow {
  enum Kind { kScalar, kMap, kSeq };
  struct Item {
    size_t begin = 0, end = 0;  // the item ("key: value", or a sequence value)
    size_t key_end = 0;         // where its key ends (== begin in a sequence)
    size_t value_begin = 0;     // where its value starts (== begin in a sequence)
    std::string key;
    std::shared_ptr<Flow> value;
  };
  Kind kind = kScalar;
  size_t begin = 0, end = 0;
  std::string scalar;  // kScalar: quotes removed
  std::vector<Item> items;
};

// The flow collection a line's value holds, when it is one; nullopt for a scalar or block value. `broken` is set
// when the value starts a flow collection that does not end on its line (flow over several lines, not handled).
std::optional<Flow> line_flow(const YamlLine& y, bool* broken = nullptr);
const Flow* flow_get(const Flow& map, std::string_view key);
// Index one past the last line of the block that line k opens (its deeper-indented children).
size_t yaml_block_end(const std::vector<YamlLine>& ys, size_t k);
bool yaml_true(const std::string& v);

// Rebuilds a flow collection from its items: nullopt drops an item, a string replaces it; `added` items go at
// the end. Separators and spacing of what stays are the user's.
std::string rebuild_flow(std::string_view t, const Flow& f, const std::vector<std::optional<std::string>>& items,
                         const std::vector<std::string>& added);
std::string flow_text(std::string_view t, const Flow& f);
std::string flow_item_text(std::string_view t, const Flow::Item& it);
// The item with a new value text ("key: value"; the user's spacing when the item had a value after ": ").
std::string flow_item_with(std::string_view t, const Flow::Item& it, const std::string& value);
// The line with the flow node `inner` (somewhere in it) replaced by `text`.
std::string replace_span(std::string_view body, const Flow& inner, const std::string& text);

}  // namespace vdkit::fixups::detail
