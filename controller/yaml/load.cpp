#include "controller/yaml/load.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fleet::yaml {
namespace {

// Thrown from the event handler to stop the parser at the first refusal (the handler's
// callbacks return void); caught in load() and never seen outside this file.
struct Refusal {
  Error error;
};

// Counts the document as a walk of the loaded tree would see it, checks keys as they come.
class Scan final : public YAML::EventHandler {
 public:
  Scan(const Where& where, const LoadOptions& options) : where_(where), options_(options) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    begin_node(mark, anchor, 1, 1, false, std::nullopt);
    end_node(anchor, 1, 1, std::nullopt);
  }

  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string& value) override {
    begin_node(mark, anchor, 1, 1, false, value);
    end_node(anchor, 1, 1, value);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor >= anchors_.size() || !anchors_[anchor].closed) {
      refuse(mark, "an alias inside its own anchor: the document would never end");
    }
    const Anchored& a = anchors_[anchor];
    if (a.container) refuse_container_key(mark);
    begin_node(mark, 0, a.nodes, a.height, true, a.scalar);
    end_node(0, a.nodes, a.height, a.scalar);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, false);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, true);
  }
  void OnMapEnd() override { close(); }

 private:
  // What an anchor stands for, in the units the budget counts.
  struct Anchored {
    bool closed = false;
    std::size_t nodes = 0;
    int height = 0;                     // levels, the anchored node's own included
    std::optional<std::string> scalar;  // its value, when it is a scalar (an alias can be a key)
    bool container = false;             // a list or a map
  };

  struct Frame {
    bool is_map = false;
    YAML::anchor_t anchor = 0;
    std::size_t nodes_before = 0;  // the count before this node
    int depth = 0;                 // its own level, the top node's is 1
    int deepest = 0;               // the deepest level reached inside it
    std::string parent_key;        // the key this node is the value of; "" at the top
    // Mappings: keys alternate with values; a key's text and where it was first written.
    bool next_is_key = true;
    std::string pending_key;
    std::map<std::string, YAML::Mark> keys;
  };

  [[noreturn]] void refuse(const YAML::Mark& mark, const std::string& what) const {
    throw Refusal{Error{Errc::invalid_input, where_.at(mark) + ": " + what}};
  }

  int depth() const { return static_cast<int>(stack_.size()) + 1; }

  // A node starts: `nodes` and `height` are what it adds (more than one for an alias).
  void begin_node(const YAML::Mark& mark, YAML::anchor_t anchor, std::size_t nodes, int height, bool alias,
                  const std::optional<std::string>& scalar) {
    // Nodes written out cost what the text costs; those an alias brings in again are budgeted.
    nodes_ += nodes;
    if (alias) {
      // An anchor's count is at most the nodes seen so far, which are the text's plus at most
      // the budget: the sum cannot overflow.
      alias_nodes_ += nodes;
      if (alias_nodes_ > options_.budget.max_alias_nodes) {
        refuse(mark, "the document expands past " + std::to_string(options_.budget.max_alias_nodes) +
                         " nodes through YAML aliases");
      }
    }
    if (depth() + height - 1 > options_.budget.max_depth) {
      refuse(mark, "the document nests deeper than " + std::to_string(options_.budget.max_depth) + " levels" +
                       (alias ? " through YAML aliases" : ""));
    }
    if (!stack_.empty()) {
      Frame& top = stack_.back();
      top.deepest = std::max(top.deepest, depth() + height - 1);
      if (top.is_map && top.next_is_key) {
        top.pending_key = scalar.value_or("");
        if (scalar) {
          auto [it, first] = top.keys.emplace(*scalar, mark);
          if (!first) {
            refuse(mark, std::string(noun(top.parent_key)) + " '" + *scalar +
                             "' is defined twice in this mapping (first at line " +
                             std::to_string(it->second.line + 1) + ")");
          }
        }
      }
    }
    if (anchor != 0) {
      if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
      anchors_[anchor] = Anchored{};
    }
  }

  // A node ends; a mapping above it now waits for the other half of the pair.
  void end_node(YAML::anchor_t anchor, std::size_t nodes, int height, const std::optional<std::string>& scalar) {
    if (anchor != 0) {
      // Field by field: GCC 12 at -O3 reports a bogus -Wmaybe-uninitialized for a temporary
      // Anchored{...} holding an empty optional<string> (GCC bug 80635).
      Anchored& a = anchors_[anchor];
      a.closed = true;
      a.nodes = nodes;
      a.height = height;
      a.scalar = scalar;
      a.container = false;
    }
    if (!stack_.empty() && stack_.back().is_map) stack_.back().next_is_key = !stack_.back().next_is_key;
  }

  // A key that is a list or a map (`? [a]`) has no text to compare or to report, and nothing
  // we read has one (as<std::string>() on it throws).
  void refuse_container_key(const YAML::Mark& mark) const {
    if (!stack_.empty() && stack_.back().is_map && stack_.back().next_is_key) {
      refuse(mark, "a key that is a list or a map (keys are plain values)");
    }
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, bool is_map) {
    refuse_container_key(mark);
    std::size_t before = nodes_;
    begin_node(mark, anchor, 1, 1, false, std::nullopt);
    Frame f;
    f.is_map = is_map;
    f.anchor = anchor;
    f.nodes_before = before;
    f.depth = depth();
    f.deepest = f.depth;
    if (stack_.empty()) {
      f.parent_key = "";
    } else if (stack_.back().is_map && !stack_.back().next_is_key) {
      f.parent_key = stack_.back().pending_key;
    } else {
      f.parent_key = "-";  // an item of a list, or a key: no key names it
    }
    stack_.push_back(std::move(f));
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (!stack_.empty()) stack_.back().deepest = std::max(stack_.back().deepest, f.deepest);
    end_node(f.anchor, nodes_ - f.nodes_before, f.deepest - f.depth + 1, std::nullopt);
    if (f.anchor != 0) anchors_[f.anchor].container = true;
  }

  std::string_view noun(const std::string& parent_key) const {
    for (const auto& kn : options_.key_nouns)
      if (kn.parent_key == parent_key) return kn.noun;
    return options_.key_noun;
  }

  const Where& where_;
  const LoadOptions& options_;
  std::vector<Frame> stack_;
  std::vector<Anchored> anchors_;  // by anchor_t: yaml-cpp numbers anchors 1, 2, ... per document
  std::size_t nodes_ = 0;          // every node, as a walk reaches them
  std::size_t alias_nodes_ = 0;    // those reached through an alias
};

}  // namespace

Result<YAML::Node> load(std::string_view text, const Where& where, const LoadOptions& options) {
  const std::string copy(text);
  try {
    std::istringstream in(copy);
    YAML::Parser parser(in);
    Scan scan(where, options);
    parser.HandleNextDocument(scan);  // YAML::Load reads the first document only, as does this
  } catch (const Refusal& r) {
    return std::unexpected(r.error);
  } catch (const YAML::DeepRecursion& e) {
    // Only with a budget deeper than yaml-cpp's own limit; its "bad file" says nothing useful.
    return fail(Errc::invalid_input, where.at(e.mark) + ": the document nests deeper than the YAML parser allows (" +
                                         std::to_string(e.depth()) + " levels)");
  } catch (const YAML::ParserException& e) {
    return fail(Errc::parse, where.at(e.mark) + ": " + e.msg);
  }
  try {
    return YAML::Load(copy);
  } catch (const YAML::ParserException& e) {
    return fail(Errc::parse, where.at(e.mark) + ": " + e.msg);
  }
}

}  // namespace fleet::yaml
