#include <catch2/catch.hpp>

#include "lib/s3_xml.h"

using namespace sqlbak;

TEST_CASE("the XML reader reads an S3 listing", "[s3]") {
  const char* doc =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
      "  <Name>bucket</Name>\n"
      "  <!-- a comment -->\n"
      "  <Contents><Key>a&amp;b</Key><Size>12</Size></Contents>\n"
      "  <Contents><Key>c</Key><Size>0</Size><Owner/></Contents>\n"
      "</ListBucketResult>";
  auto root = parse_xml(doc);
  REQUIRE(root.ok());
  CHECK(root->name == "ListBucketResult");
  CHECK(root->child_text("Name") == "bucket");
  auto contents = root->children_named("Contents");
  REQUIRE(contents.size() == 2);
  CHECK(contents[0]->child_text("Key") == "a&b");
  CHECK(contents[1]->child_text("Size") == "0");
  CHECK(contents[1]->child("Owner") != nullptr);
  CHECK(root->child("Missing") == nullptr);
  CHECK(root->child_text("Missing").empty());
}

TEST_CASE("the XML reader decodes entities, character references and CDATA", "[s3]") {
  auto root = parse_xml("<a>&lt;&gt;&quot;&apos;&#65;&#x42;&#xe9;&#x1F600;<![CDATA[<raw&>]]></a>");
  REQUIRE(root.ok());
  CHECK(root->text == "<>\"'AB\xC3\xA9\xF0\x9F\x98\x80<raw&>");
}

TEST_CASE("the XML reader drops namespace prefixes and skips attributes", "[s3]") {
  auto root = parse_xml("<s3:Error a='1' b=\"x>y\"><s3:Code>NoSuchKey</s3:Code></s3:Error>");
  REQUIRE(root.ok());
  CHECK(root->name == "Error");
  CHECK(root->child_text("Code") == "NoSuchKey");
}

TEST_CASE("the XML reader refuses what is not well-formed", "[s3]") {
  for (const char* bad : {"", "text", "<a>", "<a></b>", "<a><b></a>", "<a>&bogus;</a>", "<a>&#0;</a>",
                          "<a>&#xD800;</a>", "<a b=1></a>", "<a></a><b></b>", "<a><![CDATA[x</a>",
                          "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", "<a>&#x110000;</a>"}) {
    auto r = parse_xml(bad);
    INFO(bad);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.status().code() == ErrorCode::kCorruption);
  }
}

TEST_CASE("the XML reader limits nesting", "[s3]") {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  for (int i = 0; i < 100; ++i) deep += "</a>";
  CHECK_FALSE(parse_xml(deep).ok());
  std::string ok;
  for (int i = 0; i < 10; ++i) ok += "<a>";
  for (int i = 0; i < 10; ++i) ok += "</a>";
  CHECK(parse_xml(ok).ok());
}

TEST_CASE("xml_escape escapes the five special characters", "[s3]") {
  CHECK(xml_escape("a<b>&\"'c") == "a&lt;b&gt;&amp;&quot;&apos;c");
  auto round = parse_xml("<k>" + xml_escape("x&<>\"'y") + "</k>");
  REQUIRE(round.ok());
  CHECK(round->text == "x&<>\"'y");
}
