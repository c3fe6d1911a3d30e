// Reading a plan file: CSV (RFC 4180) or JSON rows, checked column by column, targets named by the one rule.
#include "batch/plan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "blockcore/convert/convert_job.h"
#include "blockcore/convert/target_names.h"

namespace vdkit::batch {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool is_known_column(const std::string& c) {
  for (const char* r : kRequiredColumns)
    if (c == r) return true;
  for (const char* o : kOptionalColumns)
    if (c == o) return true;
  for (const auto& spec : fixups::fixup_option_specs())
    if (c == spec.name) return true;
  return false;
}

std::string known_columns() {
  std::string out;
  auto add = [&](const std::string& c) { out += (out.empty() ? "" : ", ") + c; };
  for (const char* r : kRequiredColumns) add(r);
  for (const char* o : kOptionalColumns) add(o);
  for (const auto& spec : fixups::fixup_option_specs()) add(spec.name);
  return out;
}

std::string join_path(const std::string& base, const std::string& p) {
  if (p.empty() || p[0] == '/' || base.empty() || base == ".") return p;
  return base + "/" + p;
}

std::vector<std::string> split_disks(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ';')) {
    part = trim(part);
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// One row as column -> value, before checking.
struct RawRow {
  size_t line = 0;
  std::map<std::string, std::string> cells;
};

Status row_error(const RawRow& r, size_t row, const std::string& column, const std::string& what) {
  std::string where = "row " + std::to_string(row + 1);
  if (r.line) where += " (line " + std::to_string(r.line) + ")";
  auto name = r.cells.find("name");
  if (name != r.cells.end() && !name->second.empty() && column != "name") where += " '" + name->second + "'";
  return Status::Invalid(where + ", column '" + column + "': " + what);
}

Result<PlanGuest> check_row(const RawRow& r, size_t row, const std::string& base_dir) {
  auto targets_cell = r.cells.find("targets");
  const bool explicit_targets = targets_cell != r.cells.end() && !trim(targets_cell->second).empty();
  for (const char* req : kRequiredColumns) {
    auto it = r.cells.find(req);
    // With explicit targets the output folder is not needed (the column stays, so plans keep their shape).
    if (explicit_targets && std::string(req) == "output") continue;
    if (it == r.cells.end() || trim(it->second).empty()) return row_error(r, row, req, "is empty");
  }
  PlanGuest g;
  g.row = row;
  g.line = r.line;
  g.name = trim(r.cells.at("name"));
  if (g.name.find_first_of("/\\") != std::string::npos || g.name == "." || g.name == "..")
    return row_error(r, row, "name", "'" + g.name + "' cannot name files (no '/', '.' or '..')");
  g.output = trim(r.cells.at("output"));
  if (!g.output.empty()) g.output = join_path(base_dir, g.output);
  g.format = trim(r.cells.at("format"));
  if (g.format != "raw" && g.format != "qcow2") return row_error(r, row, "format", "'" + g.format + "' is not raw or qcow2");
  auto yes_no = [&](const char* column, bool& out) -> Status {
    auto c = r.cells.find(column);
    std::string v = c == r.cells.end() ? "" : trim(c->second);
    if (v.empty() && std::string(column) != "fixup") return Status::Ok();
    if (v == "yes" || v == "true" || v == "1") out = true;
    else if (v == "no" || v == "false" || v == "0") out = false;
    else return row_error(r, row, column, "'" + v + "' is not yes or no");
    return Status::Ok();
  };
  VDKIT_RETURN_IF_ERROR(yes_no("fixup", g.fixup));
  VDKIT_RETURN_IF_ERROR(yes_no("sparsify", g.sparsify));
  if (auto c = r.cells.find("compression"); c != r.cells.end() && !trim(c->second).empty()) {
    g.compression = trim(c->second);
    if (g.compression == "none") g.compression.clear();
    else if (g.compression != "zlib" && g.compression != "zstd")
      return row_error(r, row, "compression", "'" + g.compression + "' is not none, zlib or zstd");
    if (!g.compression.empty() && g.format != "qcow2")
      return row_error(r, row, "compression", "compression needs format qcow2");
  }
  for (const auto& spec : fixups::fixup_option_specs()) {
    auto c = r.cells.find(spec.name);
    if (c == r.cells.end() || trim(c->second).empty()) continue;
    if (!g.fixup) return row_error(r, row, spec.name, "a fixup option on a row with fixup=no");
    Status st = fixups::set_fixup_option(g.fixup_options, spec.name, trim(c->second));
    if (!st.ok()) return row_error(r, row, spec.name, st.message());
    g.fixup_columns.emplace_back(spec.name, trim(c->second));
  }
  std::vector<std::string> disks = split_disks(r.cells.at("disks"));
  if (disks.empty()) return row_error(r, row, "disks", "is empty");
  if (disks.size() > kMaxDisksPerGuest)
    return row_error(r, row, "disks", "names " + std::to_string(disks.size()) + " disks, more than the limit of " +
                                          std::to_string(kMaxDisksPerGuest));
  std::vector<NamedSource> named;
  for (auto& d : disks) {
    bool file = source_has_file_name(d);
    named.push_back({file ? join_path(base_dir, d) : d, file});
  }
  if (explicit_targets) {
    std::vector<std::string> targets = split_disks(targets_cell->second);
    if (targets.size() != named.size())
      return row_error(r, row, "targets", "names " + std::to_string(targets.size()) + " targets for " +
                                              std::to_string(named.size()) + " disks");
    for (size_t i = 0; i < named.size(); ++i) {
      bool in_place = is_in_place_target(targets[i]);
      g.disks.push_back({named[i].source, in_place ? targets[i] : join_path(base_dir, targets[i]), in_place});
    }
    return g;
  }
  auto names = target_names(named, g.name, g.format);
  if (!names.ok()) return row_error(r, row, "disks", names.status().message());
  for (size_t i = 0; i < named.size(); ++i) g.disks.push_back({named[i].source, g.output + "/" + (*names)[i], false});
  return g;
}

Result<std::vector<RawRow>> rows_from_csv(const std::string& text) {
  VDKIT_ASSIGN_OR_RETURN(std::vector<CsvRecord> recs, parse_csv(text));
  if (recs.empty()) return Status::Invalid("the plan is empty (it needs a header row: name,disks,output,format,fixup)");
  std::vector<std::string> header;
  for (auto& h : recs[0].fields) header.push_back(trim(h));
  std::set<std::string> seen;
  for (size_t c = 0; c < header.size(); ++c) {
    if (!is_known_column(header[c]))
      return Status::Invalid("header (line " + std::to_string(recs[0].line) + "), column " + std::to_string(c + 1) +
                             " '" + header[c] + "': unknown column (known: " + known_columns() + ")");
    if (!seen.insert(header[c]).second)
      return Status::Invalid("header (line " + std::to_string(recs[0].line) + "): column '" + header[c] +
                             "' is given twice");
  }
  for (const char* req : kRequiredColumns)
    if (!seen.count(req)) return Status::Invalid(std::string("header: the required column '") + req + "' is missing");
  std::vector<RawRow> rows;
  for (size_t i = 1; i < recs.size(); ++i) {
    if (recs[i].fields.size() != header.size())
      return Status::Invalid("row " + std::to_string(i) + " (line " + std::to_string(recs[i].line) + "): " +
                             std::to_string(recs[i].fields.size()) + " fields, the header has " +
                             std::to_string(header.size()));
    RawRow r;
    r.line = recs[i].line;
    for (size_t c = 0; c < header.size(); ++c) r.cells[header[c]] = recs[i].fields[c];
    rows.push_back(std::move(r));
  }
  return rows;
}

Result<std::vector<RawRow>> rows_from_json(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::Invalid("the plan is not valid JSON");
  if (j.is_object() && j.contains("guests")) j = j["guests"];
  if (!j.is_array()) return Status::Invalid("a JSON plan is a list of guests (or {\"guests\": [...]})");
  std::vector<RawRow> rows;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_object()) return Status::Invalid("row " + std::to_string(i + 1) + ": not an object");
    RawRow r;
    for (auto& [k, v] : j[i].items()) {
      if (!is_known_column(k))
        return Status::Invalid("row " + std::to_string(i + 1) + ", column '" + k + "': unknown column (known: " +
                               known_columns() + ")");
      if (v.is_string()) r.cells[k] = v.get<std::string>();
      else if (v.is_boolean()) r.cells[k] = v.get<bool>() ? "yes" : "no";
      else if (k == "disks" && v.is_array()) {
        std::string s;
        for (auto& d : v) {
          if (!d.is_string() || d.get<std::string>().find(';') != std::string::npos)
            return Status::Invalid("row " + std::to_string(i + 1) + ", column 'disks': each disk is a string without ';'");
          s += (s.empty() ? "" : ";") + d.get<std::string>();
        }
        r.cells[k] = s;
      } else {
        return Status::Invalid("row " + std::to_string(i + 1) + ", column '" + k + "': expected a string");
      }
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

Result<std::vector<CsvRecord>> parse_csv(const std::string& text) {
  std::vector<CsvRecord> out;
  size_t i = 0, line = 1;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // spreadsheets often save a UTF-8 byte order mark
  while (i < text.size()) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool quoted_field = false;
    for (;;) {
      if (i < text.size() && text[i] == '"' && field.empty() && !quoted_field) {
        quoted_field = true;
        ++i;
        for (;;) {
          if (i >= text.size())
            return Status::Invalid("line " + std::to_string(rec.line) + ": a quoted field is never closed");
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (text[i] == '\n') ++line;
          field += text[i++];
        }
        continue;
      }
      if (i >= text.size() || text[i] == '\n' || (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
        rec.fields.push_back(std::move(field));
        if (i < text.size()) i += text[i] == '\r' ? 2 : 1;
        ++line;
        break;
      }
      if (text[i] == ',') {
        rec.fields.push_back(std::move(field));
        field.clear();
        quoted_field = false;
        ++i;
        continue;
      }
      if (quoted_field)
        return Status::Invalid("line " + std::to_string(line) + ": text after the closing quote of a field");
      field += text[i++];
    }
    bool blank = rec.fields.size() == 1 && trim(rec.fields[0]).empty();
    if (!blank) out.push_back(std::move(rec));
    if (out.size() > kMaxPlanRows + 1)
      return Status::Invalid("the plan has more than " + std::to_string(kMaxPlanRows) + " rows");
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos && (s.empty() || (s.front() != ' ' && s.back() != ' '))) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

namespace {

// One spelling per file ("out", "./out/", "/abs/out" are one folder), so two rows cannot write one target, and a
// target can be compared with the sources.
std::string canonical(const std::string& p) {
  std::error_code ec;
  auto c = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
  return ec ? p : c.string();
}

}  // namespace

Result<Plan> parse_plan(const std::string& text, const std::string& path, const std::string& base_dir) {
  size_t first = text.find_first_not_of(" \t\r\n");
  bool json = first != std::string::npos && (text[first] == '[' || text[first] == '{');
  auto rows = json ? rows_from_json(text) : rows_from_csv(text);
  if (!rows.ok()) return rows.status().Context(path);
  Plan plan;
  plan.path = path;
  plan.text = text;
  std::map<std::string, size_t> names;
  std::map<std::string, std::pair<size_t, size_t>> targets;  // target -> (row, disk)
  for (size_t i = 0; i < rows->size(); ++i) {
    auto g = check_row((*rows)[i], i, base_dir);
    if (!g.ok()) return g.status().Context(path);
    auto [it, fresh] = names.emplace(g->name, i);
    if (!fresh)
      return Status::Invalid(path + ": row " + std::to_string(i + 1) + ", column 'name': '" + g->name +
                             "' is also the name of row " + std::to_string(it->second + 1));
    for (size_t d = 0; d < g->disks.size(); ++d) {
      const PlanDisk& pd = g->disks[d];
      auto [t, new_target] = targets.emplace(pd.in_place && !source_has_file_name(pd.target) ? pd.target
                                                                                               : canonical(pd.target),
                                             std::make_pair(i, d));
      if (!new_target)
        return Status::Invalid(path + ": row " + std::to_string(i + 1) + ", column 'disks': disk " +
                               std::to_string(d) + " would be written to " + g->disks[d].target + ", as disk " +
                               std::to_string(t->second.second) + " of row " + std::to_string(t->second.first + 1));
    }
    plan.guests.push_back(std::move(*g));
  }
  if (plan.guests.empty()) return Status::Invalid(path + ": the plan has a header but no rows");
  // A target that is one of the plan's sources would replace (with --overwrite) or remove a source disk.
  for (const auto& g : plan.guests)
    for (size_t d = 0; d < g.disks.size(); ++d) {
      if (!source_has_file_name(g.disks[d].source)) continue;
      auto t = targets.find(canonical(g.disks[d].source));
      if (t != targets.end())
        return Status::Invalid(path + ": row " + std::to_string(t->second.first + 1) + ", column 'output': disk " +
                               std::to_string(t->second.second) + " would be written over " + g.disks[d].source +
                               ", a source disk of row " + std::to_string(g.row + 1));
    }
  return plan;
}

Result<Plan> read_plan(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "opening the plan " + path);
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxPlanBytes)
      return Status::Invalid(path + ": the plan is larger than " + std::to_string(kMaxPlanBytes >> 20) + " MiB");
  }
  std::string base = std::filesystem::path(path).parent_path().string();
  return parse_plan(text, path, base.empty() ? "." : base);
}

}  // namespace vdkit::batch
