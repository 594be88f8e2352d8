//! Source locations of descriptors: comments for rustdoc, and spans for errors.

use crate::error::{Error, SchemaError};
use miette::{NamedSource, SourceSpan};
use prost_reflect::FileDescriptor;
use std::collections::HashMap;
use std::path::PathBuf;

/// The text of each compiled file, by import name, when known.
#[derive(Default)]
pub struct Sources {
    texts: HashMap<String, (String, String)>,
}

impl Sources {
    /// Remembers the display path and text of a file.
    pub fn add(&mut self, name: &str, display: String, text: String) {
        self.texts.insert(name.to_owned(), (display, text));
    }

    /// Reads the files a compile used, for error spans.
    pub fn from_compiler(compiler: &protox::Compiler) -> Self {
        let mut sources = Sources::default();
        for f in compiler.files() {
            let text = match f.path() {
                Some(p) => std::fs::read_to_string(p).ok(),
                None => crate::resolve::BUILTIN.iter().find(|(n, _)| *n == f.name()).map(|(_, t)| t.to_string()),
            };
            if let Some(text) = text {
                let display = f.path().map(PathBuf::from).map(|p| p.display().to_string());
                sources.add(f.name(), display.unwrap_or_else(|| f.name().to_owned()), text);
            }
        }
        sources
    }

    /// The leading comment of the element at `path`, as documentation lines.
    pub fn docs(&self, file: &FileDescriptor, path: &[i32]) -> Vec<String> {
        let Some(loc) = location(file, path) else {
            return Vec::new();
        };
        let Some(comment) = &loc.leading_comments else {
            return Vec::new();
        };
        let lines: Vec<String> =
            comment.trim_end().lines().map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end().to_owned()).collect();
        fence_code(indent_list_items(lines))
    }

    /// An error pointing at the element at `path`.
    pub fn error(
        &self,
        file: &FileDescriptor,
        path: &[i32],
        message: String,
        label: &str,
        help: Option<String>,
    ) -> Error {
        let span = location(file, path).and_then(|loc| {
            let (display, text) = self.texts.get(file.name())?;
            let start_line = *loc.span.first()? as usize;
            let start_col = *loc.span.get(1)? as usize;
            let (end_line, end_col) = match loc.span.len() {
                3 => (start_line, loc.span[2] as usize),
                _ => (*loc.span.get(2)? as usize, *loc.span.get(3)? as usize),
            };
            let start = offset(text, start_line, start_col)?;
            let end = offset(text, end_line, end_col)?.max(start);
            Some((NamedSource::new(display, text.clone()), SourceSpan::from(start..end)))
        });
        let (source_code, span) = match span {
            Some((s, sp)) => (Some(s), Some(sp)),
            None => (None, None),
        };
        let message = match (&source_code, span) {
            (Some(_), Some(_)) => message,
            _ => format!("{}: {message}", file.name()),
        };
        Error::Schema(Box::new(SchemaError { message, source_code, span, label: label.to_owned(), help }))
    }
}

fn location<'a>(
    file: &'a FileDescriptor,
    path: &[i32],
) -> Option<&'a prost_reflect::prost_types::source_code_info::Location> {
    file.file_descriptor_proto().source_code_info.as_ref()?.location.iter().find(|l| l.path == path)
}

/// The byte offset of a 0-based line and column (in characters).
fn offset(text: &str, line: usize, col: usize) -> Option<usize> {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i == line {
            let within: usize = l.chars().take(col).map(char::len_utf8).sum();
            return Some(start + within);
        }
        start += l.len();
    }
    (line == text.lines().count()).then_some(text.len())
}

/// Indents the lines that continue a list item to the item's text, as
/// Markdown reads them: `.proto` comments wrap items at any column, which
/// rustdoc would otherwise join to the item lazily or show as code.
fn indent_list_items(lines: Vec<String>) -> Vec<String> {
    // The text column of each open item, innermost last.
    let mut open: Vec<usize> = Vec::new();
    let mut after_blank = false;
    // Inside `<pre>` or a fence, lines are shown as written; the block ends
    // any list. This holds what closes the block.
    let mut verbatim: Option<&str> = None;
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(end) = verbatim {
            if trimmed.contains(end) {
                verbatim = None;
            }
            out.push(line);
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("<pre") {
            let end = if trimmed.starts_with("```") { "```" } else { "</pre>" };
            let closed_here = end == "</pre>" && trimmed.contains(end);
            verbatim = (!closed_here).then_some(end);
            open.clear();
            out.push(line);
            continue;
        }
        if trimmed.is_empty() {
            after_blank = true;
            out.push(line);
            continue;
        }
        if let Some(marker) = list_marker(trimmed) {
            // A new item closes the items it is not nested in.
            while open.last().is_some_and(|text| *text > indent) {
                open.pop();
            }
            open.push(indent + marker);
            out.push(line);
        } else if let Some(text) = open.last().copied() {
            if after_blank && indent < text {
                // A paragraph after the list.
                open.clear();
                out.push(line);
            } else {
                out.push(format!("{}{trimmed}", " ".repeat(text)));
            }
        } else {
            out.push(line);
        }
        after_blank = false;
    }
    out
}

/// The width of a list marker (`-`, `*`, `+`, `1.`, `2)`) and the spaces
/// after it, up to four, at the start of `text`: where the item's text starts.
fn list_marker(text: &str) -> Option<usize> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let marker = match text.as_bytes().get(digits) {
        Some(b'-' | b'*' | b'+') if digits == 0 => 1,
        Some(b'.' | b')') if digits > 0 && digits < 10 => digits + 1,
        _ => return None,
    };
    let spaces = text[marker..].bytes().take_while(|b| *b == b' ').count();
    (spaces > 0 && marker + spaces < text.len()).then_some(marker + spaces.min(4))
}

/// Marks code in `.proto` comments (fenced or indented) as text, so that
/// rustdoc neither compiles it as Rust nor reflows it.
fn fence_code(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let (mut in_fence, mut in_indent) = (false, false);
    for line in lines {
        if line.trim_start().starts_with("```") {
            if in_indent {
                out.push("```".into());
                in_indent = false;
            }
            out.push(if in_fence { "```".into() } else { "```text".into() });
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            out.push(line);
            continue;
        }
        // Two spaces suffice: protobuf comments indent their examples so, and
        // rustdoc would otherwise read `*` or `-` in them as list items.
        let indented = line.starts_with("  ") || line.starts_with('\t');
        if in_indent && !indented && !line.trim().is_empty() {
            out.push("```".into());
            in_indent = false;
        }
        if indented && !in_indent && out.last().is_none_or(|l| l.trim().is_empty()) {
            out.push("```text".into());
            in_indent = true;
        }
        out.push(line);
    }
    if in_fence || in_indent {
        out.push("```".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::indent_list_items;

    #[test]
    fn pre_blocks_are_left_as_written_and_end_lists() {
        let lines = ["- item", "<pre><code>rules:", "  - selector: x", "    more", "</code></pre>", "After."];
        assert_eq!(indent_list_items(lines.map(String::from).to_vec()), lines.map(String::from).to_vec());
    }

    #[test]
    fn list_items_continue_at_their_text() {
        let lines =
            ["1. Leaf fields", "are classified:", "   - by path", "   template", "*  wide", "  marker", "", "After."];
        let want = [
            "1. Leaf fields",
            "   are classified:",
            "   - by path",
            "     template",
            "*  wide",
            "   marker",
            "",
            "After.",
        ];
        assert_eq!(indent_list_items(lines.map(String::from).to_vec()), want.map(String::from).to_vec());
    }
}
