// A small XML reader for the documents S3 sends back (ListBucketResult,
// DeleteResult, Error, InitiateMultipartUploadResult, ...), and escaping for
// the few documents sqlbak sends. Pure: no I/O.
//
// It reads elements, character data (with the five predefined entities,
// numeric character references and CDATA sections), and skips the XML
// declaration, comments, processing instructions, attributes and a DOCTYPE
// without an internal subset. Namespace prefixes are dropped from element
// names ("s3:Key" is "Key"). It is not a validating parser and does not
// resolve external entities (there are none to resolve: S3 never sends them).
//
// Thread-safety: functions are reentrant; XmlElement is a plain value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/status.h"

namespace sqlbak {

struct XmlElement {
  std::string name;  // local name, without a namespace prefix
  std::string text;  // character data directly inside this element, decoded
  std::vector<XmlElement> children;

  // The first child named NAME, or nullptr.
  const XmlElement* child(std::string_view child_name) const;
  // Every child named NAME, in document order.
  std::vector<const XmlElement*> children_named(std::string_view child_name) const;
  // The text of the first child named NAME; "" when there is none.
  std::string child_text(std::string_view child_name) const;
};

// Parses DOCUMENT into its root element. kCorruption with the byte offset of
// the problem when it is not well-formed XML (or nests deeper than 64 levels).
Result<XmlElement> parse_xml(std::string_view document);

// TEXT with &, <, >, " and ' escaped, for element content and attributes.
std::string xml_escape(std::string_view text);

}  // namespace sqlbak
