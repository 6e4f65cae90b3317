#include "lib/s3_xml.h"

#include <cstdint>

namespace sqlbak {

const XmlElement* XmlElement::child(std::string_view child_name) const {
  for (const XmlElement& c : children)
    if (c.name == child_name) return &c;
  return nullptr;
}

std::vector<const XmlElement*> XmlElement::children_named(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const XmlElement& c : children)
    if (c.name == child_name) out.push_back(&c);
  return out;
}

std::string XmlElement::child_text(std::string_view child_name) const {
  const XmlElement* c = child(child_name);
  return c ? c->text : std::string();
}

namespace {

constexpr int kMaxDepth = 64;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == ':' || c == '-' || c == '.' || static_cast<unsigned char>(c) >= 0x80;
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view doc) : doc_(doc) {}

  Result<XmlElement> document() {
    SQLBAK_RETURN_IF_ERROR(skip_misc());
    if (at_end() || doc_[pos_] != '<') return error("expected the root element");
    XmlElement root;
    SQLBAK_RETURN_IF_ERROR(element(&root, 0));
    SQLBAK_RETURN_IF_ERROR(skip_misc());
    if (!at_end()) return error("content after the root element");
    return root;
  }

 private:
  bool at_end() const { return pos_ >= doc_.size(); }
  bool starts_with(std::string_view s) const { return doc_.substr(pos_, s.size()) == s; }

  Status error(const std::string& what) const {
    return Status::Corruption("malformed XML at byte " + std::to_string(pos_) + ": " + what);
  }

  // Skips up to and including TERMINATOR.
  Status skip_past(std::string_view terminator, const char* what) {
    size_t end = doc_.find(terminator, pos_);
    if (end == std::string_view::npos) return error(std::string("unterminated ") + what);
    pos_ = end + terminator.size();
    return Status::Ok();
  }

  // Whitespace, comments, processing instructions (the XML declaration) and a
  // DOCTYPE, around the root element.
  Status skip_misc() {
    for (;;) {
      while (!at_end() && is_space(doc_[pos_])) ++pos_;
      if (starts_with("<?")) {
        SQLBAK_RETURN_IF_ERROR(skip_past("?>", "processing instruction"));
      } else if (starts_with("<!--")) {
        SQLBAK_RETURN_IF_ERROR(skip_past("-->", "comment"));
      } else if (starts_with("<!DOCTYPE")) {
        size_t end = doc_.find('>', pos_);
        if (end == std::string_view::npos) return error("unterminated DOCTYPE");
        if (doc_.substr(pos_, end - pos_).find('[') != std::string_view::npos)
          return error("a DOCTYPE with an internal subset is not supported");
        pos_ = end + 1;
      } else {
        return Status::Ok();
      }
    }
  }

  Result<std::string> name() {
    size_t start = pos_;
    while (!at_end() && is_name_char(doc_[pos_])) ++pos_;
    if (pos_ == start) return error("expected a name");
    std::string_view n = doc_.substr(start, pos_ - start);
    size_t colon = n.rfind(':');
    if (colon != std::string_view::npos) n.remove_prefix(colon + 1);
    return std::string(n);
  }

  Status attributes() {
    for (;;) {
      while (!at_end() && is_space(doc_[pos_])) ++pos_;
      if (at_end()) return error("unterminated start tag");
      if (doc_[pos_] == '>' || doc_[pos_] == '/') return Status::Ok();
      auto n = name();
      if (!n.ok()) return n.status();
      while (!at_end() && is_space(doc_[pos_])) ++pos_;
      if (at_end() || doc_[pos_] != '=') return error("expected '=' after attribute " + *n);
      ++pos_;
      while (!at_end() && is_space(doc_[pos_])) ++pos_;
      if (at_end() || (doc_[pos_] != '"' && doc_[pos_] != '\'')) return error("expected a quoted value");
      char quote = doc_[pos_++];
      size_t end = doc_.find(quote, pos_);
      if (end == std::string_view::npos) return error("unterminated attribute value");
      pos_ = end + 1;
    }
  }

  Status reference(std::string* out) {
    size_t semi = doc_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return error("bad character reference");
    std::string_view ref = doc_.substr(pos_ + 1, semi - pos_ - 1);
    if (ref == "lt") out->push_back('<');
    else if (ref == "gt") out->push_back('>');
    else if (ref == "amp") out->push_back('&');
    else if (ref == "quot") out->push_back('"');
    else if (ref == "apos") out->push_back('\'');
    else if (ref.size() >= 2 && ref[0] == '#') {
      bool hex = ref[1] == 'x';
      std::string_view digits = ref.substr(hex ? 2 : 1);
      if (digits.empty()) return error("empty character reference");
      uint32_t cp = 0;
      for (char c : digits) {
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (hex && c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else return error("bad character reference");
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
        if (cp > 0x10FFFF) return error("character reference out of range");
      }
      if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return error("invalid character reference");
      append_utf8(cp, out);
    } else {
      return error("unknown entity &" + std::string(ref) + ";");
    }
    pos_ = semi + 1;
    return Status::Ok();
  }

  // At '<' of a start tag.
  Status element(XmlElement* e, int depth) {
    if (depth >= kMaxDepth) return error("elements nested too deeply");
    ++pos_;
    auto n = name();
    if (!n.ok()) return n.status();
    e->name = std::move(n).value();
    SQLBAK_RETURN_IF_ERROR(attributes());
    if (doc_[pos_] == '/') {
      if (!starts_with("/>")) return error("expected '/>'");
      pos_ += 2;
      return Status::Ok();
    }
    ++pos_;  // '>'
    for (;;) {
      if (at_end()) return error("element <" + e->name + "> is not closed");
      char c = doc_[pos_];
      if (c == '&') {
        SQLBAK_RETURN_IF_ERROR(reference(&e->text));
      } else if (c != '<') {
        e->text.push_back(c);
        ++pos_;
      } else if (starts_with("</")) {
        pos_ += 2;
        auto end_name = name();
        if (!end_name.ok()) return end_name.status();
        if (*end_name != e->name)
          return error("</" + *end_name + "> closes <" + e->name + ">");
        while (!at_end() && is_space(doc_[pos_])) ++pos_;
        if (at_end() || doc_[pos_] != '>') return error("expected '>'");
        ++pos_;
        return Status::Ok();
      } else if (starts_with("<!--")) {
        SQLBAK_RETURN_IF_ERROR(skip_past("-->", "comment"));
      } else if (starts_with("<![CDATA[")) {
        size_t start = pos_ + 9;
        size_t end = doc_.find("]]>", start);
        if (end == std::string_view::npos) return error("unterminated CDATA section");
        e->text.append(doc_.substr(start, end - start));
        pos_ = end + 3;
      } else if (starts_with("<?")) {
        SQLBAK_RETURN_IF_ERROR(skip_past("?>", "processing instruction"));
      } else {
        e->children.emplace_back();
        SQLBAK_RETURN_IF_ERROR(element(&e->children.back(), depth + 1));
      }
    }
  }

  std::string_view doc_;
  size_t pos_ = 0;
};

}  // namespace

Result<XmlElement> parse_xml(std::string_view document) { return Parser(document).document(); }

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace sqlbak
