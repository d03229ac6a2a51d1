// Reading documents from corpus files for duo-tokenize: plain text or JSON lines, optionally gzip-compressed
// (zlib reads both transparently), cut into documents one per line, per blank-line-separated paragraph, or one
// per file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace duo {

struct InputOptions {
  std::string format = "auto";  // text | jsonl | auto (jsonl when the name ends in .jsonl / .json / .jsonl.gz)
  std::string field = "text";   // JSON lines: the field that holds the document (a string, or an array of
                                // strings joined with '\n', as Hugging Face's scientific_papers builds "article")
  std::string split = "line";   // text: line | blank (paragraphs) | none (whole file = one document)
  bool keep_empty = false;      // keep empty documents (they still count, e.g. for 1000-row grouping)
  bool keep_newline = false;    // split=line: keep each line's '\n' in the document (Hugging Face's text loader)
  bool squeeze_newlines = false;  // runs of 3+ '\n' become "\n\n" (Hugging Face's openwebtext loader)
  bool strip = false;           // strip leading/trailing whitespace of every document (Python's str.strip)
  bool replace_invalid_utf8 = false;  // false: invalid UTF-8 is an error naming file:line
};

// Streams the documents of several files in order. Memory: one document plus a 1 MiB read buffer.
class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> files, InputOptions opt);
  ~DocumentReader();
  DocumentReader(const DocumentReader&) = delete;
  DocumentReader& operator=(const DocumentReader&) = delete;

  bool next(std::string& doc);  // false after the last document of the last file
  uint64_t bytes_done() const;  // on-disk (compressed) bytes consumed so far, for progress
  uint64_t bytes_total() const { return total_bytes_; }
  std::string where() const;    // "file:line" of the last document, for error messages

 private:
  bool open_next_file();
  void close_file();
  bool read_line(std::string& line);  // false at end of the current file
  // gzread into buf_: bytes read, 0 at the end of the file; a read error or a compressed stream that stops
  // before its end (a truncated .gz) is an error naming the file.
  size_t read_chunk();
  bool next_raw(std::string& doc);

  std::vector<std::string> files_;
  InputOptions opt_;
  size_t file_index_ = 0;
  void* gz_ = nullptr;  // gzFile
  bool jsonl_ = false;
  std::vector<char> buf_;
  size_t buf_pos_ = 0, buf_len_ = 0;
  bool eof_ = false;
  bool last_had_newline_ = false;  // whether read_line's last line ended in '\n'
  int64_t line_ = 0, doc_line_ = 0;
  uint64_t total_bytes_ = 0, done_bytes_ = 0;
};

}  // namespace duo
