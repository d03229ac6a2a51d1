#include "data/text_input.h"
#include <zlib.h>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include "core/error.h"
#include "data/unicode.h"

namespace duo {
namespace {

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

void squeeze_newlines(std::string& s) {
  if (s.find("\n\n\n") == std::string::npos) return;
  std::string r;
  r.reserve(s.size());
  size_t run = 0;
  for (char c : s) {
    run = c == '\n' ? run + 1 : 0;
    if (run <= 2) r += c;
  }
  s.swap(r);
}

}  // namespace

DocumentReader::DocumentReader(std::vector<std::string> files, InputOptions opt)
    : files_(std::move(files)), opt_(std::move(opt)), buf_(1 << 20) {
  DUO_CHECK(!files_.empty(), "--input", "no input files", "pass one or more text / JSON-lines files");
  DUO_CHECK(opt_.split == "line" || opt_.split == "blank" || opt_.split == "none", "--split",
            str("unknown value '", opt_.split, "'"), "use line, blank or none");
  DUO_CHECK(opt_.format == "auto" || opt_.format == "text" || opt_.format == "jsonl", "--format",
            str("unknown value '", opt_.format, "'"), "use auto, text or jsonl");
  for (const auto& f : files_) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(f, ec);
    if (ec) fail(f, "cannot read the input file", "check the path");
    total_bytes_ += n;
  }
}

DocumentReader::~DocumentReader() {
  if (gz_) gzclose((gzFile)gz_);
}

bool DocumentReader::open_next_file() {
  if (file_index_ >= files_.size()) return false;
  const std::string& f = files_[file_index_++];
  gz_ = gzopen(f.c_str(), "rb");
  if (!gz_) fail(f, "cannot open the input file", "check the path and permissions");
  gzbuffer((gzFile)gz_, 1 << 20);
  const std::string base = ends_with(f, ".gz") ? f.substr(0, f.size() - 3) : f;
  jsonl_ = opt_.format == "jsonl" || (opt_.format == "auto" && (ends_with(base, ".jsonl") || ends_with(base, ".json")));
  DUO_CHECK(!jsonl_ || opt_.split == "line", f, "JSON lines hold one document per record",
            "drop --split for JSON-lines input");
  buf_pos_ = buf_len_ = 0;
  eof_ = false;
  line_ = 0;
  return true;
}

size_t DocumentReader::read_chunk() {
  const int n = gzread((gzFile)gz_, buf_.data(), (unsigned)buf_.size());
  int err = Z_OK;
  const char* message = gzerror((gzFile)gz_, &err);
  // zlib returns the data it could decode and flags a stream cut short with Z_BUF_ERROR (zlib.h, gzread):
  // without this check a truncated download would be tokenized as a shorter corpus, silently.
  if (err == Z_BUF_ERROR)
    fail(files_[file_index_ - 1], "the compressed stream ends before its end marker (a truncated .gz file)",
         "download or copy the file again; `gzip -t FILE` checks it");
  if (n < 0) fail(where(), str("read error: ", message), "the file is damaged (a truncated .gz?)");
  return (size_t)n;
}

bool DocumentReader::read_line(std::string& line) {
  line.clear();
  last_had_newline_ = false;
  bool any = false;
  while (true) {
    if (buf_pos_ == buf_len_) {
      if (eof_) return any;
      const size_t n = read_chunk();
      if (n == 0) {
        eof_ = true;
        if (any) ++line_;  // a last line without '\n'
        return any;
      }
      buf_pos_ = 0;
      buf_len_ = n;
    }
    any = true;
    const char* start = buf_.data() + buf_pos_;
    const void* nl = std::memchr(start, '\n', buf_len_ - buf_pos_);
    if (nl) {
      const size_t k = (const char*)nl - start;
      line.append(start, k);
      buf_pos_ += k + 1;
      ++line_;
      last_had_newline_ = true;
      return true;
    }
    line.append(start, buf_len_ - buf_pos_);
    buf_pos_ = buf_len_;
  }
}

bool DocumentReader::next_raw(std::string& doc) {
  std::string line;
  while (true) {
    if (!gz_ && !open_next_file()) return false;
    if (opt_.split == "none") {  // the whole file, byte for byte
      doc.assign(buf_.data() + buf_pos_, buf_len_ - buf_pos_);
      buf_pos_ = buf_len_;
      while (!eof_) {
        const size_t n = read_chunk();
        if (n == 0) eof_ = true;
        doc.append(buf_.data(), n);
      }
      doc_line_ = 1;
      close_file();
      if (!doc.empty() || opt_.keep_empty) return true;
      continue;
    }
    if (opt_.split == "line") {
      while (read_line(line)) {
        if (opt_.keep_newline) {
          // read_line dropped the '\n'; a last line without one stays without.
          if (last_had_newline_) line += '\n';
        } else if (!line.empty() && line.back() == '\r') {
          line.pop_back();
        }
        if (line.empty() && !opt_.keep_empty) continue;
        doc_line_ = line_;
        if (jsonl_) {
          if (line.empty()) continue;
          nlohmann::json j;
          try {
            j = nlohmann::json::parse(line);
          } catch (const nlohmann::json::exception& e) {
            fail(where(), str("malformed JSON: ", e.what()), "each line must be one JSON object");
          }
          auto f = j.is_object() ? j.find(opt_.field) : j.end();
          const bool text_array = f != j.end() && f->is_array() &&
                                  std::all_of(f->begin(), f->end(), [](const nlohmann::json& x) { return x.is_string(); });
          DUO_CHECK(j.is_object() && f != j.end() && (f->is_string() || text_array), where(),
                    str("no string field '", opt_.field, "' in this record"), "choose the text field with --field");
          if (f->is_string()) {
            doc = f->get<std::string>();
          } else {
            doc.clear();
            for (size_t k = 0; k < f->size(); ++k) {
              if (k) doc += '\n';
              doc += (*f)[k].get<std::string>();
            }
          }
        } else {
          doc.swap(line);
        }
        return true;
      }
    } else {  // blank: paragraphs separated by one or more empty (or whitespace-only \r) lines
      doc.clear();
      bool have = false;
      while (read_line(line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
          if (have) return true;
          continue;
        }
        if (!have) doc_line_ = line_;
        if (have) doc += '\n';
        doc += line;
        have = true;
      }
      if (have) return true;
    }
    close_file();
  }
}

void DocumentReader::close_file() {
  gzclose((gzFile)gz_);
  gz_ = nullptr;
  done_bytes_ += std::filesystem::file_size(files_[file_index_ - 1]);
}

bool DocumentReader::next(std::string& doc) {
  do {
    if (!next_raw(doc)) return false;
    if (opt_.squeeze_newlines) squeeze_newlines(doc);
    if (opt_.strip) doc = strip_whitespace(doc);
  } while (doc.empty() && !opt_.keep_empty);
  const size_t bad = find_invalid_utf8(doc);
  if (bad != std::string::npos) {
    if (!opt_.replace_invalid_utf8)
      fail(where(), str("invalid UTF-8 at byte ", bad, " of the document"),
           "fix the file's encoding, or pass --invalid_utf8 replace (bad bytes become U+FFFD)");
    doc = replace_invalid_utf8(doc);
  }
  return true;
}

uint64_t DocumentReader::bytes_done() const {
  if (!gz_) return done_bytes_;
  return done_bytes_ + (uint64_t)gzoffset((gzFile)gz_);
}

std::string DocumentReader::where() const {
  const std::string& f = files_[file_index_ > 0 ? file_index_ - 1 : 0];
  return str(f, ":", doc_line_);
}

}  // namespace duo
