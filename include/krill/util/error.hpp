// Error types. Every message says what went wrong, where (op, argument, file, line)
// and, where there is one, what to do about it.
#pragma once
#include <stdexcept>
#include <string>

namespace krill {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShapeError : Error { using Error::Error; };      // incompatible / invalid shapes
struct DTypeError : Error { using Error::Error; };      // wrong element type
struct ValueError : Error { using Error::Error; };      // invalid argument value
struct IndexError : Error { using Error::Error; };      // index or dim out of range
struct AutogradError : Error { using Error::Error; };   // misuse of backward / graph
struct IOError : Error { using Error::Error; };         // unreadable / malformed files
struct FormatError : IOError { using IOError::IOError; };  // file exists but its content is invalid
// A labelled image directory (root/<class>/<image>.png) without class folders, or a class
// folder without images.
struct NotLabeledDatasetError : FormatError { using FormatError::FormatError; };
// Data sets that cannot be used together (e.g. training and validation with different classes).
struct InvalidDatasetError : FormatError { using FormatError::FormatError; };

}  // namespace krill
