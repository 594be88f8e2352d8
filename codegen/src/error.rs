//! Errors with file, line and column, rendered by miette.

use miette::{Diagnostic, NamedSource, SourceSpan};

/// Why code generation failed.
///
/// Its `Debug` output is the full diagnostic (file, line, column and the
/// source line), so a `build.rs` that returns it with `?` shows it well.
#[derive(thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum Error {
    /// The `.proto` files did not compile (syntax, unknown types, bad imports...).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compile(#[from] protox::Error),
    /// The files compiled but use something pbpersist cannot generate.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Schema(Box<SchemaError>),
    /// Writing generated code failed.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `OUT_DIR` is not set: the generator runs outside a build script and
    /// no output directory was given.
    #[error("OUT_DIR is not set; outside a build script, call `Config::out_dir`")]
    OutDirUnset,
    /// An option has a value that cannot be used.
    #[error("{option} = {value:?} is not valid: expected {expected}")]
    BadOption {
        /// The option.
        option: &'static str,
        /// The value given.
        value: String,
        /// What the option takes.
        expected: &'static str,
    },
    /// A file to compile that the compiler found but whose import name
    /// could not be told, so that nothing would be generated for it.
    #[error("{file} is neither inside one of the include directories nor an import name found in one")]
    Unplaced {
        /// The file as given.
        file: String,
    },
    /// The generated code did not parse as Rust: a bug in pbpersist.
    #[error("internal error: generated code for {file} does not parse: {message}")]
    Internal {
        /// The output file.
        file: String,
        /// The parser's message.
        message: String,
    },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        let mut out = String::new();
        match handler.render_report(&mut out, self) {
            Ok(()) => f.write_str(&out),
            Err(_) => write!(f, "{self}"),
        }
    }
}

/// A schema that compiles but that pbpersist cannot generate code for.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(pbpersist::schema))]
pub struct SchemaError {
    /// What is wrong.
    pub message: String,
    /// The file, when its source is known.
    #[source_code]
    pub source_code: Option<NamedSource<String>>,
    /// Where in the file.
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    /// The label at the span.
    pub label: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}
