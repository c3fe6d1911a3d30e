// A small XML-RPC value reader (value, struct, member, name, array, data, scalar types) for ova.xml.
#include "blockcore/xva/ova_xml.h"

#include <algorithm>
#include <map>
#include <memory>

namespace vdkit::xva {

namespace {

struct Value {
  std::string text;                                        // scalars
  // A struct's members as two parallel lists (std::vector may hold the incomplete Value, std::pair may not).
  std::vector<std::string> names;
  std::vector<Value> members;
  std::vector<Value> items;  // array
  bool is_struct = false, is_array = false;
  const Value* get(const std::string& k) const {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == k) return &members[i];
    return nullptr;
  }
  std::string str(const std::string& k) const {
    const Value* v = get(k);
    return v ? v->text : "";
  }
};

class Parser {
 public:
  Parser(const std::string& s, const std::string& where) : s_(s), where_(where) {}

  Result<Value> document() {
    skip_misc();
    // The root: <value> directly, or wrapped (methodResponse/params/param) in some writers.
    for (int i = 0; i < 4 && pos_ < s_.size(); ++i) {
      VDKIT_ASSIGN_OR_RETURN(std::string tag, open_tag());
      if (tag == "value") return value_body(0);
      skip_misc();
    }
    return error("no <value> element");
  }

 private:
  Status error(const std::string& what) const {
    return Status::Corrupt(where_ + ": ova.xml at byte " + std::to_string(pos_) + ": " + what);
  }

  void skip_ws() {
    while (pos_ < s_.size() && isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  // Whitespace, <?...?>, <!-- ... -->, <!DOCTYPE ...>.
  void skip_misc() {
    for (;;) {
      skip_ws();
      if (s_.compare(pos_, 2, "<?") == 0) {
        size_t e = s_.find("?>", pos_);
        pos_ = e == std::string::npos ? s_.size() : e + 2;
      } else if (s_.compare(pos_, 4, "<!--") == 0) {
        size_t e = s_.find("-->", pos_);
        pos_ = e == std::string::npos ? s_.size() : e + 3;
      } else if (s_.compare(pos_, 2, "<!") == 0) {
        size_t e = s_.find('>', pos_);
        pos_ = e == std::string::npos ? s_.size() : e + 1;
      } else {
        return;
      }
    }
  }

  // Reads "<name ...>" (or "<name/>", then self_closed_) and returns the name.
  Result<std::string> open_tag() {
    skip_misc();
    if (pos_ >= s_.size() || s_[pos_] != '<' || s_.compare(pos_, 2, "</") == 0) return error("expected an element");
    size_t e = s_.find('>', pos_);
    if (e == std::string::npos) return error("an element is not closed");
    std::string inner = s_.substr(pos_ + 1, e - pos_ - 1);
    pos_ = e + 1;
    self_closed_ = !inner.empty() && inner.back() == '/';
    if (self_closed_) inner.pop_back();
    size_t sp = inner.find_first_of(" \t\r\n");
    return sp == std::string::npos ? inner : inner.substr(0, sp);
  }

  Status close_tag(const std::string& name) {
    skip_misc();
    std::string want = "</" + name;
    if (s_.compare(pos_, want.size(), want) != 0) return error("expected </" + name + ">");
    size_t e = s_.find('>', pos_);
    if (e == std::string::npos) return error("</" + name + " is not closed");
    pos_ = e + 1;
    return Status::Ok();
  }

  // Character data up to the next '<', entities decoded.
  Result<std::string> text() {
    size_t e = s_.find('<', pos_);
    if (e == std::string::npos) return error("text runs to the end of the file");
    std::string raw = s_.substr(pos_, e - pos_), out;
    pos_ = e;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      size_t semi = raw.find(';', i);
      if (semi == std::string::npos || semi - i > 10) return error("a bad character reference");
      std::string ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "lt") out += '<';
      else if (ent == "gt") out += '>';
      else if (ent == "amp") out += '&';
      else if (ent == "quot") out += '"';
      else if (ent == "apos") out += '\'';
      else if (ent.size() > 1 && ent[0] == '#') {
        unsigned long cp = ent[1] == 'x' ? std::strtoul(ent.c_str() + 2, nullptr, 16) : std::strtoul(ent.c_str() + 1, nullptr, 10);
        out += cp < 0x80 ? static_cast<char>(cp) : '?';  // names we use are ASCII; others keep a placeholder
      } else {
        return error("unknown entity &" + ent + ";");
      }
      i = semi;
    }
    return out;
  }

  // After <value>: a typed child, or bare text, then </value>.
  Result<Value> value_body(int depth) {
    if (depth > kMaxXmlDepth) return error("values nest deeper than " + std::to_string(kMaxXmlDepth));
    Value v;
    if (self_closed_) return v;
    size_t save = pos_;
    skip_ws();
    if (s_.compare(pos_, 2, "</") == 0 || pos_ >= s_.size() || s_[pos_] != '<') {
      pos_ = save;
      VDKIT_ASSIGN_OR_RETURN(v.text, text());
      VDKIT_RETURN_IF_ERROR(close_tag("value"));
      return v;
    }
    VDKIT_ASSIGN_OR_RETURN(std::string type, open_tag());
    if (type == "struct") {
      v.is_struct = true;
      const bool empty = self_closed_;
      while (!empty) {
        skip_misc();
        if (s_.compare(pos_, 2, "</") == 0) break;
        VDKIT_ASSIGN_OR_RETURN(std::string m, open_tag());
        if (m != "member") return error("expected <member> in a <struct>, found <" + m + ">");
        VDKIT_ASSIGN_OR_RETURN(std::string n, open_tag());
        if (n != "name") return error("expected <name> in a <member>");
        std::string name;
        if (!self_closed_) {
          VDKIT_ASSIGN_OR_RETURN(name, text());
          VDKIT_RETURN_IF_ERROR(close_tag("name"));
        }
        VDKIT_ASSIGN_OR_RETURN(std::string vt, open_tag());
        if (vt != "value") return error("expected <value> in a <member>");
        VDKIT_ASSIGN_OR_RETURN(Value mv, value_body(depth + 1));
        v.names.push_back(std::move(name));
        v.members.push_back(std::move(mv));
        VDKIT_RETURN_IF_ERROR(close_tag("member"));
      }
      if (!empty) VDKIT_RETURN_IF_ERROR(close_tag("struct"));
    } else if (type == "array") {
      v.is_array = true;
      if (!self_closed_) {
        VDKIT_ASSIGN_OR_RETURN(std::string d, open_tag());
        if (d != "data") return error("expected <data> in an <array>");
        const bool empty = self_closed_;
        while (!empty) {
          skip_misc();
          if (s_.compare(pos_, 2, "</") == 0) break;
          VDKIT_ASSIGN_OR_RETURN(std::string it, open_tag());
          if (it != "value") return error("expected <value> in <data>");
          VDKIT_ASSIGN_OR_RETURN(Value iv, value_body(depth + 1));
          v.items.push_back(std::move(iv));
        }
        if (!empty) VDKIT_RETURN_IF_ERROR(close_tag("data"));
        VDKIT_RETURN_IF_ERROR(close_tag("array"));
      }
    } else {  // string, int, i4, boolean, double, dateTime.iso8601, base64
      if (!self_closed_) {
        if (type.empty() || type[0] == '/') return error("expected a typed value");
        VDKIT_ASSIGN_OR_RETURN(v.text, text());
        VDKIT_RETURN_IF_ERROR(close_tag(type));
      }
    }
    VDKIT_RETURN_IF_ERROR(close_tag("value"));
    return v;
  }

  const std::string& s_;
  const std::string& where_;
  size_t pos_ = 0;
  bool self_closed_ = false;
};

}  // namespace

Result<XvaManifest> parse_ova_xml(const std::string& xml, const std::string& where) {
  if (xml.size() > kMaxOvaXmlBytes)
    return Status::Corrupt(where + ": ova.xml is " + std::to_string(xml.size()) + " bytes, more than the limit of " +
                           std::to_string(kMaxOvaXmlBytes) + " (kMaxOvaXmlBytes)");
  Parser p(xml, where);
  VDKIT_ASSIGN_OR_RETURN(Value root, p.document());
  const Value* objects = root.get("objects");
  if (!objects || !objects->is_array) return Status::Corrupt(where + ": ova.xml has no 'objects' array");
  std::map<std::string, const Value*> by_id;  // id -> snapshot struct
  const Value* vm = nullptr;
  std::vector<const Value*> vdis;
  for (const Value& o : objects->items) {
    const Value* snap = o.get("snapshot");
    if (!snap || !snap->is_struct) continue;
    std::string cls = o.str("class"), id = o.str("id");
    by_id[id] = snap;
    if (cls == "VM" && snap->str("is_a_snapshot") != "true" && snap->str("is_control_domain") != "true" && !vm)
      vm = snap;
    if (cls == "VDI") vdis.push_back(&o);
  }
  XvaManifest m;
  auto add_disk = [&](const std::string& ref, const Value& vdi, const std::string& userdevice) -> Status {
    if (m.disks.size() >= kMaxDisks)
      return Status::Corrupt(where + ": ova.xml lists more than " + std::to_string(kMaxDisks) + " disks (kMaxDisks)");
    XvaDisk d;
    d.ref = ref;
    d.name = vdi.str("name_label");
    d.userdevice = userdevice;
    std::string vs = vdi.str("virtual_size");
    char* end = nullptr;
    errno = 0;
    unsigned long long size = std::strtoull(vs.c_str(), &end, 10);
    if (vs.empty() || *end || errno || size > kMaxDiskBytes)
      return Status::Corrupt(where + ": ova.xml: VDI " + ref + " has virtual_size '" + vs +
                             "', not a size up to the limit of " + std::to_string(kMaxDiskBytes) + " (kMaxDiskBytes)");
    if (ref.empty() || ref.find('/') != std::string::npos)
      return Status::Corrupt(where + ": ova.xml: a VDI id '" + ref + "' cannot name a folder of chunks");
    d.size = size;
    m.disks.push_back(std::move(d));
    return Status::Ok();
  };
  if (vm) {
    m.vm_name = vm->str("name_label");
    const Value* vbds = vm->get("VBDs");
    std::vector<std::pair<long, std::pair<std::string, const Value*>>> found;
    if (vbds && vbds->is_array) {
      for (const Value& r : vbds->items) {
        auto it = by_id.find(r.text);
        if (it == by_id.end()) continue;
        const Value& vbd = *it->second;
        if (vbd.str("type") != "Disk") continue;
        auto vdi = by_id.find(vbd.str("VDI"));
        if (vdi == by_id.end()) continue;
        found.push_back({std::strtol(vbd.str("userdevice").c_str(), nullptr, 10), {vdi->first, vdi->second}});
      }
    }
    std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [dev, ref_vdi] : found)
      VDKIT_RETURN_IF_ERROR(add_disk(ref_vdi.first, *ref_vdi.second, std::to_string(dev)));
  } else {
    for (const Value* o : vdis) VDKIT_RETURN_IF_ERROR(add_disk(o->str("id"), *o->get("snapshot"), ""));
  }
  if (m.disks.empty()) return Status::Corrupt(where + ": ova.xml names no disks (no VBD of type Disk with a VDI)");
  return m;
}

}  // namespace vdkit::xva
